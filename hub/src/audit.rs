//! The tamper-evident audit log: an append-only RFC 6962 Merkle tree whose checkpoints the hub
//! signs as C2SP signed notes (tlog-checkpoint).
//!
//! Leaves are canonical JSON events with no personal data and no pseudonym. Whoever holds a
//! checkpoint (a DPO, a witness) can later prove that the log still extends it: an edited,
//! reordered or deleted entry, or a rewritten and re-signed log, no longer matches.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::digest::{digest, Context, SHA256};
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

fn sha(parts: &[&[u8]]) -> Hash {
    let mut ctx = Context::new(&SHA256);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// RFC 6962 leaf hash: SHA-256(0x00 ‖ leaf).
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    sha(&[&[0u8], leaf])
}

/// RFC 6962 interior node hash: SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    sha(&[&[1u8], left, right])
}

/// Largest power of two strictly smaller than `n` (n ≥ 2).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// Merkle tree hash of leaf hashes (the empty tree hashes to SHA-256 of nothing).
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => {
            let mut out = [0u8; 32];
            out.copy_from_slice(digest(&SHA256, b"").as_ref());
            out
        }
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// Inclusion proof of leaf `index` in the tree of `leaves` (RFC 6962 §2.1.1).
pub fn inclusion_proof(index: usize, leaves: &[Hash]) -> Vec<Hash> {
    let n = leaves.len();
    if n <= 1 {
        return Vec::new();
    }
    let k = split(n);
    if index < k {
        let mut p = inclusion_proof(index, &leaves[..k]);
        p.push(root(&leaves[k..]));
        p
    } else {
        let mut p = inclusion_proof(index - k, &leaves[k..]);
        p.push(root(&leaves[..k]));
        p
    }
}

/// Verifies an inclusion proof (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && r == *root
}

/// Consistency proof that the first `m` leaves are a prefix of `leaves` (RFC 6962 §2.1.2).
pub fn consistency_proof(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    fn subproof(m: usize, leaves: &[Hash], complete: bool) -> Vec<Hash> {
        let n = leaves.len();
        if m == n {
            return if complete {
                Vec::new()
            } else {
                vec![root(leaves)]
            };
        }
        let k = split(n);
        if m <= k {
            let mut p = subproof(m, &leaves[..k], complete);
            p.push(root(&leaves[k..]));
            p
        } else {
            let mut p = subproof(m - k, &leaves[k..], false);
            p.push(root(&leaves[..k]));
            p
        }
    }
    if m == 0 || m > leaves.len() {
        return Vec::new();
    }
    subproof(m, leaves, true)
}

/// Verifies a consistency proof between sizes `m` and `n` (RFC 9162 §2.1.4.2).
pub fn verify_consistency(m: u64, n: u64, root_m: &Hash, root_n: &Hash, proof: &[Hash]) -> bool {
    if m > n {
        return false;
    }
    if m == n {
        return proof.is_empty() && root_m == root_n;
    }
    if m == 0 {
        return proof.is_empty();
    }
    let mut path: Vec<Hash> = proof.to_vec();
    if m.is_power_of_two() {
        path.insert(0, *root_m);
    }
    if path.is_empty() {
        return false;
    }
    let (mut fnode, mut snode) = (m - 1, n - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && fr == *root_m && sr == *root_n
}

/// The signed-note key id: SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[..4] (C2SP signed-note).
pub fn key_id(name: &str, public_key: &[u8]) -> [u8; 4] {
    let h = sha(&[name.as_bytes(), b"\n", &[1u8], public_key]);
    [h[0], h[1], h[2], h[3]]
}

/// The verifier key a DPO keeps: `<name>+<hex key id>+<base64(0x01 ‖ public key)>`.
pub fn verifier_key(name: &str, public_key: &[u8]) -> String {
    let mut typed = vec![1u8];
    typed.extend_from_slice(public_key);
    format!(
        "{name}+{}+{}",
        hex::encode(key_id(name, public_key)),
        STANDARD.encode(typed)
    )
}

/// A tree head: origin, size and root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line (e.g. `synchro.example/audit`).
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// Root hash.
    pub root: Hash,
}

/// Why a checkpoint cannot be read or trusted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CheckpointError {
    /// Not a signed checkpoint note.
    #[error("not a signed checkpoint: {0}")]
    Format(String),
    /// No valid signature by the expected key.
    #[error("the checkpoint is not signed by the hub's audit key ({0})")]
    Signature(String),
}

