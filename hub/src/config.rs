//! `hub.toml`: every option documented, validated at start-up with errors naming the key.
//! Secrets are never in this file, only paths to them (relative to the file's folder).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use synchro_shared::settings::{base_dir, load_toml, SettingsError};

use crate::linkage::LinkParams;

/// The commented example written by `synchro-hub init`.
pub const EXAMPLE: &str = include_str!("../hub.example.toml");

/// A configuration problem, naming the file, the key and the fix.
pub type ConfigError = SettingsError;

/// `hub.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubConfig {
    /// The territory's name, used as the audit log origin (`synchro.<territory>/audit`).
    pub territory: String,
    /// Network settings.
    #[serde(default)]
    pub server: ServerConfig,
    /// Database settings.
    #[serde(default)]
    pub database: DatabaseConfig,
    /// Key files.
    #[serde(default)]
    pub keys: KeysConfig,
    /// Linkage-secret epochs accepted.
    #[serde(default)]
    pub linkage: LinkageConfig,
    /// Size limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Retention durations.
    #[serde(default)]
    pub retention: RetentionConfig,
}

/// `[server]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address and port to listen on (default `127.0.0.1:8443`).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// TLS certificate chain, PEM (default `tls/cert.pem`, self-signed by `init`).
    #[serde(default = "default_cert")]
    pub tls_certificate: PathBuf,
    /// TLS private key, PEM (default `tls/key.pem`).
    #[serde(default = "default_key")]
    pub tls_private_key: PathBuf,
    /// Serve plain HTTP instead, only behind a TLS-terminating reverse proxy (default false).
    #[serde(default)]
    pub plain_http_behind_proxy: bool,
}

fn default_listen() -> String {
    "127.0.0.1:8443".into()
}
fn default_cert() -> PathBuf {
    "tls/cert.pem".into()
}
fn default_key() -> PathBuf {
    "tls/key.pem".into()
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            tls_certificate: default_cert(),
            tls_private_key: default_key(),
            plain_http_behind_proxy: false,
        }
    }
}

/// `[database]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://hub.db` (default, relative to this file) or `postgres://user@host/db`.
    /// The PostgreSQL password is read from the file named by `password_file`, never from here.
    #[serde(default = "default_db")]
    pub url: String,
    /// File holding the PostgreSQL password (optional).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

fn default_db() -> String {
    "sqlite://hub.db".into()
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: default_db(),
            password_file: None,
        }
    }
}

/// `[keys]`: the hub's own secrets, by path.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysConfig {
    /// The hub's age identity that opens batches (default `keys/hub-identity.key`).
    #[serde(default = "default_identity")]
    pub identity: PathBuf,
    /// The hub-only secret of the second keyed pass over match keys (default `keys/hub-pepper.key`).
    #[serde(default = "default_pepper")]
    pub pepper: PathBuf,
    /// The Ed25519 key that signs audit checkpoints (default `keys/audit-signing.key`).
    #[serde(default = "default_audit_key")]
    pub audit_signing: PathBuf,
}

fn default_identity() -> PathBuf {
    "keys/hub-identity.key".into()
}
fn default_pepper() -> PathBuf {
    "keys/hub-pepper.key".into()
}
fn default_audit_key() -> PathBuf {
    "keys/audit-signing.key".into()
}

impl Default for KeysConfig {
    fn default() -> Self {
        KeysConfig {
            identity: default_identity(),
            pepper: default_pepper(),
            audit_signing: default_audit_key(),
        }
    }
}

/// `[linkage]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
// Missing keys take `LinkageConfig::default()`, which takes the linkage's own defaults.
#[serde(default, deny_unknown_fields)]
pub struct LinkageConfig {
    /// Linkage-secret epochs accepted (default `[1]`; two during a rotation).
    pub accepted_epochs: Vec<u32>,
    /// Public fingerprint of each accepted epoch's secret, as the custodian printed it
    /// (`"1" = "ab12-…"`); when given, batches with another fingerprint are refused.
    pub fingerprints: std::collections::BTreeMap<String, String>,
    /// Re-link and give ids after each accepted batch (default true; false leaves it to
    /// `synchro-hub process`, e.g. while loading many months at once).
    pub process_after_ingest: bool,
    /// Link only the batches received since the last run and the records they touch, with the
    /// last full run's model, keeping earlier decisions (default true; false relinks
    /// everything at every run; see docs/linkage.md).
    pub incremental: bool,
    /// Minimum match weight, log2 posterior odds, to link two records (default -1: one chance
    /// in three; see docs/linkage.md).
    pub threshold: f64,
    /// Minimum match weight for a pair whose keys contradict each other as relatives' and
    /// namesakes' do (two different exact dates, other first initials); never below
    /// `threshold` (default 0: even odds).
    pub contradiction_threshold: f64,
    /// Extra evidence (log2) needed to link two records of the same operator (default 4).
    pub same_operator_penalty: f64,
    /// Key values held by more records than this are not used for blocking (default 50).
    pub max_block: usize,
    /// Largest number of records one person may gather (default 24).
    pub max_cluster: usize,
    /// Largest spread of birth years within one person, unless names and day/month agree
    /// (default 2).
    pub max_year_span: i32,
    /// Iterations of the EM estimation of match weights (default 40).
    pub em_iterations: usize,
    /// Largest term-frequency adjustment, log2, either way (default 4).
    pub tf_cap: f64,
    /// Match the other members of two households that share a person, even without a shared
    /// key, as one family seen twice (default true).
    pub household_context: bool,
}

