//! `synchro-keys`: the key ceremony, for the key custodian, the hub's technical operator and DPOs.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use synchro_keys::{fingerprint, hub, linkage, operator};

/// Synchro key ceremony: linkage secret, hub and operator key pairs, wrapping, fingerprints
#[derive(Parser)]
#[command(name = "synchro-keys", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create or rotate the territory's linkage secret (custodian only)
    #[command(subcommand)]
    Linkage(LinkageCommand),
    /// Create the hub's age key pair (technical operator)
    HubNew {
        /// Directory to write hub-identity.key and hub-recipient.txt into
        #[arg(long)]
        dir: PathBuf,
        /// Say what would be written without writing anything
        #[arg(long)]
        dry_run: bool,
    },
    /// Create an operator's key pair (age identity and Ed25519 signing key)
    OperatorNew {
        /// Operator id, e.g. siao-69
        #[arg(long)]
        id: String,
        /// Directory to write the keys into
        #[arg(long)]
        dir: PathBuf,
        /// Say what would be written without writing anything
        #[arg(long)]
        dry_run: bool,
    },
    /// Encrypt the linkage secret to one operator, for transport
    Wrap {
        /// The linkage-secret file
        #[arg(long)]
        secret: PathBuf,
        /// The operator's public key file (operator-ID.pub.toml)
        #[arg(long)]
        to: PathBuf,
        /// Where to write the wrapped secret
        #[arg(long)]
        out: PathBuf,
        /// Say what would be written without writing anything
        #[arg(long)]
        dry_run: bool,
    },
    /// Decrypt a wrapped linkage secret with an operator identity
    Unwrap {
        /// The operator's age identity file
        #[arg(long)]
        identity: PathBuf,
        /// The wrapped secret received from the custodian
        #[arg(long = "in")]
        input: PathBuf,
        /// Where to write the linkage secret (owner-only)
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the fingerprints of key files (never their secrets)
    Fingerprint {
        /// Key files of any kind
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum LinkageCommand {
    /// Create a linkage secret for an epoch
    New {
        /// Epoch number (1 for the first secret)
        #[arg(long, default_value_t = 1)]
        epoch: u32,
        /// Where to write it (owner-only)
        #[arg(long)]
        out: PathBuf,
        /// Say what would be written without writing anything
        #[arg(long)]
        dry_run: bool,
    },
    /// Create the next epoch's secret from the current one
    Rotate {
        /// The current secret
        #[arg(long)]
        current: PathBuf,
        /// Where to write the new one
        #[arg(long)]
        out: PathBuf,
        /// Say what would be written without writing anything
        #[arg(long)]
        dry_run: bool,
    },
}

fn dry(what: &str) -> Result<()> {
    println!("dry run: would {what}; nothing written");
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Linkage(LinkageCommand::New {
            epoch,
            out,
            dry_run,
        }) => {
            if dry_run {
                return dry(&format!(
                    "create a linkage secret for epoch {epoch} at {}",
                    out.display()
                ));
            }
            let s = linkage::create(&out, epoch).context("couldn't create the linkage secret")?;
            println!("linkage secret, epoch {}: {}", s.epoch(), out.display());
            println!("fingerprint: {}", s.fingerprint());
            println!("Keep it offline. Give it to operators only wrapped (synchro-keys wrap), never to the hub.");
        }
        Command::Linkage(LinkageCommand::Rotate {
            current,
            out,
            dry_run,
        }) => {
            if dry_run {
                let old = linkage::load(&current)?;
                return dry(&format!(
                    "create epoch {} at {}",
                    old.epoch() + 1,
                    out.display()
                ));
            }
            let s =
                linkage::rotate(&current, &out).context("couldn't rotate the linkage secret")?;
            println!("new linkage secret, epoch {}: {}", s.epoch(), out.display());
            println!("fingerprint: {}", s.fingerprint());
            println!(
                "Wrap it to every operator; the hub accepts the new epoch once configured for it."
            );
        }
        Command::HubNew { dir, dry_run } => {
            if dry_run {
                return dry(&format!("create the hub key pair in {}", dir.display()));
            }
            let files = hub::create(&dir).context("couldn't create the hub key pair")?;
            let recipient = hub::load_recipient(&files.recipient.to_string_lossy())?;
            println!("hub identity (secret): {}", files.identity.display());
            println!("hub recipient (give to operators): {recipient}");
            println!("fingerprint: {}", hub::recipient_fingerprint(&recipient));
        }
        Command::OperatorNew { id, dir, dry_run } => {
            if dry_run {
                return dry(&format!(
                    "create keys for operator {id} in {}",
                    dir.display()
                ));
            }
            let public =
                operator::create(&dir, &id).context("couldn't create the operator keys")?;
            let (_, _, public_path) = operator::files(&dir, &id);
            println!("operator {id} keys written in {}", dir.display());
            println!(
                "public file (give to the custodian and the hub): {}",
                public_path.display()
            );
            println!(
                "signing key fingerprint: {}",
                public.signing_key_fingerprint
            );
        }
        Command::Wrap {
            secret,
            to,
            out,
            dry_run,
        } => {
            let op = operator::load_public(&to)?;
            if dry_run {
                return dry(&format!(
                    "wrap {} for operator {} into {}",
                    secret.display(),
                    op.operator_id,
                    out.display()
                ));
            }
            let s =
                linkage::wrap(&secret, &op, &out).context("couldn't wrap the linkage secret")?;
            println!(
                "linkage secret epoch {} (fingerprint {}) wrapped for operator {}: {}",
                s.epoch(),
                s.fingerprint(),
                op.operator_id,
                out.display()
            );
        }
        Command::Unwrap {
            identity,
            input,
            out,
        } => {
            let id = operator::load_identity(&identity)?;
            let s =
                linkage::unwrap(&input, &id, &out).context("couldn't unwrap the linkage secret")?;
            println!(
                "linkage secret epoch {} installed: {}",
                s.epoch(),
                out.display()
            );
            println!(
                "fingerprint: {} (compare with the custodian's)",
                s.fingerprint()
            );
        }
        Command::Fingerprint { files } => {
            for file in files {
                for f in fingerprint::describe(&file)? {
                    println!("{}\t{}\t{}", file.display(), f.kind, f.fingerprint);
                }
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