impl Checkpoint {
    /// The note body (tlog-checkpoint): origin, size, base64 root, each on its line.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        )
    }

    /// Signs the body as a signed note with the hub's Ed25519 key.
    pub fn sign(&self, key_name: &str, key: &Ed25519KeyPair) -> String {
        let body = self.body();
        let sig = key.sign(body.as_bytes());
        let mut blob = key_id(key_name, key.public_key().as_ref()).to_vec();
        blob.extend_from_slice(sig.as_ref());
        format!("{body}\n\u{2014} {key_name} {}\n", STANDARD.encode(blob))
    }

    /// Parses a signed note and checks its signature by `key_name` with `public_key`.
    /// Signatures by unknown keys are ignored, as the signed-note format requires.
    pub fn verify_note(
        note: &str,
        key_name: &str,
        public_key: &[u8],
    ) -> Result<Self, CheckpointError> {
        let (body, sigs) = note
            .split_once("\n\n")
            .ok_or_else(|| CheckpointError::Format("no blank line before the signatures".into()))?;
        let body = format!("{body}\n");
        let mut lines = body.lines();
        let origin = lines.next().unwrap_or_default().to_string();
        let size: u64 = lines
            .next()
            .and_then(|l| l.parse().ok())
            .ok_or_else(|| CheckpointError::Format("bad tree size".into()))?;
        let root: Hash = lines
            .next()
            .and_then(|l| STANDARD.decode(l).ok())
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| CheckpointError::Format("bad root hash".into()))?;
        let want_id = key_id(key_name, public_key);
        let mut verified = false;
        for line in sigs.lines() {
            let Some(rest) = line.strip_prefix("\u{2014} ") else {
                continue;
            };
            let Some((name, b64)) = rest.split_once(' ') else {
                continue;
            };
            let Ok(blob) = STANDARD.decode(b64) else {
                continue;
            };
            if name != key_name || blob.len() != 68 || blob[..4] != want_id {
                continue;
            }
            verified = UnparsedPublicKey::new(&ED25519, public_key)
                .verify(body.as_bytes(), &blob[4..])
                .is_ok();
            if verified {
                break;
            }
        }
        if !verified {
            return Err(CheckpointError::Signature(key_name.into()));
        }
        Ok(Checkpoint { origin, size, root })
    }
}

/// Canonical JSON of one audit event (keys sorted by serde_json's map).
pub fn event_leaf(
    seq: u64,
    at: i64,
    actor: &str,
    action: &str,
    details: serde_json::Value,
) -> String {
    serde_json::json!({"seq": seq, "at": at, "actor": actor, "action": action, "details": details})
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("entry {i}").as_bytes()))
            .collect()
    }

    #[test]
    fn known_answers() {
        // RFC 6962 empty tree and single leaf.
        assert_eq!(
            hex::encode(root(&[])),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex::encode(leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    proptest! {
        #[test]
        fn inclusion_proofs_verify_and_tampering_fails(n in 1usize..70, i in 0usize..70, bit in 0usize..256) {
            let i = i % n;
            let l = leaves(n);
            let r = root(&l);
            let proof = inclusion_proof(i, &l);
            prop_assert!(verify_inclusion(i as u64, n as u64, &l[i], &proof, &r));
            let mut bad = l[i];
            bad[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(!verify_inclusion(i as u64, n as u64, &bad, &proof, &r));
            if !proof.is_empty() {
                let mut p = proof.clone();
                p[0][bit / 8] ^= 1 << (bit % 8);
                prop_assert!(!verify_inclusion(i as u64, n as u64, &l[i], &p, &r));
            }
            prop_assert!(!verify_inclusion(i as u64, (n as u64) * 2 + 1, &l[i], &proof, &r));
        }

        #[test]
        fn consistency_proofs_verify_and_tampering_fails(n in 1usize..70, m in 1usize..70, bit in 0usize..256) {
            let m = (m % n) + 1;
            let l = leaves(n);
            let (rm, rn) = (root(&l[..m]), root(&l));
            let proof = consistency_proof(m, &l);
            prop_assert!(verify_consistency(m as u64, n as u64, &rm, &rn, &proof));
            let mut bad = rm;
            bad[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(!verify_consistency(m as u64, n as u64, &bad, &rn, &proof) || m == n && proof.is_empty() && bad == rn);
            if m < n {
                // A log that rewrote an old entry is not consistent with the old head.
                let mut rewritten = l.clone();
                rewritten[m - 1][0] ^= 1;
                let proof2 = consistency_proof(m, &rewritten);
                prop_assert!(!verify_consistency(m as u64, n as u64, &rm, &root(&rewritten), &proof2));
            }
        }
    }

    #[test]
    fn signed_notes_round_trip_and_reject_other_keys() {
        let rng = ring::rand::SystemRandom::new();
        let kp = Ed25519KeyPair::from_pkcs8(Ed25519KeyPair::generate_pkcs8(&rng).unwrap().as_ref())
            .unwrap();
        let other =
            Ed25519KeyPair::from_pkcs8(Ed25519KeyPair::generate_pkcs8(&rng).unwrap().as_ref())
                .unwrap();
        let cp = Checkpoint {
            origin: "synchro.test/audit".into(),
            size: 3,
            root: root(&leaves(3)),
        };
        let note = cp.sign("synchro.test/audit", &kp);
        assert_eq!(
            Checkpoint::verify_note(&note, "synchro.test/audit", kp.public_key().as_ref()).unwrap(),
            cp
        );
        assert!(
            Checkpoint::verify_note(&note, "synchro.test/audit", other.public_key().as_ref())
                .is_err()
        );
        let forged = note.replace("\n3\n", "\n4\n");
        assert!(
            Checkpoint::verify_note(&forged, "synchro.test/audit", kp.public_key().as_ref())
                .is_err()
        );
        // An extra signature by an unknown key is ignored (cosigning is allowed).
        let cosigned = format!("{note}\u{2014} witness AAAA\n");
        assert!(
            Checkpoint::verify_note(&cosigned, "synchro.test/audit", kp.public_key().as_ref())
                .is_ok()
        );
    }
}
