//! `synchro-hub`: the technical operator's command.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use synchro_hub::ingest::{open_batch, Acceptance};
use synchro_shared::batch::BatchSignature;

/// Synchro hub: receive and open operators' batches
#[derive(Parser)]
#[command(name = "synchro-hub", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Verify and open a sealed batch received as a file, and print its summary (nothing stored)
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

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::VerifyBatch {
            batch,
            identity,
            operator,
            epochs,
        } => {
            let ciphertext = std::fs::read(&batch)
                .with_context(|| format!("cannot read {}", batch.display()))?;
            let mut sig_path = batch.clone().into_os_string();
            sig_path.push(".sig");
            let sig_text = std::fs::read_to_string(&sig_path).with_context(|| {
                format!(
                    "cannot read the signature {:?} (it must be beside the batch)",
                    sig_path
                )
            })?;
            let signature = BatchSignature::from_json(&sig_text)?;
            let operator = synchro_keys::operator::load_public(&operator)?;
            let identity = synchro_keys::hub::load_identity(&identity)?;
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
