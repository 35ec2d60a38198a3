//! Synchro's key lifecycle in one auditable place.
//!
//! - [`secret_file`]: writing secrets with owner-only permissions, refusing readable ones.
//! - [`linkage`]: the territory's linkage secret (epochs, rotation) and its wrapping to operators.
//! - [`hub`]: the hub's age key pair (batches are encrypted to it).
//! - [`operator`]: an operator's key pair (age identity to receive the wrapped secret,
//!   Ed25519 key to sign batches) and the public file the hub enrols.
//! - [`fingerprint`]: fingerprints of every kind of key file, for DPOs.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod fingerprint;
pub mod hub;
pub mod linkage;
pub mod operator;
pub mod secret_file;

/// Errors of key operations. None carries secret material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A secret file is readable by other users.
    #[error("{path}: this secret file is readable by other users (mode {mode:o}); run `chmod 600 {path}` and check who may have copied it")]
    Exposed {
        /// The file.
        path: std::path::PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Refusing to overwrite an existing key file.
    #[error("{0}: already exists; keys are never overwritten (move it away first if you really mean to replace it)")]
    Exists(std::path::PathBuf),
    /// The file is not the kind of key expected.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Encryption or decryption of a wrapped secret failed.
    #[error("{path}: cannot unwrap: this wrapped secret was not made for this operator identity, or it is damaged")]
    Unwrap {
        /// The wrapped file.
        path: std::path::PathBuf,
    },
}

/// Shorthand for results of key operations.
pub type Result<T> = std::result::Result<T, KeyError>;

pub(crate) fn format_error(path: &std::path::Path, message: impl Into<String>) -> KeyError {
    KeyError::Format {
        path: path.to_path_buf(),
        message: message.into(),
    }
}
