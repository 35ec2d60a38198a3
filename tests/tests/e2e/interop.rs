//! Batches are standard age files: the reference `age` tool opens what the agent writes, and
//! the hub side reads what the `age` tool encrypts.

use std::process::Command;

use synchro_hub::ingest::{open_batch, Acceptance};
use synchro_shared::batch::{BatchSignature, SignatureFields};
use synchro_synth::Config;
use synchro_tests::{ok, require_tool, small_scenario, Territory};

#[test]
fn age_cli_reads_agent_batches_and_hub_reads_age_cli_files() {
    let Some(age) = require_tool("age", "apt-get install age") else {
        return;
    };
    let t = Territory::new();
    let (scenario, files) =
        small_scenario(&t.path("data"), 1, 1, (2026, 10), Config::default().persons);
    let op = &scenario.operators[0];
    let ws = t.operator(&op.id, &scenario.profile(0), &[]);
    let cfg = ws.join("agent.toml");
    let input = files[0].path.to_str().unwrap().to_string();
    let batch = t.path("batch.age");
    ok(
        "synchro-agent",
        &[
            "run",
            "--config",
            cfg.to_str().unwrap(),
            "--input",
            &input,
            "--period",
            "2026-10",
            "--out",
            batch.to_str().unwrap(),
        ],
    );

    // 1. The reference tool decrypts the agent's batch into the documented JSON lines.
    let out = Command::new(&age)
        .args(["-d", "-i", &t.p("hub/hub-identity.key")])
        .arg(&batch)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "age -d failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut reader = synchro_shared::batch::PayloadReader::new(&out.stdout[..]).unwrap();
    assert_eq!(reader.header().operator_id, op.id);
    let mut n = 0;
    while reader.next_record().unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, files[0].rows);

    // 2. A payload encrypted by the reference tool, signed by the operator, opens at the hub.
    let preview = t.path("payload.jsonl");
    ok(
        "synchro-agent",
        &[
            "preview",
            "--config",
            cfg.to_str().unwrap(),
            "--input",
            &input,
            "--period",
            "2026-10",
            "--out",
            preview.to_str().unwrap(),
        ],
    );
    let foreign = t.path("foreign.age");
    let recipient = std::fs::read_to_string(t.path("hub/hub-recipient.txt")).unwrap();
    let status = Command::new(&age)
        .args(["-r", recipient.trim(), "-o"])
        .arg(&foreign)
        .arg(&preview)
        .status()
        .unwrap();
    assert!(status.success());
    let ciphertext = std::fs::read(&foreign).unwrap();
    let signing =
        synchro_keys::operator::load_signing_key(&ws.join("keys/operator-signing.key")).unwrap();
    let digest = ring::digest::digest(&ring::digest::SHA256, &ciphertext);
    let mut sha = [0u8; 32];
    sha.copy_from_slice(digest.as_ref());
    let signature = BatchSignature::sign(
        SignatureFields {
            operator_id: op.id.clone(),
            period: "2026-10".parse().unwrap(),
            key_epoch: 1,
            ciphertext_sha256: sha,
            ciphertext_len: ciphertext.len() as u64,
            row_count: files[0].rows as u64,
        },
        &signing,
    );
    let operator =
        synchro_keys::operator::load_public(&ws.join(format!("keys/operator-{}.pub.toml", op.id)))
            .unwrap();
    let opened = open_batch(
        &ciphertext,
        &signature,
        &operator,
        &t.hub_identity(),
        &Acceptance {
            key_epochs: vec![1],
            key_fingerprints: vec![],
        },
    )
    .unwrap();
    assert_eq!(opened.records.len(), files[0].rows);
}
