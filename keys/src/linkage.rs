//! The linkage secret: creation, rotation, wrapping to an operator and unwrapping.
//!
//! The custodian creates it, wraps it to each operator's age recipient, and keeps it offline.
//! The hub never receives it: nothing in this module talks to the hub.

use std::io::{Read, Write};
use std::path::Path;

use synchro_shared::pseudonym::LinkageSecret;
use zeroize::Zeroizing;

use crate::operator::OperatorPublic;
use crate::secret_file::{read_secret, write_public, write_secret};
use crate::{format_error, KeyError, Result};

/// The text of a linkage-secret file: comments for people, one line for machines.
fn file_text(secret: &LinkageSecret) -> Zeroizing<String> {
    Zeroizing::new(format!(
        "# Synchro linkage secret. KEEP SECRET: operators and the custodian only, never the hub.\n\
         # epoch: {}\n# fingerprint: {}\n{}\n",
        secret.epoch(),
        secret.fingerprint(),
        secret.encode().as_str()
    ))
}

/// Creates a new linkage secret for `epoch` and writes it owner-only.
pub fn create(path: &Path, epoch: u32) -> Result<LinkageSecret> {
    if epoch == 0 {
        return Err(format_error(path, "the epoch must be 1 or more"));
    }
    let secret = LinkageSecret::generate(epoch);
    write_secret(path, &file_text(&secret))?;
    Ok(secret)
}

/// Loads a linkage-secret file.
pub fn load(path: &Path) -> Result<LinkageSecret> {
    let text = read_secret(path)?;
    LinkageSecret::decode(&text).map_err(|e| format_error(path, e.to_string()))
}

/// Creates the next epoch's secret from the current one's file.
pub fn rotate(current: &Path, out: &Path) -> Result<LinkageSecret> {
    let old = load(current)?;
    create(out, old.epoch() + 1)
}

/// Encrypts the linkage secret to one operator's age recipient, for transport.
pub fn wrap(secret_path: &Path, operator: &OperatorPublic, out: &Path) -> Result<LinkageSecret> {
    let secret = load(secret_path)?;
    let recipient = operator.recipient().map_err(|m| format_error(out, m))?;
    let recipients: [&dyn age::Recipient; 1] = [&recipient];
    let encryptor = age::Encryptor::with_recipients(recipients.into_iter())
        .map_err(|_| format_error(out, "cannot encrypt to this operator's recipient"))?;
    let mut wrapped = Vec::new();
    let write = |wrapped: &mut Vec<u8>| -> std::io::Result<()> {
        let mut w = encryptor.wrap_output(wrapped)?;
        w.write_all(file_text(&secret).as_bytes())?;
        w.finish()?;
        Ok(())
    };
    write(&mut wrapped).map_err(|source| KeyError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let armored = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &wrapped);
    write_public(
        out,
        &format!(
            "# Synchro linkage secret, epoch {}, wrapped for operator {} (age, X25519).\n\
             # Only that operator's identity can open it.\n{armored}\n",
            secret.epoch(),
            operator.operator_id
        ),
    )?;
    Ok(secret)
}

/// Decrypts a wrapped secret with the operator's age identity and writes it owner-only.
pub fn unwrap(
    wrapped: &Path,
    identity: &age::x25519::Identity,
    out: &Path,
) -> Result<LinkageSecret> {
    let text = crate::secret_file::read_public(wrapped)?;
    let b64: String = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .concat();
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64.trim())
        .map_err(|_| format_error(wrapped, "not a wrapped Synchro secret"))?;
    let unwrap_err = || KeyError::Unwrap {
        path: wrapped.to_path_buf(),
    };
    let decryptor = age::Decryptor::new(&bytes[..]).map_err(|_| unwrap_err())?;
    let identities: [&dyn age::Identity; 1] = [identity];
    let mut reader = decryptor
        .decrypt(identities.into_iter())
        .map_err(|_| unwrap_err())?;
    let mut plain = Zeroizing::new(String::new());
    reader
        .read_to_string(&mut plain)
        .map_err(|_| unwrap_err())?;
    let secret = LinkageSecret::decode(&plain).map_err(|e| format_error(wrapped, e.to_string()))?;
    write_secret(out, &file_text(&secret))?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_rotate_wrap_unwrap() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        let s1 = create(&p("l1.key"), 1).unwrap();
        let s2 = rotate(&p("l1.key"), &p("l2.key")).unwrap();
        assert_eq!(s2.epoch(), 2);
        assert_ne!(s1.fingerprint(), s2.fingerprint());
        let op = crate::operator::create(&p("op"), "siao-69").unwrap();
        wrap(&p("l2.key"), &op, &p("wrapped.txt")).unwrap();
        let wrapped_text = std::fs::read_to_string(p("wrapped.txt")).unwrap();
        let clear_line = s2.encode();
        assert!(!wrapped_text.contains(clear_line.as_str()));
        let identity = crate::operator::load_identity(&p("op/operator-identity.key")).unwrap();
        let back = unwrap(&p("wrapped.txt"), &identity, &p("installed.key")).unwrap();
        assert_eq!(back.fingerprint(), s2.fingerprint());
        // Another operator cannot open it.
        let other = crate::operator::create(&p("other"), "ccas-lyon").unwrap();
        let _ = other;
        let other_id = crate::operator::load_identity(&p("other/operator-identity.key")).unwrap();
        assert!(matches!(
            unwrap(&p("wrapped.txt"), &other_id, &p("x.key")),
            Err(KeyError::Unwrap { .. })
        ));
    }
}
