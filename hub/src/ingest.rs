//! Opening a sealed batch: every check the hub makes before anything is stored.
//!
//! Order matters: the signature is checked on the ciphertext before decryption, so an
//! unsigned or re-attributed upload costs the hub no decryption and reveals nothing.

use std::io::BufReader;

use synchro_keys::operator::OperatorPublic;
use synchro_shared::batch::{
    decrypt_with, BatchError, BatchHeader, BatchSignature, BatchTrailer, PayloadReader,
    FORMAT_VERSION,
};
use synchro_shared::pseudonym::KEY_SET_VERSION;
use synchro_shared::template::{Record, TEMPLATE_VERSION};

/// What the hub accepts, from its configuration.
#[derive(Debug, Clone)]
pub struct Acceptance {
    /// Linkage-secret epochs currently accepted (two during a rotation).
    pub key_epochs: Vec<u32>,
    /// Expected fingerprint per accepted epoch (optional; checked when given).
    pub key_fingerprints: Vec<(u32, String)>,
}

/// Why a batch is refused. Each has a stable machine code and a human sentence.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// No signature came with the upload.
    #[error(
        "the upload carries no Synchro-Signature header: batches must be signed by the operator"
    )]
    Unsigned,
    /// The signature cannot be read (including a malformed period).
    #[error("the signature is malformed: {0}")]
    SignatureFormat(String),
    /// The operator is not enrolled.
    #[error("operator {0} is not enrolled at this hub; ask the technical operator to run `synchro-hub operator add`")]
    UnknownOperator(String),
    /// The operator is disabled.
    #[error("operator {0} is disabled at this hub")]
    DisabledOperator(String),
    /// The body is larger than allowed.
    #[error("the batch is larger than the hub accepts ({limit_mib} MiB, limits.max_batch_mib)")]
    Oversize {
        /// The limit.
        limit_mib: u64,
    },
    /// The nonce was used before: a replayed upload.
    #[error("this signed upload was already received once (replayed nonce); build a new batch with `synchro-agent run`")]
    Replay,
    /// The signature is too old to be checked against replays.
    #[error("the batch was signed more than {days} days ago; build it again")]
    Stale {
        /// Window in days.
        days: u32,
    },
    /// The signature does not verify with the enrolled key.
    #[error("the signature does not verify against the signing key enrolled for operator {0}")]
    BadSignature(String),
    /// The signature file names another operator than expected.
    #[error("the batch is signed for operator {signed}, not {enrolled}")]
    WrongOperator {
        /// Operator in the signature.
        signed: String,
        /// Operator whose key was used.
        enrolled: String,
    },
    /// The ciphertext hash or length differs from the signed one.
    #[error("the ciphertext does not match its signature (altered or truncated in transit)")]
    CiphertextMismatch,
    /// The hub identity cannot open the batch.
    #[error("the batch was not encrypted to this hub's key (wrong recipient) or is damaged")]
    Decrypt,
    /// The payload is not a valid batch.
    #[error("malformed batch payload: {0}")]
    Malformed(String),
    /// The payload format or template or key-set version is unknown.
    #[error("unsupported version: {0}")]
    Version(String),
    /// The key epoch is not accepted.
    #[error("the batch uses linkage-secret epoch {got}, but the hub accepts epochs {accepted:?}; install the current secret from the custodian")]
    WrongEpoch {
        /// Epoch in the batch.
        got: u32,
        /// Accepted epochs.
        accepted: Vec<u32>,
    },
    /// The payload's operator, period or epoch differs from the signed header.
    #[error("the encrypted header ({inner}) does not match the signature ({outer})")]
    HeaderMismatch {
        /// Inside.
        inner: String,
        /// Outside.
        outer: String,
    },
}

impl Refusal {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Unsigned => "unsigned",
            Refusal::SignatureFormat(_) => "malformed_signature",
            Refusal::UnknownOperator(_) => "unknown_operator",
            Refusal::DisabledOperator(_) => "disabled_operator",
            Refusal::Oversize { .. } => "oversize",
            Refusal::Replay => "replay",
            Refusal::Stale { .. } => "stale_signature",
            Refusal::BadSignature(_) => "bad_signature",
            Refusal::WrongOperator { .. } => "wrong_operator",
            Refusal::CiphertextMismatch => "ciphertext_mismatch",
            Refusal::Decrypt => "wrong_recipient_or_damaged",
            Refusal::Malformed(_) => "malformed_payload",
            Refusal::Version(_) => "unsupported_version",
            Refusal::WrongEpoch { .. } => "wrong_key_epoch",
            Refusal::HeaderMismatch { .. } => "header_mismatch",
        }
    }
}