fn default_epochs() -> Vec<u32> {
    vec![1]
}

impl Default for LinkageConfig {
    fn default() -> Self {
        let p = LinkParams::default();
        LinkageConfig {
            accepted_epochs: default_epochs(),
            fingerprints: Default::default(),
            process_after_ingest: true,
            incremental: true,
            threshold: p.threshold,
            contradiction_threshold: p.contradiction_threshold,
            same_operator_penalty: p.same_operator_penalty,
            max_block: p.max_block,
            max_cluster: p.max_cluster,
            max_year_span: p.max_year_span,
            em_iterations: p.em_iterations,
            tf_cap: p.tf_cap,
            household_context: p.household_context,
        }
    }
}

impl LinkageConfig {
    /// The linkage parameters.
    pub fn params(&self) -> LinkParams {
        LinkParams {
            threshold: self.threshold,
            contradiction_threshold: self.contradiction_threshold,
            same_operator_penalty: self.same_operator_penalty,
            max_block: self.max_block,
            max_cluster: self.max_cluster,
            max_year_span: self.max_year_span,
            em_iterations: self.em_iterations,
            tf_cap: self.tf_cap,
            household_context: self.household_context,
        }
    }
}

/// `[limits]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest accepted batch in MiB (default 512: about a million records).
    #[serde(default = "default_max_batch")]
    pub max_batch_mib: u64,
}

fn default_max_batch() -> u64 {
    512
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_batch_mib: default_max_batch(),
        }
    }
}

/// `[retention]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Months a pseudonymised record is kept after the person's last contact at any operator
    /// (default 24: the CNIL norm for social follow-up files, AU-048).
    #[serde(default = "default_records")]
    pub records_months_after_last_contact: u32,
    /// Days the raw encrypted batch is kept after ingestion (default 90: long enough to
    /// re-process a month, short enough not to keep a second copy of the data).
    #[serde(default = "default_raw")]
    pub raw_batches_days: u32,
    /// Years audit entries are kept (default 10: they hold no personal data and prove
    /// the processing's history to DPOs and auditors).
    #[serde(default = "default_audit")]
    pub audit_years: u32,
    /// Hours between automatic purges while serving (default 24).
    #[serde(default = "default_purge_interval")]
    pub purge_interval_hours: u32,
}

fn default_records() -> u32 {
    24
}
fn default_raw() -> u32 {
    90
}
fn default_audit() -> u32 {
    10
}
fn default_purge_interval() -> u32 {
    24
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            records_months_after_last_contact: default_records(),
            raw_batches_days: default_raw(),
            audit_years: default_audit(),
            purge_interval_hours: default_purge_interval(),
        }
    }
}

/// A loaded configuration with paths resolved against its folder.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The parsed file.
    pub config: HubConfig,
    /// The file it came from.
    pub path: PathBuf,
    /// The folder relative paths are resolved against.
    pub base: PathBuf,
}

impl LoadedConfig {
    /// Resolves a configured path.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    /// The database URL with relative SQLite paths resolved (no password inside).
    pub fn database_url(&self) -> String {
        let url = &self.config.database.url;
        match url.strip_prefix("sqlite://") {
            Some(rest) if !rest.starts_with('/') && rest != ":memory:" => {
                format!("sqlite://{}", self.base.join(rest).display())
            }
            _ => url.clone(),
        }
    }

    /// The audit log origin.
    pub fn origin(&self) -> String {
        format!("synchro.{}/audit", self.config.territory)
    }
}

/// A `[linkage]` option given on a command line that is not KEY=VALUE with a TOML value.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{setting}`: expected KEY=VALUE with a number or true/false as the value, e.g. threshold=-1.5"
)]
pub struct SettingError {
    /// The setting as given.
    pub setting: String,
}

/// `[linkage]` options given as KEY=VALUE on a command line (`threshold=-1.5`), as the TOML
/// table hub.toml would hold; keys and ranges are checked where the table is used.
pub fn linkage_settings<'a>(
    settings: impl IntoIterator<Item = &'a str>,
) -> Result<toml::Table, SettingError> {
    let mut table = toml::Table::new();
    for setting in settings {
        let error = || SettingError {
            setting: setting.to_string(),
        };
        let (key, value) = setting.split_once('=').ok_or_else(error)?;
        let mut parsed: toml::Table =
            toml::from_str(&format!("v = {value}")).map_err(|_| error())?;
        let value = parsed.remove("v").ok_or_else(error)?;
        table.insert(key.trim().to_string(), value);
    }
    Ok(table)
}

