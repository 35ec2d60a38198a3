//! The bad-input corpus (`tests/corpus/`): each file gets its clear, located error in French,
//! and a refused `run` leaves nothing behind — no batch, no signature, no temporary file.

use std::path::Path;

use synchro_tests::{run, text, Territory};

fn corpus() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                names.extend(files_in(&p));
            } else {
                names.push(p.display().to_string());
            }
        }
    }
    names.sort();
    names
}

#[test]
fn every_bad_input_gets_its_located_error_and_nothing_is_sent() {
    let t = Territory::new();
    let profile = std::fs::read_to_string(corpus().join("profile.toml")).unwrap();
    let ws = t.operator("siao-69", &profile, &[]);
    let cfg = ws.join("agent.toml");
    let cfg = cfg.to_str().unwrap();
    let mut cases = 0;
    let mut entries: Vec<_> = std::fs::read_dir(corpus())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for expected_path in entries
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "expected"))
    {
        let stem = expected_path.file_stem().unwrap().to_str().unwrap();
        let input = entries
            .iter()
            .find(|p| {
                p.file_stem().is_some_and(|s| s == stem)
                    && p.extension().is_some_and(|e| e != "expected")
            })
            .unwrap_or_else(|| panic!("no input file for {stem}"));
        let expected = std::fs::read_to_string(expected_path).unwrap();
        let mut lines = expected.lines();
        let exit: i32 = lines
            .next()
            .unwrap()
            .trim_start_matches("exit ")
            .parse()
            .unwrap();
        let input = input.to_str().unwrap();

        let check = run(
            "synchro-agent",
            &[
                "check", "--config", cfg, "--input", input, "--period", "2026-10",
            ],
        );
        let out = text(&check);
        assert_eq!(check.status.code(), Some(exit), "{stem}: exit code\n{out}");
        for line in lines {
            assert!(out.contains(line), "{stem}: expected {line:?} in:\n{out}");
        }
        assert!(
            !out.contains("panicked") && !out.contains("Error {"),
            "{stem}: {out}"
        );

        let out_dir = t.path(&format!("out-{stem}"));
        std::fs::create_dir_all(&out_dir).unwrap();
        let batch = out_dir.join("batch.age");
        let before_receipts = files_in(&ws.join("receipts"));
        let runned = run(
            "synchro-agent",
            &[
                "run",
                "--config",
                cfg,
                "--input",
                input,
                "--period",
                "2026-10",
                "--out",
                batch.to_str().unwrap(),
            ],
        );
        if exit == 0 {
            assert!(runned.status.success(), "{stem}: {}", text(&runned));
            assert!(batch.exists());
        } else {
            assert!(!runned.status.success(), "{stem}: run must refuse");
            assert!(
                files_in(&out_dir).is_empty(),
                "{stem}: left {:?}",
                files_in(&out_dir)
            );
            assert_eq!(
                files_in(&ws.join("receipts")),
                before_receipts,
                "{stem}: receipts changed"
            );
        }
        cases += 1;
    }
    assert!(cases >= 13, "only {cases} corpus cases");
}

#[test]
fn english_reports_on_request() {
    let t = Territory::new();
    let profile = std::fs::read_to_string(corpus().join("profile.toml")).unwrap();
    let ws = t.operator("siao-69", &profile, &[]);
    let input = corpus().join("invalid-dates.csv");
    let out = run(
        "synchro-agent",
        &[
            "check",
            "--lang",
            "en",
            "--config",
            ws.join("agent.toml").to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--period",
            "2026-10",
        ],
    );
    let out = text(&out);
    assert!(
        out.contains("line 2, column D \"naissance\": birth date: impossible date"),
        "{out}"
    );
    assert!(out.contains("rows read: 4"), "{out}");
}
