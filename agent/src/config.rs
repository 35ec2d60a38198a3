//! The agent's configuration file (`agent.toml`), validated at start-up.
//!
//! Every option has a documented default; secrets are never in this file, only paths to them.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use synchro_shared::batch::validate_operator_id;
use synchro_shared::settings::{base_dir, load_toml, SettingsError};
use synchro_shared::template::BirthDateMinimisation;

use crate::report::Lang;

/// The commented example printed by `synchro-agent default-config` and written by `init`.
pub const EXAMPLE: &str = include_str!("../agent.example.toml");

/// A configuration problem, naming the file, the key and the fix.
pub type ConfigError = SettingsError;

/// `agent.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// This operator's id, as enrolled at the hub (e.g. `siao-69`).
    pub operator_id: String,
    /// Language of reports: `fr` (default) or `en`.
    #[serde(default)]
    pub language: Lang,
    /// Key files.
    #[serde(default)]
    pub keys: KeysConfig,
    /// Where batches go.
    pub hub: HubConfig,
    /// The operator's export.
    #[serde(default)]
    pub export: ExportConfig,
    /// Tolerance and minimisation.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// Local outputs.
    #[serde(default)]
    pub output: OutputConfig,
}

/// `[keys]`: paths to key files, relative to the configuration file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysConfig {
    /// The linkage secret installed with `install-secret` (default `keys/linkage-secret.key`).
    #[serde(default = "default_linkage_secret")]
    pub linkage_secret: PathBuf,
    /// This operator's reference secret (default `keys/reference-secret.key`).
    #[serde(default = "default_reference_secret")]
    pub reference_secret: PathBuf,
    /// This operator's Ed25519 signing key (default `keys/operator-signing.key`).
    #[serde(default = "default_signing_key")]
    pub signing_key: PathBuf,
    /// This operator's age identity (default `keys/operator-identity.key`).
    #[serde(default = "default_identity")]
    pub identity: PathBuf,
}

fn default_linkage_secret() -> PathBuf {
    "keys/linkage-secret.key".into()
}
fn default_reference_secret() -> PathBuf {
    "keys/reference-secret.key".into()
}
fn default_signing_key() -> PathBuf {
    "keys/operator-signing.key".into()
}
fn default_identity() -> PathBuf {
    "keys/operator-identity.key".into()
}

impl Default for KeysConfig {
    fn default() -> Self {
        KeysConfig {
            linkage_secret: default_linkage_secret(),
            reference_secret: default_reference_secret(),
            signing_key: default_signing_key(),
            identity: default_identity(),
        }
    }
}

/// `[hub]`: the hub's public key and address.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubConfig {
    /// The hub's age recipient (`age1…`), given by the technical operator.
    pub recipient: String,
    /// The hub's HTTPS address; empty for offline transfer only (default empty).
    #[serde(default)]
    pub url: String,
    /// PEM file of the CA that signed the hub's certificate (default: none).
    #[serde(default)]
    pub ca_certificate: Option<PathBuf>,
    /// PEM file of the hub's own certificate, pinned instead of a CA (default: none).
    #[serde(default)]
    pub pinned_certificate: Option<PathBuf>,
    /// Upload timeout in seconds (default 300).
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

fn default_timeout() -> u64 {
    300
}

/// `[export]`: how to read the operator's export.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportConfig {
    /// The mapping profile (default `profile.toml`).
    #[serde(default = "default_profile")]
    pub profile: PathBuf,
}

fn default_profile() -> PathBuf {
    "profile.toml".into()
}

impl Default for ExportConfig {
    fn default() -> Self {
        ExportConfig {
            profile: default_profile(),
        }
    }
}

/// `[policy]`: tolerance for rejected rows and data minimisation.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// How many rows may be rejected (and left out, listed) before the whole run aborts (default 0).
    #[serde(default)]
    pub max_rejected_rows: u64,
    /// What is sent about birth dates: `birth_year` (default) or `age_band`.
    #[serde(default)]
    pub birth_date: BirthDateMinimisation,
}

