//! The hub's command line.

use std::process::Command;

#[test]
fn verify_batch_names_the_missing_file() {
    let out = Command::new(env!("CARGO_BIN_EXE_synchro-hub"))
        .args([
            "verify-batch",
            "--batch",
            "/nonexistent/b.age",
            "--identity",
            "x",
            "--operator",
            "y",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("/nonexistent/b.age"), "{text}");
}
