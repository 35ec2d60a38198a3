//! The agent's command line: help, exit codes and actionable errors.

use std::process::Command;

fn agent(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_synchro-agent"))
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn help_lists_every_command() {
    let (code, text) = agent(&["--help"]);
    assert_eq!(code, 0);
    for cmd in [
        "init",
        "install-secret",
        "check",
        "preview",
        "run",
        "send",
        "default-config",
        "bench",
    ] {
        assert!(text.contains(cmd), "{cmd} missing from help:\n{text}");
    }
}

#[test]
fn missing_configuration_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("agent.toml");
    let (code, text) = agent(&[
        "check",
        "--input",
        "x.csv",
        "--period",
        "2026-10",
        "--config",
        cfg.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(text.contains("synchro-agent init"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
}

#[test]
fn bad_period_is_refused_with_the_expected_shape() {
    let (code, text) = agent(&["check", "--input", "x.csv", "--period", "2026-13"]);
    assert_eq!(code, 2);
    assert!(text.contains("YYYY-MM"), "{text}");
}

#[test]
fn default_config_is_the_documented_example() {
    let (code, text) = agent(&["default-config"]);
    assert_eq!(code, 0);
    assert!(text.contains("max_rejected_rows = 0"));
    assert!(text.contains("[hub]"));
}
