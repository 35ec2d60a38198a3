//! Loading TOML settings files (agent.toml, profile.toml, hub.toml) with errors that name the
//! file, the key and the fix. Loading has no side effects.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// A settings file problem.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file could not be read.
    #[error("{path}: cannot read this file ({source}); {hint}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What to do about it.
        hint: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// TOML syntax error or unknown key (the parser's message names the key and line).
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A key has an invalid value.
    #[error("{path}: `{key}`: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The offending key.
        key: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

impl SettingsError {
    /// An invalid value for `key` in `path`.
    pub fn invalid(path: &Path, key: impl Into<String>, message: impl Into<String>) -> Self {
        SettingsError::Invalid {
            path: path.to_path_buf(),
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Reads and parses a TOML file; `hint` says what to do when it cannot be read.
pub fn load_toml<T: DeserializeOwned>(path: &Path, hint: &'static str) -> Result<T, SettingsError> {
    let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
        path: path.to_path_buf(),
        hint,
        source,
    })?;
    parse_toml(&text, path)
}

/// Parses TOML text; `path` only names it in errors.
pub fn parse_toml<T: DeserializeOwned>(text: &str, path: &Path) -> Result<T, SettingsError> {
    toml::from_str(text).map_err(|e| SettingsError::Syntax {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// The folder relative paths in a settings file are resolved against.
pub fn base_dir(path: &Path) -> PathBuf {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf()
}
