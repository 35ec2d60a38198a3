//! `run` builds, encrypts, signs and delivers a batch; `send` re-uploads a sealed one.
//!
//! Everything is written to temporary files first; only a batch that passed validation within
//! tolerance is renamed into place, signed, and delivered. Any error before that leaves nothing.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use synchro_shared::batch::{
    encrypt_to, BatchSignature, PayloadWriter, Sha256Writer, SignatureFields,
};
use synchro_shared::pseudonym::KEY_SET_VERSION;
use synchro_shared::template::TEMPLATE_VERSION;

use super::check::header;
use super::{judge, progress_bar, refusal_sentence, ExportArgs, Prepared, Verdict};
use crate::config::LoadedConfig;
use crate::pipeline::run_pass;
use crate::receipt::{Delivery, Receipt};
use crate::report::Lang;
use crate::upload::{HubClient, UploadError};

/// Arguments of `run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    /// The export.
    pub export: ExportArgs,
    /// Write the encrypted batch to this file for offline transfer instead of uploading it
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Arguments of `send`.
#[derive(Debug, Clone, clap::Args)]
pub struct SendArgs {
    /// A sealed batch written by `run` (its .sig file must be beside it)
    #[arg(long)]
    pub batch: PathBuf,
    /// The agent configuration
    #[arg(long, default_value = "agent.toml")]
    pub config: PathBuf,
}

/// What a successful run produced.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// The receipt written.
    pub receipt: Receipt,
    /// Where it was written.
    pub receipt_path: PathBuf,
}

/// The signature file beside a batch file.
pub fn signature_path(batch: &Path) -> PathBuf {
    let mut s = batch.as_os_str().to_owned();
    s.push(".sig");
    PathBuf::from(s)
}

fn client(cfg: &LoadedConfig) -> Result<HubClient, UploadError> {
    let hub = &cfg.config.hub;
    HubClient::new(
        &hub.url,
        hub.ca_certificate
            .as_deref()
            .map(|p| cfg.resolve(p))
            .as_deref(),
        hub.pinned_certificate
            .as_deref()
            .map(|p| cfg.resolve(p))
            .as_deref(),
        Duration::from_secs(hub.timeout_seconds),
    )
}

