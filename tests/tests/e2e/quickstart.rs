//! The README's operator quick start, step by step, with the bundled sample export.

use synchro_tests::{ok, Territory};

#[test]
fn operator_quick_start_from_the_readme() {
    let t = Territory::new();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let sample = root.join("samples/siao-69-2026-10.csv");
    let profile = std::fs::read_to_string(root.join("samples/profile.toml")).unwrap();
    let ws = t.operator("siao-69", &profile, &[]);
    let cfg = ws.join("agent.toml");
    let cfg = cfg.to_str().unwrap();
    let input = sample.to_str().unwrap();
    let report = ok(
        "synchro-agent",
        &[
            "check", "--config", cfg, "--input", input, "--period", "2026-10",
        ],
    );
    assert!(report.contains("Aucun problème"), "{report}");
    let batch = t.p("siao-69-2026-10.age");
    ok(
        "synchro-agent",
        &[
            "run", "--config", cfg, "--input", input, "--period", "2026-10", "--out", &batch,
        ],
    );
    let opened = ok(
        "synchro-hub",
        &[
            "verify-batch",
            "--batch",
            &batch,
            "--identity",
            &t.p("hub/hub-identity.key"),
            "--operator",
            ws.join("keys/operator-siao-69.pub.toml").to_str().unwrap(),
        ],
    );
    assert!(
        opened.contains("batch accepted: operator siao-69, period 2026-10"),
        "{opened}"
    );
}
