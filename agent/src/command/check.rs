//! `check` validates an export and reports; `preview` writes exactly what would be sent, in clear.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use synchro_shared::batch::{BatchHeader, PayloadWriter, FORMAT_NAME, FORMAT_VERSION};
use synchro_shared::pseudonym::KEY_SET_VERSION;
use synchro_shared::template::TEMPLATE_VERSION;

use super::{judge, progress_bar, refusal_sentence, ExportArgs, Prepared, Verdict};
use crate::pipeline::{run_pass, Derivers};

/// Arguments of `preview`.
#[derive(Debug, Clone, clap::Args)]
pub struct PreviewArgs {
    #[command(flatten)]
    /// The export.
    pub export: ExportArgs,
    /// Write the clear payload to this file instead of standard output
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Validates the export; returns whether it could be sent as is.
pub fn check(args: &ExportArgs) -> Result<bool> {
    let prepared = Prepared::load(&args.config, args.lang)?;
    let (export, mapper) = prepared.open(&args.input, args.period)?;
    let progress = progress_bar(export.size, args.quiet);
    let derivers = Derivers::ephemeral(&prepared.cfg.config.operator_id);
    let outcome = run_pass(
        export,
        &mapper,
        &derivers,
        false,
        &progress,
        &mut |_| Ok(()),
    );
    progress.finish_and_clear();
    let verdict = judge(&prepared, &args.input, outcome, &mapper)?;
    let max = prepared.cfg.config.policy.max_rejected_rows;
    let (report, ok) = match verdict {
        Verdict::Sendable(r) => (r, true),
        Verdict::Refused(r) => (r, false),
    };
    print!("{}", report.render(prepared.lang));
    let clean = ok && report.problem_total() == 0;
    if !ok {
        println!("\n{}", refusal_sentence(&report, max, prepared.lang));
    } else if clean {
        println!(
            "\n{}",
            match prepared.lang {
                crate::report::Lang::Fr => "Aucun problème : l'export peut être envoyé.",
                crate::report::Lang::En => "No problem: the export can be sent.",
            }
        );
    }
    Ok(clean)
}

/// The header of a batch built now from this configuration.
pub fn header(prepared: &Prepared, period: synchro_shared::batch::Period) -> Result<BatchHeader> {
    let (key_epoch, key_fingerprint) = prepared.key_identity()?;
    Ok(BatchHeader {
        format: FORMAT_NAME.into(),
        format_version: FORMAT_VERSION,
        template_version: TEMPLATE_VERSION,
        key_set_version: KEY_SET_VERSION,
        operator_id: prepared.cfg.config.operator_id.clone(),
        period,
        key_epoch,
        key_fingerprint,
        agent_version: env!("CARGO_PKG_VERSION").into(),
        created_at: chrono::Utc::now(),
        minimisation: prepared.cfg.config.policy.birth_date,
    })
}

/// Writes the clear payload that `run` would encrypt.
pub fn preview(args: &PreviewArgs) -> Result<bool> {
    let a = &args.export;
    let prepared = Prepared::load(&a.config, a.lang)?;
    let derivers = prepared.derivers()?;
    let (export, mapper) = prepared.open(&a.input, a.period)?;
    let header = header(&prepared, a.period)?;
    let progress = progress_bar(export.size, a.quiet || args.out.is_none());
    let (sink, tmp): (Box<dyn Write>, Option<tempfile::NamedTempFile>) = match &args.out {
        // A device or a named pipe (`/dev/null`, a pipe to a viewer) is written in place:
        // renaming the finished file over it would replace the device or pipe itself.
        Some(path) if path.exists() && !path.is_file() && !path.is_dir() => {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            (Box::new(std::io::BufWriter::new(file)), None)
        }
        Some(path) => {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let tmp = tempfile::NamedTempFile::new_in(dir)
                .with_context(|| format!("cannot write in {}", dir.display()))?;
            let file = tmp.reopen()?;
            (Box::new(std::io::BufWriter::new(file)), Some(tmp))
        }
        None => (
            Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            None,
        ),
    };
    let mut payload = PayloadWriter::new(sink, &header)?;
    let outcome = run_pass(export, &mapper, &derivers, true, &progress, &mut |chunk| {
        payload
            .write_serialized(&chunk.payload, chunk.report.rows_accepted)
            .map_err(std::io::Error::other)
    });
    progress.finish_and_clear();
    let verdict = judge(&prepared, &a.input, outcome, &mapper)?;
    match verdict {
        Verdict::Sendable(report) => {
            payload.finish(report.rows_rejected)?.flush()?;
            if let Some(out) = &args.out {
                if let Some(tmp) = tmp {
                    tmp.persist(out)
                        .with_context(|| format!("cannot write {}", out.display()))?;
                }
                eprintln!("{}: {} records", out.display(), report.rows_accepted);
            }
            if report.problem_total() > 0 {
                eprint!("{}", report.render(prepared.lang));
            }
            Ok(true)
        }
        Verdict::Refused(report) => {
            eprint!("{}", report.render(prepared.lang));
            eprintln!(
                "\n{}",
                refusal_sentence(
                    &report,
                    prepared.cfg.config.policy.max_rejected_rows,
                    prepared.lang
                )
            );
            Ok(false)
        }
    }
}
