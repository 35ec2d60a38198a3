//! Fingerprints of every kind of Synchro key file, for DPOs to record and compare.

use std::path::Path;

use ring::signature::KeyPair;
use synchro_shared::batch::signing_key_fingerprint;
use synchro_shared::pseudonym::ReferenceSecret;
use zeroize::Zeroizing;

use crate::secret_file::{read_public, read_secret};
use crate::{format_error, Result};

/// One line of a fingerprint report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// What the key is.
    pub kind: String,
    /// Its public fingerprint.
    pub fingerprint: String,
}

/// Recognises a key file and returns the fingerprints it carries; secrets stay unread beyond that.
pub fn describe(path: &Path) -> Result<Vec<Fingerprint>> {
    // Held zeroising: the file may be a secret until recognised.
    let public = Zeroizing::new(read_public(path)?);
    let fp = |kind: &str, fingerprint: String| Fingerprint {
        kind: kind.to_string(),
        fingerprint,
    };
    let first_line = public
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or("");
    if first_line.starts_with("SYNCHRO-LINKAGE-SECRET") {
        let secret = crate::linkage::load(path)?;
        return Ok(vec![fp(
            &format!("linkage secret, epoch {}", secret.epoch()),
            secret.fingerprint(),
        )]);
    }
    if first_line.starts_with("SYNCHRO-REFERENCE-SECRET") {
        let text = read_secret(path)?;
        let secret =
            ReferenceSecret::decode(&text).map_err(|e| format_error(path, e.to_string()))?;
        return Ok(vec![fp("operator reference secret", secret.fingerprint())]);
    }
    if first_line.starts_with("AGE-SECRET-KEY-1") {
        let identity = crate::hub::load_identity(path)?;
        return Ok(vec![fp(
            "age identity (public recipient)",
            crate::hub::recipient_fingerprint(&identity.to_public()),
        )]);
    }
    if first_line.starts_with("SYNCHRO-SIGNING-KEY") {
        let pair = crate::operator::load_signing_key(path)?;
        return Ok(vec![fp(
            "operator signing key",
            signing_key_fingerprint(pair.public_key().as_ref()),
        )]);
    }
    if first_line.starts_with("age1") {
        let recipient = crate::hub::load_recipient(path.to_str().unwrap_or_default())?;
        return Ok(vec![fp(
            "age recipient",
            crate::hub::recipient_fingerprint(&recipient),
        )]);
    }
    if public.contains("signing_public_key") {
        let op = crate::operator::load_public(path)?;
        let recipient = op.recipient().map_err(|m| format_error(path, m))?;
        return Ok(vec![
            fp(
                &format!("operator {} signing key", op.operator_id),
                op.signing_key_fingerprint.clone(),
            ),
            fp(
                &format!("operator {} age recipient", op.operator_id),
                crate::hub::recipient_fingerprint(&recipient),
            ),
        ]);
    }
    if public.contains("wrapped for operator") {
        return Ok(vec![fp(
            "wrapped linkage secret (open it to see its fingerprint)",
            "-".into(),
        )]);
    }
    Err(format_error(path, "not a Synchro key file"))
}
