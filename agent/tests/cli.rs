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

#[test]
fn bench_reports_throughput_ratio_floor_and_memory() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("bench.md");
    let (code, text) = agent(&[
        "bench",
        "--rows",
        "3000",
        "--work-dir",
        dir.path().join("work").to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{text}");
    let written = std::fs::read_to_string(&report).unwrap();
    assert!(
        text.contains(&written),
        "the report printed and written differ"
    );
    // Both sizes measured, with their own peak memory.
    for rows in ["| 300 |", "| 3000 |"] {
        assert!(written.contains(rows), "{rows} missing:\n{written}");
    }
    for part in [
        "HMACs per row",
        "Pipeline / bare HMAC cost per row:",
        "Throughput:",
        "Floor of this format",
        "Memory:",
    ] {
        assert!(written.contains(part), "{part} missing:\n{written}");
    }
    let floor: f64 = written
        .split("sealing alone come to **")
        .nth(1)
        .and_then(|rest| rest.split('x').next())
        .and_then(|x| x.parse().ok())
        .unwrap_or_else(|| panic!("no floor ratio in:\n{written}"));
    assert!(
        floor > 1.0,
        "the floor includes the HMACs themselves: {floor}"
    );
}