/// Loads and validates `hub.toml` (no side effects).
pub fn load(path: &Path) -> Result<LoadedConfig, ConfigError> {
    let config: HubConfig = load_toml(
        path,
        "run `synchro-hub init` to create a hub, or pass --config",
    )?;
    let base = base_dir(path);
    let invalid = |key: &'static str, message: String| SettingsError::invalid(path, key, message);
    let c = &config;
    if c.territory.is_empty()
        || !c
            .territory
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        return Err(invalid(
            "territory",
            "use lower-case letters, digits, dots and hyphens (e.g. metropole-lyon)".into(),
        ));
    }
    if c.server.listen.parse::<std::net::SocketAddr>().is_err() {
        return Err(invalid(
            "server.listen",
            format!(
                "{:?} is not an address:port such as 127.0.0.1:8443",
                c.server.listen
            ),
        ));
    }
    let url = &c.database.url;
    if !url.starts_with("sqlite://")
        && !url.starts_with("postgres://")
        && !url.starts_with("postgresql://")
    {
        return Err(invalid(
            "database.url",
            "must start with sqlite:// or postgres://".into(),
        ));
    }
    if url.contains('@')
        && url
            .split('@')
            .next()
            .is_some_and(|userinfo| userinfo.matches(':').count() > 1)
    {
        return Err(invalid(
            "database.url",
            "must not contain a password; put it in a file named by database.password_file".into(),
        ));
    }
    if c.linkage.accepted_epochs.is_empty() || c.linkage.accepted_epochs.contains(&0) {
        return Err(invalid(
            "linkage.accepted_epochs",
            "list the accepted epochs, 1 or more (e.g. [1])".into(),
        ));
    }
    let l = &c.linkage;
    let ranges: [(&'static str, bool, &str); 8] = [
        (
            "linkage.threshold",
            (-20.0..=40.0).contains(&l.threshold),
            "a log2 weight between -20 and 40 (default -1)",
        ),
        (
            "linkage.contradiction_threshold",
            (-20.0..=40.0).contains(&l.contradiction_threshold),
            "a log2 weight between -20 and 40 (default 0)",
        ),
        (
            "linkage.same_operator_penalty",
            (0.0..=40.0).contains(&l.same_operator_penalty),
            "between 0 and 40 (default 4)",
        ),
        (
            "linkage.max_block",
            (2..=100_000).contains(&l.max_block),
            "between 2 and 100000 (default 50)",
        ),
        (
            "linkage.max_cluster",
            (2..=10_000).contains(&l.max_cluster),
            "between 2 and 10000 (default 24)",
        ),
        (
            "linkage.max_year_span",
            (0..=100).contains(&l.max_year_span),
            "between 0 and 100 years (default 2)",
        ),
        (
            "linkage.em_iterations",
            (1..=1000).contains(&l.em_iterations),
            "between 1 and 1000 (default 40)",
        ),
        (
            "linkage.tf_cap",
            (0.0..=20.0).contains(&l.tf_cap),
            "between 0 and 20 (default 4)",
        ),
    ];
    if let Some((key, _, fix)) = ranges.iter().find(|(_, ok, _)| !ok) {
        return Err(invalid(key, format!("must be {fix}")));
    }
    if c.limits.max_batch_mib == 0 || c.limits.max_batch_mib > 4096 {
        return Err(invalid(
            "limits.max_batch_mib",
            "must be between 1 and 4096".into(),
        ));
    }
    if c.retention.records_months_after_last_contact == 0 {
        return Err(invalid(
            "retention.records_months_after_last_contact",
            "must be at least 1".into(),
        ));
    }
    Ok(LoadedConfig {
        config,
        path: path.to_path_buf(),
        base,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_parses_and_errors_name_keys() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hub.toml");
        std::fs::write(&p, EXAMPLE).unwrap();
        let c = load(&p).unwrap();
        assert_eq!(c.config.retention.records_months_after_last_contact, 24);
        assert!(c.database_url().starts_with("sqlite:///"));
        std::fs::write(&p, EXAMPLE.replace("127.0.0.1:8443", "nowhere")).unwrap();
        assert!(load(&p).unwrap_err().to_string().contains("server.listen"));
        std::fs::write(&p, format!("{EXAMPLE}\n[extra]\nx = 1\n")).unwrap();
        assert!(load(&p).unwrap_err().to_string().contains("extra"));
        std::fs::write(
            &p,
            EXAMPLE.replace("sqlite://hub.db", "postgres://u:secret@h/db"),
        )
        .unwrap();
        let e = load(&p).unwrap_err().to_string();
        assert!(e.contains("database.url") && !e.contains("secret"), "{e}");
    }
}