/// Builds and delivers a batch. Returns `None` when validation refused the export.
pub fn run(args: &RunArgs) -> Result<Option<RunSummary>> {
    let a = &args.export;
    let prepared = Prepared::load(&a.config, a.lang)?;
    let cfg = &prepared.cfg;
    let operator_id = cfg.config.operator_id.clone();
    if args.out.is_none() && cfg.config.hub.url.trim().is_empty() {
        bail!(
            "{}: `hub.url` is empty, so the batch cannot be uploaded; pass --out FILE to write it for offline transfer, or set hub.url",
            cfg.path.display()
        );
    }
    let derivers = prepared.derivers()?;
    let signing =
        synchro_keys::operator::load_signing_key(&cfg.resolve(&cfg.config.keys.signing_key))?;
    let recipient = cfg.hub_recipient()?;
    let header = header(&prepared, a.period)?;
    let (export, mapper) = prepared.open(&a.input, a.period)?;
    let export_name = export.name.clone();

    let receipts_dir = cfg
        .resolve(&cfg.config.output.receipts_dir)
        .join(a.period.to_string());
    std::fs::create_dir_all(&receipts_dir).with_context(|| {
        format!(
            "cannot create the receipts folder {}",
            receipts_dir.display()
        )
    })?;
    let stamp = header.created_at.format("%Y%m%dT%H%M%S%3fZ").to_string();
    let base_name = format!("{operator_id}-{}-{stamp}", a.period);
    let batch_path = match &args.out {
        Some(p) => p.clone(),
        None => receipts_dir.join(format!("{base_name}.batch.age")),
    };
    if batch_path.exists() {
        bail!(
            "{} already exists; choose another --out file",
            batch_path.display()
        );
    }
    let batch_dir = batch_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let tmp_batch = tempfile::Builder::new()
        .prefix(".synchro-batch-")
        .tempfile_in(&batch_dir)
        .with_context(|| format!("cannot write in {}", batch_dir.display()))?;
    let tmp_refs = tempfile::Builder::new()
        .prefix(".synchro-refs-")
        .tempfile_in(&receipts_dir)
        .with_context(|| format!("cannot write in {}", receipts_dir.display()))?;

    // age writes whole 64 KiB chunks, which a small buffer passes straight to the file; a
    // buffer larger than a chunk would only copy every byte once more.
    let hashing = Sha256Writer::new(BufWriter::new(tmp_batch.reopen()?));
    let encrypted = encrypt_to(hashing, &recipient)?;
    let mut payload = PayloadWriter::new(encrypted, &header)?;
    let mut refs = BufWriter::new(tmp_refs.reopen()?);
    refs.write_all(b"local_id,record_ref\n")?;
    let progress = progress_bar(export.size, a.quiet);
    // The batch is flushed to disk as it grows, off the pipeline's threads, so that the final
    // `sync_all` (which alone guarantees durability) has little left to wait for.
    let flusher = EarlyFlusher::start(tmp_batch.reopen()?);
    let outcome = run_pass(export, &mapper, &derivers, true, &progress, &mut |chunk| {
        payload
            .write_serialized(&chunk.payload, chunk.report.rows_accepted)
            .map_err(std::io::Error::other)?;
        refs.write_all(&chunk.refs)
    });
    flusher.stop();
    progress.finish_and_clear();
    let report = match judge(&prepared, &a.input, outcome, &mapper)? {
        Verdict::Sendable(report) => report,
        Verdict::Refused(report) => {
            // The temporary files are dropped (deleted) here: nothing half-way remains.
            eprint!("{}", report.render(prepared.lang));
            eprintln!(
                "\n{}",
                refusal_sentence(&report, cfg.config.policy.max_rejected_rows, prepared.lang)
            );
            return Ok(None);
        }
    };
    if report.problem_total() > 0 {
        eprint!("{}", report.render(prepared.lang));
    }
    let rows_sent = payload.rows();
    let encrypted = payload.finish(report.rows_rejected)?;
    let hashing = encrypted.finish()?;
    let (buffered, sha256, ciphertext_len) = hashing.finish();
    let file = buffered.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    refs.flush()?;
    refs.into_inner().map_err(|e| e.into_error())?.sync_all()?;

    let signature = BatchSignature::sign(
        SignatureFields {
            operator_id: operator_id.clone(),
            period: a.period,
            key_epoch: header.key_epoch,
            ciphertext_sha256: sha256,
            ciphertext_len,
            row_count: rows_sent,
        },
        &signing,
    );
    tmp_batch
        .persist_noclobber(&batch_path)
        .with_context(|| format!("cannot write {}", batch_path.display()))?;
    let sig_path = signature_path(&batch_path);
    std::fs::write(&sig_path, signature.to_json() + "\n")
        .with_context(|| format!("cannot write {}", sig_path.display()))?;
    let refs_path = receipts_dir.join(format!("{base_name}.refs.csv"));
    tmp_refs
        .persist_noclobber(&refs_path)
        .with_context(|| format!("cannot write {}", refs_path.display()))?;

    let delivery = if args.out.is_some() {
        Delivery::File
    } else {
        deliver(cfg, &batch_path, &signature)
    };
    let receipt = Receipt {
        operator_id,
        period: a.period,
        created_at: header.created_at,
        agent_version: env!("CARGO_PKG_VERSION").into(),
        template_version: TEMPLATE_VERSION,
        key_set_version: KEY_SET_VERSION,
        key_epoch: header.key_epoch,
        key_fingerprint: header.key_fingerprint.clone(),
        export_file: export_name,
        rows_read: report.rows_read,
        rows_sent,
        rows_rejected: report.rows_rejected,
        rejected_lines: report.rejected_lines.clone(),
        batch_file: batch_path.clone(),
        signature_file: sig_path,
        references_file: refs_path,
        ciphertext_sha256: hex::encode(sha256),
        ciphertext_len,
        nonce: signature.nonce.clone(),
        delivery,
    };
    let receipt_path = receipts_dir.join(format!("{base_name}.receipt.json"));
    receipt
        .write(&receipt_path)
        .with_context(|| format!("cannot write {}", receipt_path.display()))?;
    if !a.quiet {
        print_summary(&receipt, &receipt_path, prepared.lang);
    }
    if let Delivery::UploadFailed { error, .. } = &receipt.delivery {
        bail!(
            "upload failed: {error}. The sealed batch is kept at {}; retry with `synchro-agent send --batch {}`",
            batch_path.display(),
            batch_path.display()
        );
    }
    Ok(Some(RunSummary {
        receipt,
        receipt_path,
    }))
}

