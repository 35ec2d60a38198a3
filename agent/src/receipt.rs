//! The local receipt of a run: what was sent, its counts and its ciphertext hash.
//! Receipts and reference tables stay on the operator's side.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use synchro_shared::batch::Period;

use crate::upload::HubReply;

/// How the batch left (or did not leave) the operator.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Delivery {
    /// Written to a file for offline transfer.
    File,
    /// Uploaded and acknowledged by the hub.
    Uploaded {
        /// The hub URL.
        url: String,
        /// Its reply.
        reply: HubReply,
    },
    /// The upload failed; the batch file is kept for `synchro-agent send`.
    UploadFailed {
        /// The hub URL.
        url: String,
        /// Why.
        error: String,
    },
}

/// A receipt, written as JSON beside the reference table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Receipt {
    /// Sending operator.
    pub operator_id: String,
    /// The month.
    pub period: Period,
    /// When the batch was built.
    pub created_at: DateTime<Utc>,
    /// Agent version.
    pub agent_version: String,
    /// Record template version.
    pub template_version: u32,
    /// Match-key set version.
    pub key_set_version: u32,
    /// Linkage-secret epoch.
    pub key_epoch: u32,
    /// Linkage-secret fingerprint.
    pub key_fingerprint: String,
    /// The export's file name.
    pub export_file: String,
    /// Rows read from the export.
    pub rows_read: u64,
    /// Records in the batch.
    pub rows_sent: u64,
    /// Rows left out under the tolerance.
    pub rows_rejected: u64,
    /// Their lines (first ones).
    pub rejected_lines: Vec<u64>,
    /// The sealed batch.
    pub batch_file: PathBuf,
    /// Its detached signature.
    pub signature_file: PathBuf,
    /// The table from local ids to references (operator only).
    pub references_file: PathBuf,
    /// SHA-256 of the ciphertext.
    pub ciphertext_sha256: String,
    /// Ciphertext length.
    pub ciphertext_len: u64,
    /// The signature's nonce.
    pub nonce: String,
    /// Delivery.
    pub delivery: Delivery,
}

impl Receipt {
    /// Writes the receipt as pretty JSON.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, text + "\n")
    }

    /// Reads a receipt.
    pub fn read(path: &Path) -> std::io::Result<Self> {
        let text = std::fs::read_to_string(path)?;
        serde_json::from_str(&text).map_err(std::io::Error::other)
    }
}
