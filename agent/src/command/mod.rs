//! The agent's subcommands. Each returns `anyhow` errors with context for people to act on.

pub mod bench;
pub mod check;
pub mod init;
pub mod run;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use synchro_shared::batch::Period;
use synchro_shared::pseudonym::ReferenceSecret;

use crate::config::{self, LoadedConfig};
use crate::export::{Export, ExportError};
use crate::mapping::Mapper;
use crate::pipeline::{locate_duplicates, Derivers, PassError, PassOutcome};
use crate::profile::Profile;
use crate::report::{Lang, Report};

/// Options every export-reading command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    /// The export file (CSV, XLSX, XLS or ODS)
    #[arg(long)]
    pub input: PathBuf,
    /// The month the export describes, YYYY-MM
    #[arg(long)]
    pub period: Period,
    /// The agent configuration
    #[arg(long, default_value = "agent.toml")]
    pub config: PathBuf,
    /// Report language: fr or en (default: the configuration's)
    #[arg(long)]
    pub lang: Option<Lang>,
    /// No progress bar and no summary (errors and refusals are still printed)
    #[arg(long)]
    pub quiet: bool,
}

/// Configuration and profile, loaded and validated.
pub struct Prepared {
    /// The configuration.
    pub cfg: LoadedConfig,
    /// The report language.
    pub lang: Lang,
    /// The mapping profile.
    pub profile: Profile,
}

impl Prepared {
    /// Loads `agent.toml` and its profile.
    pub fn load(config_path: &Path, lang: Option<Lang>) -> Result<Self> {
        let cfg = config::load(config_path)?;
        let lang = lang.unwrap_or(cfg.config.language);
        let profile = Profile::load(&cfg.resolve(&cfg.config.export.profile))?;
        Ok(Prepared { cfg, lang, profile })
    }

    /// Opens the export and resolves the profile's columns in it.
    pub fn open(&self, input: &Path, period: Period) -> Result<(Export, Mapper)> {
        let export = Export::open(input, &self.profile.file).map_err(|e| self.localised(e))?;
        let mapper = Mapper::new(
            &self.profile,
            &export,
            period,
            self.cfg.config.policy.birth_date,
        )
        .map_err(|e| self.localised(e))?;
        Ok((export, mapper))
    }

    /// A file-level export error in the report's language.
    pub fn localised(&self, e: ExportError) -> anyhow::Error {
        anyhow::anyhow!(e.describe(self.lang))
    }

    /// The real derivers, from the installed linkage secret and the reference secret.
    pub fn derivers(&self) -> Result<Derivers> {
        let keys = &self.cfg.config.keys;
        let linkage_path = self.cfg.resolve(&keys.linkage_secret);
        let linkage = synchro_keys::linkage::load(&linkage_path).with_context(|| {
            "the linkage secret is not installed: ask the key custodian for your wrapped secret, then run `synchro-agent install-secret --wrapped FILE`"
        })?;
        let reference_path = self.cfg.resolve(&keys.reference_secret);
        let text = synchro_keys::secret_file::read_secret(&reference_path)?;
        let reference = ReferenceSecret::decode(&text)
            .with_context(|| format!("{}: damaged reference secret", reference_path.display()))?;
        Ok(Derivers::new(
            &linkage,
            &reference,
            &self.cfg.config.operator_id,
        ))
    }

    /// The linkage secret's epoch and fingerprint, for headers and receipts.
    pub fn key_identity(&self) -> Result<(u32, String)> {
        let path = self.cfg.resolve(&self.cfg.config.keys.linkage_secret);
        let secret = synchro_keys::linkage::load(&path)?;
        Ok((secret.epoch(), secret.fingerprint()))
    }
}

/// A progress bar over the export's bytes; hidden when quiet or not on a terminal.
pub fn progress_bar(size: u64, quiet: bool) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(size),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
    ) {
        bar.set_style(style);
    }
    bar
}

/// Why a pass's outcome cannot be sent.
pub enum Verdict {
    /// Everything within tolerance.
    Sendable(Report),
    /// Too many rejected rows or duplicate ids: nothing may be sent.
    Refused(Report),
}

/// Locates duplicates (second pass) and applies the rejection tolerance.
pub fn judge(
    prepared: &Prepared,
    input: &Path,
    outcome: Result<PassOutcome, PassError>,
    mapper: &Mapper,
) -> Result<Verdict> {
    let outcome = outcome.map_err(|e| match e {
        PassError::Export(e) => prepared.localised(e),
        other => other.into(),
    })?;
    let mut report = outcome.report;
    if !outcome.duplicate_hashes.is_empty() {
        let export =
            Export::open(input, &prepared.profile.file).map_err(|e| prepared.localised(e))?;
        locate_duplicates(
            export,
            &mapper.local_id_column(),
            &outcome.duplicate_hashes,
            &mut report,
        )
        .map_err(|e| prepared.localised(e))?;
        return Ok(Verdict::Refused(report));
    }
    if report.rows_rejected > prepared.cfg.config.policy.max_rejected_rows {
        return Ok(Verdict::Refused(report));
    }
    Ok(Verdict::Sendable(report))
}

/// The sentence explaining a refusal.
pub fn refusal_sentence(report: &Report, max_rejected: u64, lang: Lang) -> String {
    let duplicates = report.problem_counts.contains_key("duplicate_local_id");
    match (lang, duplicates) {
        (Lang::Fr, true) => "Rien n'a été envoyé : des identifiants locaux apparaissent plusieurs fois.".into(),
        (Lang::En, true) => "Nothing was sent: some local ids appear more than once.".into(),
        (Lang::Fr, false) => format!(
            "Rien n'a été envoyé : {} ligne(s) rejetée(s), tolérance {max_rejected} (policy.max_rejected_rows). Corrigez l'export ou le profil et relancez.",
            report.rows_rejected
        ),
        (Lang::En, false) => format!(
            "Nothing was sent: {} row(s) rejected, tolerance {max_rejected} (policy.max_rejected_rows). Fix the export or the profile and run again.",
            report.rows_rejected
        ),
    }
}