/// Asks the system to write a growing file to disk every [`EarlyFlusher::EVERY`], from its own
/// thread, until stopped. Only an optimisation: durability comes from the final `sync_all`.
struct EarlyFlusher {
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl EarlyFlusher {
    const EVERY: std::time::Duration = std::time::Duration::from_millis(400);

    fn start(file: std::fs::File) -> Self {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(Self::EVERY)
            {
                // A failure here is seen again, and reported, by the final sync_all.
                let _ = file.sync_data();
            }
        });
        EarlyFlusher { stop, thread }
    }

    fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

fn deliver(cfg: &LoadedConfig, batch: &Path, signature: &BatchSignature) -> Delivery {
    let url = cfg.config.hub.url.clone();
    match client(cfg).and_then(|c| c.upload(batch, signature)) {
        Ok(reply) => Delivery::Uploaded { url, reply },
        Err(e) => Delivery::UploadFailed {
            url,
            error: e.to_string(),
        },
    }
}

fn print_summary(receipt: &Receipt, receipt_path: &Path, lang: Lang) {
    let (sent, rejected, batch, delivered, receipt_label) = match lang {
        Lang::Fr => (
            "dossiers envoyés",
            "lignes rejetées",
            "lot chiffré",
            "remise",
            "reçu",
        ),
        Lang::En => (
            "records sent",
            "rows rejected",
            "encrypted batch",
            "delivery",
            "receipt",
        ),
    };
    match lang {
        Lang::Fr => println!(
            "Opérateur {}, période {}",
            receipt.operator_id, receipt.period
        ),
        Lang::En => println!(
            "Operator {}, period {}",
            receipt.operator_id, receipt.period
        ),
    }
    println!(
        "  {sent}: {}  {rejected}: {}",
        receipt.rows_sent, receipt.rows_rejected
    );
    println!(
        "  {batch}: {} (sha256 {})",
        receipt.batch_file.display(),
        receipt.ciphertext_sha256
    );
    let how = match &receipt.delivery {
        Delivery::File => match lang {
            Lang::Fr => "fichier à transmettre hors ligne (avec son .sig)".to_string(),
            Lang::En => "file for offline transfer (with its .sig)".to_string(),
        },
        Delivery::Uploaded { url, reply } => format!("{url}: {} {}", reply.status, reply.message),
        Delivery::UploadFailed { url, error } => format!("{url}: {error}"),
    };
    println!("  {delivered}: {how}");
    println!("  {receipt_label}: {}", receipt_path.display());
}

/// Uploads a sealed batch written earlier (after a failed upload or an offline run).
pub fn send(args: &SendArgs) -> Result<()> {
    let cfg = crate::config::load(&args.config)?;
    if cfg.config.hub.url.trim().is_empty() {
        bail!(
            "{}: `hub.url` is empty; set the hub's https address to upload",
            cfg.path.display()
        );
    }
    let sig_path = signature_path(&args.batch);
    let text = std::fs::read_to_string(&sig_path).with_context(|| {
        format!(
            "cannot read the signature {} (it must be beside the batch)",
            sig_path.display()
        )
    })?;
    let signature = BatchSignature::from_json(&text)?;
    let reply = client(&cfg)?.upload(&args.batch, &signature)?;
    println!("{}: {} {}", cfg.config.hub.url, reply.status, reply.message);
    Ok(())
}
