//! `demo`: the whole operator side on bundled synthetic data, in one command.
//!
//! Creates the hub's keys and the territory's linkage secret, four operator workspaces (SIAO,
//! CCAS, street outreach, hospital XLSX), wraps the secret to each, generates three months of
//! realistic exports, validates and seals every batch, then opens each one as the hub would
//! (signature, decryption, structure) to show that only the hub's key reads them.

use std::io::BufReader;
use std::path::PathBuf;

use anyhow::{Context, Result};
use synchro_shared::batch::{decrypt_with, BatchSignature, PayloadReader};
use synchro_synth::{Config, Dirtiness, Scenario};

use super::init::{init, InitArgs};
use super::run::{run, signature_path, RunArgs};
use super::ExportArgs;

/// Arguments of `demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Directory for the demo territory (default: a new folder under the system's temp dir)
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// People in the synthetic population
    #[arg(long, default_value_t = 600)]
    pub persons: usize,
    /// Months of exports
    #[arg(long, default_value_t = 3)]
    pub months: u32,
}

/// Runs the demo and prints where everything is.
pub fn demo(args: &DemoArgs) -> Result<()> {
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => tempfile::Builder::new()
            .prefix("synchro-demo-")
            .tempdir()?
            .keep(),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    println!("Synchro demo (operator side) in {}", dir.display());
    let hub = synchro_keys::hub::create(&dir.join("hub"))?;
    let linkage_path = dir.join("custodian/linkage-secret.key");
    let secret = synchro_keys::linkage::create(&linkage_path, 1)?;
    println!(
        "  linkage secret epoch 1, fingerprint {} (custodian only)",
        secret.fingerprint()
    );
    let scenario = Scenario::generate(Config {
        seed: 2026,
        persons: args.persons,
        operators: 4,
        months: args.months,
        first_period: (2026, 8),
        dirtiness: Dirtiness::Moderate,
    });
    let files = scenario.write_exports(&dir.join("exports"))?;
    let identity = synchro_keys::hub::load_identity(&hub.identity)?;
    println!(
        "\n  {:<12} {:<8} {:>6} {:>9} {:>10}  hub check",
        "operator", "period", "rows", "rejected", "bytes"
    );
    let mut total = 0u64;
    for (i, op) in scenario.operators.iter().enumerate() {
        let ws = dir.join("operators").join(&op.id);
        init(&InitArgs {
            dir: ws.clone(),
            operator_id: op.id.clone(),
            hub_recipient: hub.recipient.to_string_lossy().into_owned(),
            hub_url: None,
            ca_certificate: None,
            quiet: true,
        })?;
        std::fs::write(ws.join("profile.toml"), scenario.profile(i))?;
        let public_path = ws.join(format!("keys/operator-{}.pub.toml", op.id));
        let public = synchro_keys::operator::load_public(&public_path)?;
        let wrapped = dir.join(format!("custodian/wrapped-for-{}.txt", op.id));
        synchro_keys::linkage::wrap(&linkage_path, &public, &wrapped)?;
        let op_identity =
            synchro_keys::operator::load_identity(&ws.join("keys/operator-identity.key"))?;
        synchro_keys::linkage::unwrap(&wrapped, &op_identity, &ws.join("keys/linkage-secret.key"))?;
        let signing_key = public.signing_key_bytes().map_err(anyhow::Error::msg)?;
        for file in files.iter().filter(|f| f.operator_id == op.id) {
            let out = ws.join(format!("outbox/{}-{}.batch.age", op.id, file.period));
            std::fs::create_dir_all(out.parent().unwrap_or(&ws))?;
            let summary = run(&RunArgs {
                export: ExportArgs {
                    input: file.path.clone(),
                    period: file.period.parse()?,
                    config: ws.join("agent.toml"),
                    lang: None,
                    quiet: true,
                },
                out: Some(out.clone()),
            })?
            .with_context(|| format!("the demo export {} was refused", file.path.display()))?;
            // Open the batch as the hub would: signature, then decryption, then structure.
            let ciphertext = std::fs::read(&out)?;
            let sig = BatchSignature::from_json(&std::fs::read_to_string(signature_path(&out))?)?;
            sig.verify(&signing_key)?;
            let mut reader =
                PayloadReader::new(BufReader::new(decrypt_with(&ciphertext[..], &identity)?))?;
            let mut records = 0u64;
            while reader.next_record()?.is_some() {
                records += 1;
            }
            total += records;
            println!(
                "  {:<12} {:<8} {:>6} {:>9} {:>10}  signed, decrypted, {records} records",
                op.id,
                file.period,
                summary.receipt.rows_sent,
                summary.receipt.rows_rejected,
                summary.receipt.ciphertext_len
            );
        }
    }
    println!(
        "\n{total} pseudonymised records sealed for the hub from {} operators over {} months ({} distinct people in the synthetic population).",
        scenario.operators.len(),
        args.months,
        scenario.persons_seen()
    );
    println!("Exports: {}", dir.join("exports").display());
    println!(
        "Operator workspaces (config, profile, receipts, outbox): {}",
        dir.join("operators").display()
    );
    println!(
        "Read a batch as the hub does: age -d -i {} <batch.age>",
        hub.identity.display()
    );
    Ok(())
}