impl Refusal {
    /// The HTTP status that goes with the refusal.
    pub fn http_status(&self) -> u16 {
        match self {
            Refusal::Unsigned | Refusal::SignatureFormat(_) | Refusal::Malformed(_) => 400,
            Refusal::BadSignature(_)
            | Refusal::WrongOperator { .. }
            | Refusal::UnknownOperator(_) => 401,
            Refusal::DisabledOperator(_) => 403,
            Refusal::Replay => 409,
            Refusal::Oversize { .. } => 413,
            Refusal::Stale { .. }
            | Refusal::CiphertextMismatch
            | Refusal::Decrypt
            | Refusal::Version(_)
            | Refusal::WrongEpoch { .. }
            | Refusal::HeaderMismatch { .. } => 422,
        }
    }
}

/// A verified, decrypted batch.
#[derive(Debug)]
pub struct OpenedBatch {
    /// The header.
    pub header: BatchHeader,
    /// The records.
    pub records: Vec<Record>,
    /// The trailer.
    pub trailer: BatchTrailer,
}

/// Verifies the signature against the enrolled operator and the ciphertext bytes.
pub fn verify_signature(
    ciphertext: &[u8],
    signature: &BatchSignature,
    operator: &OperatorPublic,
) -> Result<(), Refusal> {
    if signature.operator_id != operator.operator_id {
        return Err(Refusal::WrongOperator {
            signed: signature.operator_id.clone(),
            enrolled: operator.operator_id.clone(),
        });
    }
    let key = operator
        .signing_key_bytes()
        .map_err(|_| Refusal::BadSignature(operator.operator_id.clone()))?;
    signature
        .verify(&key)
        .map_err(|_| Refusal::BadSignature(operator.operator_id.clone()))?;
    let digest = ring::digest::digest(&ring::digest::SHA256, ciphertext);
    if hex::encode(digest.as_ref()) != signature.ciphertext_sha256
        || ciphertext.len() as u64 != signature.ciphertext_len
    {
        return Err(Refusal::CiphertextMismatch);
    }
    Ok(())
}

/// Verifies, decrypts and parses a batch, checking versions, epoch and header binding.
pub fn open_batch(
    ciphertext: &[u8],
    signature: &BatchSignature,
    operator: &OperatorPublic,
    hub_identity: &age::x25519::Identity,
    acceptance: &Acceptance,
) -> Result<OpenedBatch, Refusal> {
    verify_signature(ciphertext, signature, operator)?;
    let plain = decrypt_with(ciphertext, hub_identity).map_err(|_| Refusal::Decrypt)?;
    let malformed = |e: BatchError| match e {
        BatchError::Decrypt | BatchError::Io(_) => Refusal::Decrypt,
        other => Refusal::Malformed(other.to_string()),
    };
    let mut reader = PayloadReader::new(BufReader::new(plain)).map_err(malformed)?;
    let header = reader.header().clone();
    if header.format_version != FORMAT_VERSION {
        return Err(Refusal::Version(format!(
            "payload format {} (this hub reads {FORMAT_VERSION})",
            header.format_version
        )));
    }
    if header.template_version != TEMPLATE_VERSION {
        return Err(Refusal::Version(format!(
            "record template {} (this hub reads {TEMPLATE_VERSION})",
            header.template_version
        )));
    }
    if header.key_set_version != KEY_SET_VERSION {
        return Err(Refusal::Version(format!(
            "match-key set {} (this hub reads {KEY_SET_VERSION})",
            header.key_set_version
        )));
    }
    let outer = format!(
        "{}/{}/epoch {}",
        signature.operator_id, signature.period, signature.key_epoch
    );
    let inner = format!(
        "{}/{}/epoch {}",
        header.operator_id, header.period, header.key_epoch
    );
    if inner != outer {
        return Err(Refusal::HeaderMismatch { inner, outer });
    }
    if !acceptance.key_epochs.contains(&header.key_epoch) {
        return Err(Refusal::WrongEpoch {
            got: header.key_epoch,
            accepted: acceptance.key_epochs.clone(),
        });
    }
    if let Some((_, fp)) = acceptance
        .key_fingerprints
        .iter()
        .find(|(e, _)| *e == header.key_epoch)
    {
        if *fp != header.key_fingerprint {
            return Err(Refusal::HeaderMismatch {
                inner: format!("key fingerprint {}", header.key_fingerprint),
                outer: format!("configured fingerprint {fp} for epoch {}", header.key_epoch),
            });
        }
    }
    let mut records = Vec::new();
    while let Some(record) = reader.next_record().map_err(malformed)? {
        records.push(record);
    }
    // Unwrap safety: next_record returned None, which happens only after a valid trailer.
    let trailer = reader.trailer().cloned().expect("trailer read");
    if trailer.row_count != signature.row_count {
        return Err(Refusal::HeaderMismatch {
            inner: format!("{} records", trailer.row_count),
            outer: format!("{} records signed", signature.row_count),
        });
    }
    Ok(OpenedBatch {
        header,
        records,
        trailer,
    })
}
