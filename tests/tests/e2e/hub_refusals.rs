//! Every refusal has its own machine code and HTTP status, stores nothing, and is audited.

use std::path::{Path, PathBuf};

use synchro_shared::batch::{BatchSignature, SignatureFields};
use synchro_tests::{
    agent_run, block_on, ok, post_batch, small_scenario, test_databases, HubProcess, Territory,
};

fn sealed(ws: &Path, input: &Path, period: &str, out: &Path) -> (Vec<u8>, String) {
    agent_run(ws, input, period, Some(out));
    let mut sig = out.as_os_str().to_owned();
    sig.push(".sig");
    (
        std::fs::read(out).unwrap(),
        std::fs::read_to_string(PathBuf::from(sig)).unwrap(),
    )
}

fn resign(ws: &Path, operator_id: &str, ciphertext: &[u8], period: &str, rows: u64) -> String {
    let key =
        synchro_keys::operator::load_signing_key(&ws.join("keys/operator-signing.key")).unwrap();
    let d = ring::digest::digest(&ring::digest::SHA256, ciphertext);
    let mut sha = [0u8; 32];
    sha.copy_from_slice(d.as_ref());
    BatchSignature::sign(
        SignatureFields {
            operator_id: operator_id.into(),
            period: period.parse().unwrap(),
            key_epoch: 1,
            ciphertext_sha256: sha,
            ciphertext_len: ciphertext.len() as u64,
            row_count: rows,
        },
        &key,
    )
    .to_json()
}

