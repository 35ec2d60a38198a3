//! The hub's age key pair: operators encrypt batches to its recipient.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::secrecy::ExposeSecret;
use zeroize::Zeroizing;

use crate::secret_file::{read_public, read_secret, write_public, write_secret};
use crate::{format_error, Result};

/// File name of the hub's age identity inside a key directory.
pub const IDENTITY_FILE: &str = "hub-identity.key";
/// File name of the hub's age recipient inside a key directory.
pub const RECIPIENT_FILE: &str = "hub-recipient.txt";

/// Paths of a hub key pair written by [`create`].
#[derive(Debug, Clone)]
pub struct HubKeyFiles {
    /// The secret identity (owner-only).
    pub identity: PathBuf,
    /// The public recipient to give every operator.
    pub recipient: PathBuf,
}

/// Writes an age identity file in the standard format (readable by `age -d -i`).
pub(crate) fn write_identity(
    path: &Path,
    identity: &age::x25519::Identity,
    label: &str,
) -> Result<()> {
    let text = Zeroizing::new(format!(
        "# {label}. KEEP SECRET.\n# created: {}\n# public key: {}\n{}\n",
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        identity.to_public(),
        identity.to_string().expose_secret()
    ));
    write_secret(path, &text)
}

/// Creates the hub's key pair in `dir`.
pub fn create(dir: &Path) -> Result<HubKeyFiles> {
    let identity = age::x25519::Identity::generate();
    let files = HubKeyFiles {
        identity: dir.join(IDENTITY_FILE),
        recipient: dir.join(RECIPIENT_FILE),
    };
    write_identity(
        &files.identity,
        &identity,
        "Synchro hub identity (decrypts operators' batches)",
    )?;
    write_public(&files.recipient, &format!("{}\n", identity.to_public()))?;
    Ok(files)
}

/// Loads an age identity file (hub or operator), refusing it if others can read it.
pub fn load_identity(path: &Path) -> Result<age::x25519::Identity> {
    let text = read_secret(path)?;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
        .ok_or_else(|| format_error(path, "no AGE-SECRET-KEY-1 line: not an age identity file"))?;
    age::x25519::Identity::from_str(line).map_err(|_| format_error(path, "damaged age identity"))
}

/// Parses a recipient given inline (`age1…`) or as a file containing one.
pub fn load_recipient(value_or_path: &str) -> Result<age::x25519::Recipient> {
    let text = if value_or_path.trim().starts_with("age1") {
        value_or_path.to_string()
    } else {
        read_public(Path::new(value_or_path))?
    };
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("age1"))
        .ok_or_else(|| format_error(Path::new(value_or_path), "no age1… recipient found"))?;
    age::x25519::Recipient::from_str(line)
        .map_err(|_| format_error(Path::new(value_or_path), "damaged age recipient"))
}

/// Fingerprint of an age recipient, for the DPO report and the batch header checks.
pub fn recipient_fingerprint(recipient: &age::x25519::Recipient) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, recipient.to_string().as_bytes());
    synchro_shared::pseudonym::group_fingerprint(&digest.as_ref()[..10])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_keys_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let files = create(dir.path()).unwrap();
        let identity = load_identity(&files.identity).unwrap();
        let recipient = load_recipient(files.recipient.to_str().unwrap()).unwrap();
        assert_eq!(identity.to_public().to_string(), recipient.to_string());
        assert_eq!(
            load_recipient(&recipient.to_string()).unwrap().to_string(),
            recipient.to_string()
        );
        assert!(create(dir.path()).is_err(), "never overwrite");
    }
}
