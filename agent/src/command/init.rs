//! `init` creates an operator's workspace; `install-secret` installs the wrapped linkage secret.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use synchro_shared::batch::validate_operator_id;
use synchro_shared::pseudonym::ReferenceSecret;

use crate::config::{self, EXAMPLE};
use crate::profile::STARTER;

/// Arguments of `init`.
#[derive(Debug, Clone, clap::Args)]
pub struct InitArgs {
    /// Directory of the new workspace (created if needed)
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// This operator's id, as the hub will enrol it (e.g. siao-69)
    #[arg(long)]
    pub operator_id: String,
    /// The hub's age recipient (age1…), or a file containing it
    #[arg(long)]
    pub hub_recipient: String,
    /// The hub's https address (leave out for offline transfer)
    #[arg(long)]
    pub hub_url: Option<String>,
    /// PEM file of the CA that signed the hub's certificate (copied into the workspace)
    #[arg(long)]
    pub ca_certificate: Option<PathBuf>,
    /// Print nothing (for scripted set-ups)
    #[arg(long)]
    pub quiet: bool,
}

/// Arguments of `install-secret`.
#[derive(Debug, Clone, clap::Args)]
pub struct InstallSecretArgs {
    /// The wrapped linkage secret received from the key custodian
    #[arg(long)]
    pub wrapped: PathBuf,
    /// The agent configuration
    #[arg(long, default_value = "agent.toml")]
    pub config: PathBuf,
}

/// Creates agent.toml, profile.toml, the keys and the receipts folder.
pub fn init(args: &InitArgs) -> Result<()> {
    validate_operator_id(&args.operator_id)?;
    let recipient = synchro_keys::hub::load_recipient(&args.hub_recipient)?;
    let config_path = args.dir.join("agent.toml");
    if config_path.exists() {
        bail!(
            "{} already exists: this folder is already an agent workspace",
            config_path.display()
        );
    }
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let keys_dir = args.dir.join("keys");
    let public = synchro_keys::operator::create(&keys_dir, &args.operator_id)?;
    let reference = ReferenceSecret::generate();
    synchro_keys::secret_file::write_secret(
        &keys_dir.join("reference-secret.key"),
        &format!(
            "# Synchro reference secret of operator {}. KEEP SECRET: it maps your record ids to the references sent.\n# fingerprint: {}\n{}\n",
            args.operator_id,
            reference.fingerprint(),
            reference.encode().as_str()
        ),
    )?;
    let mut text = EXAMPLE
        .replace(
            "operator_id = \"siao-69\"",
            &format!("operator_id = \"{}\"", args.operator_id),
        )
        .replace("age1REPLACE_WITH_THE_HUB_RECIPIENT", &recipient.to_string());
    if let Some(url) = &args.hub_url {
        text = text.replace("url = \"\"", &format!("url = \"{url}\""));
    }
    if let Some(ca) = &args.ca_certificate {
        std::fs::copy(ca, args.dir.join("hub-ca.pem"))
            .with_context(|| format!("cannot copy {}", ca.display()))?;
        text = text.replace(
            "# ca_certificate = \"hub-ca.pem\"",
            "ca_certificate = \"hub-ca.pem\"",
        );
    }
    std::fs::write(&config_path, text)?;
    let profile_path = args.dir.join("profile.toml");
    if !profile_path.exists() {
        std::fs::write(&profile_path, STARTER)?;
    }
    std::fs::create_dir_all(args.dir.join("receipts"))?;
    // Validate what was written, so a bad --hub-url fails now rather than at the first run.
    config::load(&config_path)?;
    if args.quiet {
        return Ok(());
    }
    let (_, _, public_path) = synchro_keys::operator::files(&keys_dir, &args.operator_id);
    println!("Agent workspace created in {}", args.dir.display());
    println!("  configuration: {}", config_path.display());
    println!("  mapping profile to complete: {}", profile_path.display());
    println!(
        "  public keys to send to the key custodian and the hub: {}",
        public_path.display()
    );
    println!(
        "  signing key fingerprint: {}",
        public.signing_key_fingerprint
    );
    println!("Next: receive your wrapped linkage secret, then `synchro-agent install-secret --wrapped FILE`.");
    Ok(())
}

/// Unwraps the linkage secret with this operator's identity into the configured path.
pub fn install_secret(args: &InstallSecretArgs) -> Result<()> {
    let cfg = config::load(&args.config)?;
    let identity = synchro_keys::operator::load_identity(&cfg.resolve(&cfg.config.keys.identity))?;
    let out = cfg.resolve(&cfg.config.keys.linkage_secret);
    let secret = synchro_keys::linkage::unwrap(&args.wrapped, &identity, &out)?;
    println!(
        "Linkage secret epoch {} installed in {}",
        secret.epoch(),
        out.display()
    );
    println!(
        "Fingerprint: {} (compare it with the one the custodian gave you)",
        secret.fingerprint()
    );
    Ok(())
}
