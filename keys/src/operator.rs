//! An operator's key pair and the public file the hub enrols.
//!
//! The age identity receives the wrapped linkage secret; the Ed25519 key (ring) signs batches.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use synchro_shared::batch::{signing_key_fingerprint, validate_operator_id};
use zeroize::Zeroizing;

use crate::secret_file::{read_public, read_secret, write_public, write_secret};
use crate::{format_error, Result};

/// File name of the operator's age identity.
pub const IDENTITY_FILE: &str = "operator-identity.key";
/// File name of the operator's signing key.
pub const SIGNING_FILE: &str = "operator-signing.key";
const SIGNING_PREFIX: &str = "SYNCHRO-SIGNING-KEY-V1:";

/// File name of an operator's public key file.
pub fn public_file_name(operator_id: &str) -> String {
    format!("operator-{operator_id}.pub.toml")
}

/// What an operator gives the custodian (to wrap the secret) and the hub (to enrol it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorPublic {
    /// The operator id.
    pub operator_id: String,
    /// age recipient that wrapped secrets are encrypted to.
    pub age_recipient: String,
    /// Ed25519 public key that verifies the operator's batches, base64.
    pub signing_public_key: String,
    /// Fingerprint of the signing key, for people to compare.
    pub signing_key_fingerprint: String,
}

impl OperatorPublic {
    /// The age recipient.
    pub fn recipient(&self) -> std::result::Result<age::x25519::Recipient, String> {
        self.age_recipient
            .parse()
            .map_err(|_| format!("operator {}: damaged age recipient", self.operator_id))
    }

    /// The raw Ed25519 public key.
    pub fn signing_key_bytes(&self) -> std::result::Result<Vec<u8>, String> {
        let bytes = STANDARD
            .decode(&self.signing_public_key)
            .map_err(|_| format!("operator {}: damaged signing key", self.operator_id))?;
        if bytes.len() != 32 {
            return Err(format!(
                "operator {}: signing key is not 32 bytes",
                self.operator_id
            ));
        }
        Ok(bytes)
    }
}

/// Paths of the files [`create`] writes.
pub fn files(dir: &Path, operator_id: &str) -> (PathBuf, PathBuf, PathBuf) {
    (
        dir.join(IDENTITY_FILE),
        dir.join(SIGNING_FILE),
        dir.join(public_file_name(operator_id)),
    )
}

/// Creates an operator's key pair in `dir` and returns its public part.
pub fn create(dir: &Path, operator_id: &str) -> Result<OperatorPublic> {
    validate_operator_id(operator_id).map_err(|e| format_error(dir, e.to_string()))?;
    let (identity_path, signing_path, public_path) = files(dir, operator_id);
    let identity = age::x25519::Identity::generate();
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Zeroizing::new(
        Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| format_error(&signing_path, "cannot generate a signing key"))?
            .as_ref()
            .to_vec(),
    );
    let pair = Ed25519KeyPair::from_pkcs8(&pkcs8)
        .map_err(|_| format_error(&signing_path, "cannot generate a signing key"))?;
    let public = OperatorPublic {
        operator_id: operator_id.to_string(),
        age_recipient: identity.to_public().to_string(),
        signing_public_key: STANDARD.encode(pair.public_key().as_ref()),
        signing_key_fingerprint: signing_key_fingerprint(pair.public_key().as_ref()),
    };
    crate::hub::write_identity(
        &identity_path,
        &identity,
        &format!("Synchro operator {operator_id} identity (opens the wrapped linkage secret)"),
    )?;
    let signing_text = Zeroizing::new(format!(
        "# Synchro operator {operator_id} signing key (Ed25519). KEEP SECRET.\n# fingerprint: {}\n{SIGNING_PREFIX}{}\n",
        public.signing_key_fingerprint,
        STANDARD.encode(&pkcs8)
    ));
    write_secret(&signing_path, &signing_text)?;
    let toml = toml::to_string(&public).map_err(|e| format_error(&public_path, e.to_string()))?;
    write_public(
        &public_path,
        &format!("# Public keys of Synchro operator {operator_id}: give this file to the key custodian and the hub.\n{toml}"),
    )?;
    Ok(public)
}

/// Loads an operator's age identity.
pub fn load_identity(path: &Path) -> Result<age::x25519::Identity> {
    crate::hub::load_identity(path)
}

/// Loads an operator's signing key pair.
pub fn load_signing_key(path: &Path) -> Result<Ed25519KeyPair> {
    let text = read_secret(path)?;
    let b64 = text
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(SIGNING_PREFIX))
        .ok_or_else(|| {
            format_error(
                path,
                format!("no {SIGNING_PREFIX} line: not a Synchro signing key"),
            )
        })?;
    let pkcs8 = Zeroizing::new(
        STANDARD
            .decode(b64)
            .map_err(|_| format_error(path, "damaged signing key"))?,
    );
    Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|_| format_error(path, "damaged signing key"))
}

/// Loads an operator's public key file.
pub fn load_public(path: &Path) -> Result<OperatorPublic> {
    let text = read_public(path)?;
    let public: OperatorPublic = toml::from_str(&text)
        .map_err(|e| format_error(path, format!("not an operator public key file: {e}")))?;
    validate_operator_id(&public.operator_id).map_err(|e| format_error(path, e.to_string()))?;
    public.recipient().map_err(|m| format_error(path, m))?;
    let key = public
        .signing_key_bytes()
        .map_err(|m| format_error(path, m))?;
    if signing_key_fingerprint(&key) != public.signing_key_fingerprint {
        return Err(format_error(
            path,
            "the signing-key fingerprint does not match the key",
        ));
    }
    Ok(public)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_keys_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let public = create(dir.path(), "siao-69").unwrap();
        let (identity, signing, public_path) = files(dir.path(), "siao-69");
        assert_eq!(load_public(&public_path).unwrap(), public);
        let pair = load_signing_key(&signing).unwrap();
        assert_eq!(
            STANDARD.encode(pair.public_key().as_ref()),
            public.signing_public_key
        );
        assert_eq!(
            load_identity(&identity).unwrap().to_public().to_string(),
            public.age_recipient
        );
        assert!(create(dir.path(), "Bad Id").is_err());
    }
}