/// `[output]`: local files the agent keeps.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Receipts and reference tables (default `receipts`). Keep this folder on the operator's side.
    #[serde(default = "default_receipts")]
    pub receipts_dir: PathBuf,
}

fn default_receipts() -> PathBuf {
    "receipts".into()
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig {
            receipts_dir: default_receipts(),
        }
    }
}

/// A loaded configuration with paths resolved against its directory.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The parsed file.
    pub config: AgentConfig,
    /// The file it came from.
    pub path: PathBuf,
    /// The directory relative paths are resolved against.
    pub base: PathBuf,
}

impl LoadedConfig {
    /// Resolves a configured path relative to the configuration file.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    /// The hub recipient, parsed.
    pub fn hub_recipient(&self) -> Result<age::x25519::Recipient, ConfigError> {
        self.config
            .hub
            .recipient
            .trim()
            .parse()
            .map_err(|_| self.invalid("hub.recipient", "not an age recipient: paste the hub's `age1…` line given by the technical operator".into()))
    }

    fn invalid(&self, key: &'static str, message: String) -> ConfigError {
        SettingsError::invalid(&self.path, key, message)
    }
}

/// Loads and validates `agent.toml`. Loading has no side effects.
pub fn load(path: &Path) -> Result<LoadedConfig, ConfigError> {
    let config: AgentConfig = load_toml(
        path,
        "run `synchro-agent init` to create one, or pass --config",
    )?;
    let base = base_dir(path);
    let loaded = LoadedConfig {
        config,
        path: path.to_path_buf(),
        base,
    };
    validate(&loaded)?;
    Ok(loaded)
}

fn validate(loaded: &LoadedConfig) -> Result<(), ConfigError> {
    let c = &loaded.config;
    validate_operator_id(&c.operator_id)
        .map_err(|e| loaded.invalid("operator_id", e.to_string()))?;
    loaded.hub_recipient()?;
    let url = c.hub.url.trim();
    if !url.is_empty() && !url.starts_with("https://") {
        return Err(loaded.invalid(
            "hub.url",
            format!("{url:?} must start with https:// (batches are only uploaded over TLS); leave it empty for offline transfer"),
        ));
    }
    if c.hub.ca_certificate.is_some() && c.hub.pinned_certificate.is_some() {
        return Err(loaded.invalid(
            "hub.pinned_certificate",
            "set either ca_certificate or pinned_certificate, not both".into(),
        ));
    }
    if c.hub.timeout_seconds == 0 || c.hub.timeout_seconds > 3600 {
        return Err(loaded.invalid("hub.timeout_seconds", "must be between 1 and 3600".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("agent.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    const RECIPIENT: &str = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";

    #[test]
    fn example_parses() {
        let dir = tempfile::tempdir().unwrap();
        let text = EXAMPLE.replace("age1REPLACE_WITH_THE_HUB_RECIPIENT", RECIPIENT);
        let loaded = load(&write(dir.path(), &text)).unwrap();
        assert_eq!(loaded.config.policy.max_rejected_rows, 0);
        assert_eq!(loaded.config.language, Lang::Fr);
    }

    #[test]
    fn errors_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let base = format!("operator_id = \"siao-69\"\n[hub]\nrecipient = \"{RECIPIENT}\"\n");
        let err = load(&write(dir.path(), &format!("{base}url = \"http://hub\"\n"))).unwrap_err();
        assert!(err.to_string().contains("hub.url"), "{err}");
        let err = load(&write(dir.path(), &base.replace("siao-69", "SIAO 69"))).unwrap_err();
        assert!(err.to_string().contains("operator_id"), "{err}");
        let err = load(&write(dir.path(), &format!("{base}colour = 1\n"))).unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
        let err = load(&write(dir.path(), &base.replace(RECIPIENT, "age1nope"))).unwrap_err();
        assert!(err.to_string().contains("hub.recipient"), "{err}");
    }
}
