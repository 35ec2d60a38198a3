//! `synchro-hub`: the technical operator's command.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use synchro_hub::command::{self, AuditCommand, InitArgs, LinkageCommand, OperatorCommand};
use synchro_hub::demo::{demo, DemoArgs};
use synchro_hub::ingest::{open_batch, Acceptance};
use synchro_shared::batch::BatchSignature;

/// Synchro hub: receive operators' batches, store them, keep the audit log
#[derive(Parser)]
#[command(name = "synchro-hub", version)]
struct Cli {
    /// The hub configuration
    #[arg(long, global = true, default_value = "synchro-hub/hub.toml")]
    config: PathBuf,
    /// Log details to standard error
    #[arg(long, short, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The whole chain on synthetic data: keys, hub, agents, HTTPS uploads, web interface
    Demo(DemoArgs),
    /// Create a hub directory: configuration, keys, TLS certificate, database, admin account
    Init(InitArgs),
    /// Serve HTTPS (uploads and web interface)
    Serve,
    /// Enrol, list, disable or enable operators
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Ingest a batch received as a file (offline transfer)
    Ingest {
        /// The sealed batch; its .sig must be beside it
        batch: PathBuf,
    },
    /// Audit log: checkpoint, verifier key, verification
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Link every stored record up to a month and give stable person and household ids
    /// (also run after each accepted batch unless `linkage.process_after_ingest = false`)
    Process {
        /// Month (YYYY-MM; default: the latest stored). Runs go forward: it must be the latest.
        #[arg(long)]
        period: Option<String>,
        /// Link every stored record again, even with `linkage.incremental` on
        #[arg(long)]
        full: bool,
    },
    /// Inspect linkage: explain a record, report on a month, export ids for evaluation
    #[command(subcommand)]
    Linkage(LinkageCommand),
    /// The DPO report: keys, operators, retention and purges, latest checkpoint
    ReportDpo {
        /// fr (default) or en
        #[arg(long, default_value = "fr")]
        lang: String,
    },
    /// Apply the retention rules now (also runs on schedule while serving)
    Purge,
    /// Measure ingestion throughput (file and HTTPS, one and many operators)
    Bench(synchro_hub::bench::BenchArgs),
    /// Score linkage on generated data against the truth, with the naive baseline
    BenchLinkage(synchro_hub::evaluation::EvalArgs),
    /// Verify and open a sealed batch without storing it
    VerifyBatch {
        /// The sealed batch (.age); its .sig must be beside it
        #[arg(long)]
        batch: PathBuf,
        /// The hub's age identity
        #[arg(long)]
        identity: PathBuf,
        /// The sending operator's public key file
        #[arg(long)]
        operator: PathBuf,
        /// Linkage-secret epochs accepted
        #[arg(long, default_value = "1", value_delimiter = ',')]
        epochs: Vec<u32>,
    },
}

fn verify_batch(batch: &Path, identity: &Path, operator: &Path, epochs: Vec<u32>) -> Result<()> {
    let ciphertext =
        std::fs::read(batch).with_context(|| format!("cannot read {}", batch.display()))?;
    let mut sig_path = batch.as_os_str().to_owned();
    sig_path.push(".sig");
    let sig_text = std::fs::read_to_string(&sig_path).with_context(|| {
        format!(
            "cannot read the signature {:?} (it must be beside the batch)",
            sig_path
        )
    })?;
    let signature = BatchSignature::from_json(&sig_text)?;
    let operator = synchro_keys::operator::load_public(operator)?;
    let identity = synchro_keys::hub::load_identity(identity)?;
    let acceptance = Acceptance {
        key_epochs: epochs,
        key_fingerprints: Vec::new(),
    };
    let opened = open_batch(&ciphertext, &signature, &operator, &identity, &acceptance)
        .map_err(|r| anyhow::anyhow!("refused ({}): {r}", r.code()))?;
    println!(
        "batch accepted: operator {}, period {}, {} records ({} rejected at the operator), template v{}, keys v{}, epoch {}",
        opened.header.operator_id,
        opened.header.period,
        opened.records.len(),
        opened.trailer.rejected_count,
        opened.header.template_version,
        opened.header.key_set_version,
        opened.header.key_epoch
    );
    Ok(())
}

async fn run(cli: Cli) -> Result<bool> {
    match &cli.command {
        Command::Demo(a) => demo(a).await.map(|()| true),
        Command::Init(a) => {
            let created = command::init(a).await?;
            println!("Hub created: {}", created.config.display());
            println!(
                "Give operators the CA certificate {} (agent.toml: ca_certificate).",
                created.ca_certificate.display()
            );
            println!(
                "Web account: admin / {}  (shown once: write it down now)",
                created.admin_password
            );
            Ok(true)
        }
        Command::Serve => command::serve(&cli.config).await.map(|()| true),
        Command::Operator(c) => command::operator(&cli.config, c).await.map(|()| true),
        Command::Ingest { batch } => command::ingest(&cli.config, batch).await.map(|()| true),
        Command::Audit(c) => command::audit(&cli.config, c).await,
        Command::Process { period, full } => command::process(&cli.config, period, *full)
            .await
            .map(|()| true),
        Command::Linkage(c) => command::linkage(&cli.config, c).await.map(|()| true),
        Command::Bench(a) => synchro_hub::bench::bench(a).await.map(|()| true),
        Command::ReportDpo { lang } => {
            let hub = command::open(&cli.config).await?;
            let lang = if lang == "en" {
                synchro_hub::web::Lang::En
            } else {
                synchro_hub::web::Lang::Fr
            };
            print!("{}", synchro_hub::report::dpo_report(&hub, lang).await?);
            Ok(true)
        }
        Command::BenchLinkage(a) => synchro_hub::evaluation::bench_linkage(a)
            .await
            .map(|()| true),
        Command::Purge => command::purge(&cli.config).await.map(|()| true),
        Command::VerifyBatch {
            batch,
            identity,
            operator,
            epochs,
        } => verify_batch(batch, identity, operator, epochs.clone()).map(|()| true),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(if cli.verbose {
            tracing::Level::INFO
        } else {
            tracing::Level::WARN
        })
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
