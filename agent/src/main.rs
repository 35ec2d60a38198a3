//! `synchro-agent`: run monthly by each operator on its own export.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use synchro_agent::command::{bench, check, init, run, ExportArgs};

/// Synchro agent: validate an export, pseudonymise it, encrypt, sign and deliver it to the hub
#[derive(Parser)]
#[command(name = "synchro-agent", version)]
struct Cli {
    /// Log progress details to standard error (never identities)
    #[arg(long, short, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create an operator workspace: configuration, profile and keys
    Init(init::InitArgs),
    /// Install the linkage secret received (wrapped) from the key custodian
    InstallSecret(init::InstallSecretArgs),
    /// Validate an export and print the report (exit 1 on problems)
    Check(ExportArgs),
    /// Show or write exactly what would be sent, in clear (for the DPO)
    Preview(check::PreviewArgs),
    /// Build the encrypted, signed batch and upload it (or write it with --out)
    Run(run::RunArgs),
    /// Upload a sealed batch written earlier
    Send(run::SendArgs),
    /// Print the commented example configuration
    DefaultConfig,
    /// Measure rows/s and peak memory of a full run against the bare HMAC cost
    Bench(bench::BenchArgs),
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
    let result = match &cli.command {
        Command::Init(a) => init::init(a).map(|()| true),
        Command::InstallSecret(a) => init::install_secret(a).map(|()| true),
        Command::Check(a) => check::check(a),
        Command::Preview(a) => check::preview(a),
        Command::Run(a) => run::run(a).map(|s| s.is_some()),
        Command::Send(a) => run::send(a).map(|()| true),
        Command::Bench(a) => bench::bench(a).map(|()| true),
        Command::DefaultConfig => {
            print!("{}", synchro_agent::config::EXAMPLE);
            Ok(true)
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