#[test]
fn refusals_are_specific_store_nothing_and_are_audited() {
    let t = Territory::new();
    let (scenario, files) = small_scenario(&t.path("data"), 1, 1, (2026, 10), 120);
    let input = files[0].path.clone();
    let rows = files[0].rows as u64;
    let profile = scenario.profile(0);
    for db in test_databases(t.dir.path()) {
        let b = db.backend;
        let hub_dir = t.path(&format!("hub-{b}"));
        let mut hub = HubProcess::init(&hub_dir, &db);
        // A 1 MiB limit so the oversize case stays small.
        let cfg = std::fs::read_to_string(&hub.config)
            .unwrap()
            .replace("max_batch_mib = 512", "max_batch_mib = 1");
        std::fs::write(&hub.config, cfg).unwrap();
        hub.start();
        let recipient = hub_dir.join("keys/hub-recipient.txt");
        let recipient = recipient.to_str().unwrap();
        let ws = |name: &str, id: &str, recipient: &str| {
            t.operator_in(&format!("{name}-{b}"), id, recipient, &profile, &[])
        };
        let a = ws("a", "siao-69", recipient);
        let other = ws("b", "ccas-lyon", recipient);
        let ghost = ws("ghost", "ghost-op", recipient);
        let stranger_hub = t.p("hub/hub-recipient.txt");
        let wrong_hub = ws("w", "chrs-rhone", &stranger_hub);
        let epoch2 = ws("e", "pass-hcl", recipient);
        std::fs::remove_file(epoch2.join("keys/linkage-secret.key")).unwrap();
        ok(
            "synchro-keys",
            &[
                "linkage",
                "new",
                "--epoch",
                "2",
                "--out",
                epoch2.join("keys/linkage-secret.key").to_str().unwrap(),
            ],
        );
        for (w, id) in [
            (&a, "siao-69"),
            (&other, "ccas-lyon"),
            (&wrong_hub, "chrs-rhone"),
            (&epoch2, "pass-hcl"),
        ] {
            hub.enrol(w, id);
        }
        let out = |n: &str| t.path(&format!("{n}-{b}.age"));
        let (a1, a1_sig) = sealed(&a, &input, "2026-10", &out("a1"));
        let (a2, a2_sig) = sealed(&a, &input, "2026-10", &out("a2"));
        let (b1, b1_sig) = sealed(&other, &input, "2026-10", &out("b1"));
        let (g1, g1_sig) = sealed(&ghost, &input, "2026-10", &out("g1"));
        let (w1, w1_sig) = sealed(&wrong_hub, &input, "2026-10", &out("w1"));
        let (e1, e1_sig) = sealed(&epoch2, &input, "2026-10", &out("e1"));

        let store = hub.store(&db);
        let audit_len = || block_on(store.audit_leaves()).unwrap().len();
        let stored = || block_on(store.submissions()).unwrap().len();
        let check = |what: &str, body: &[u8], sig: Option<&str>, status: u16, code: &str| {
            let (before_audit, before_stored) = (audit_len(), stored());
            let (got_status, reply) = post_batch(&hub.url, &hub.ca, body, sig);
            assert_eq!(got_status, status, "{b} {what}: {reply}");
            assert_eq!(reply["code"], code, "{b} {what}: {reply}");
            assert!(
                reply["message"].as_str().is_some_and(|m| m.len() > 20),
                "{b} {what}: a human sentence"
            );
            assert_eq!(stored(), before_stored, "{b} {what}: nothing stored");
            let leaves = block_on(store.audit_leaves()).unwrap();
            assert_eq!(
                leaves.len(),
                before_audit + 1,
                "{b} {what}: one audit entry"
            );
            let last: serde_json::Value = serde_json::from_str(&leaves.last().unwrap().1).unwrap();
            assert_eq!(last["action"], "batch_refused", "{b} {what}");
            assert_eq!(last["details"]["code"], code, "{b} {what}");
        };

        // The genuine upload, then a correction (replaces it).
        assert_eq!(post_batch(&hub.url, &hub.ca, &a1, Some(&a1_sig)).0, 200);
        assert_eq!(post_batch(&hub.url, &hub.ca, &a2, Some(&a2_sig)).0, 200);
        check("unsigned", &a1, None, 400, "unsigned");
        check(
            "signed by another operator's key",
            &a1,
            Some(&resign(&other, "siao-69", &a1, "2026-10", rows)),
            401,
            "bad_signature",
        );
        check(
            "replay of the replaced upload",
            &a1,
            Some(&a1_sig),
            409,
            "replay",
        );
        check(
            "unknown operator",
            &g1,
            Some(&g1_sig),
            401,
            "unknown_operator",
        );
        hub.cli(&["operator", "disable", "ccas-lyon"]);
        check(
            "disabled operator",
            &b1,
            Some(&b1_sig),
            403,
            "disabled_operator",
        );
        check(
            "wrong key epoch",
            &e1,
            Some(&e1_sig),
            422,
            "wrong_key_epoch",
        );
        check(
            "wrong hub recipient",
            &w1,
            Some(&w1_sig),
            422,
            "wrong_recipient_or_damaged",
        );
        let truncated = &a2[..a2.len() / 2];
        check(
            "truncated ciphertext",
            truncated,
            Some(&a2_sig),
            422,
            "ciphertext_mismatch",
        );
        check(
            "truncated and re-signed",
            truncated,
            Some(&resign(&a, "siao-69", truncated, "2026-10", rows)),
            422,
            "wrong_recipient_or_damaged",
        );
        let mut tampered = a2.clone();
        let mid = tampered.len() / 2;
        tampered[mid] ^= 0x55;
        check(
            "tampered ciphertext",
            &tampered,
            Some(&a2_sig),
            422,
            "ciphertext_mismatch",
        );
        let big = vec![7u8; 1024 * 1024 + 10];
        check("oversize body", &big, Some(&a2_sig), 413, "oversize");
        let hub_recipient: age::x25519::Recipient =
            std::fs::read_to_string(hub_dir.join("keys/hub-recipient.txt"))
                .unwrap()
                .trim()
                .parse()
                .unwrap();
        let mut garbage = Vec::new();
        {
            let mut w = synchro_shared::batch::encrypt_to(&mut garbage, &hub_recipient).unwrap();
            std::io::Write::write_all(&mut w, b"{\"this is\": \"not a batch\"}\n").unwrap();
            w.finish().unwrap();
        }
        check(
            "malformed inner payload",
            &garbage,
            Some(&resign(&a, "siao-69", &garbage, "2026-10", rows)),
            400,
            "malformed_payload",
        );
        let bad_period = a2_sig.replace("\"2026-10\"", "\"2026-13\"");
        check(
            "wrong period format",
            &a2,
            Some(&bad_period),
            400,
            "malformed_signature",
        );

        // Only the genuine month is stored, complete.
        let subs = block_on(store.submissions()).unwrap();
        assert_eq!(subs.len(), 1);
        assert_eq!(
            block_on(store.record_count(&subs[0].batch_id)).unwrap().0,
            rows as i64
        );
        block_on(store.close());
        hub.kill();
    }
}
