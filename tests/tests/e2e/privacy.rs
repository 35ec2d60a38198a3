//! Invariant 1: no name, first name or full birth date leaves the agent — in the batch, its
//! signature, the preview a DPO reads, or any line the agent prints or logs.

use std::path::Path;

use chrono::Datelike;
use synchro_agent::export::{Export, Row};
use synchro_agent::profile::Profile;
use synchro_shared::normalise::{name_tokens, parse_date, DateKind, DateValue};
use synchro_synth::{Config, Dirtiness, Scenario};
use synchro_tests::{ok, run, text, Territory};

/// Identity strings of an export, as the agent reads them: raw cells, folded tokens, and full
/// birth dates in every format an export or a log could spell them.
fn identities(export: &Path, profile: &Profile) -> Vec<String> {
    let mut e = Export::open(export, &profile.file).unwrap();
    let folded: Vec<String> = e
        .headers
        .iter()
        .map(|h| synchro_shared::normalise::fold_value(h))
        .collect();
    let col = |field: &str| {
        let header = profile
            .columns
            .iter()
            .find(|(f, _)| f.name() == field)
            .map(|(_, h)| h.clone());
        header.and_then(|h| {
            folded
                .iter()
                .position(|x| *x == synchro_shared::normalise::fold_value(&h))
        })
    };
    let name_cols: Vec<usize> = ["birth_name", "usage_name", "first_names"]
        .iter()
        .filter_map(|f| col(f))
        .collect();
    let date_col = col("birth_date").unwrap();
    let mut out = Vec::new();
    let mut row = Row {
        line: 0,
        cells: csv::StringRecord::new(),
    };
    while e.next_row(&mut row).unwrap() {
        for &c in &name_cols {
            let raw = row.cells.get(c).unwrap_or("").trim().to_string();
            for token in name_tokens(&raw) {
                // Six letters and more: shorter strings occur by chance in base64 key values.
                if token.len() >= 6 {
                    out.push(token.clone());
                    out.push(token.to_lowercase());
                }
            }
            if raw.chars().count() >= 6 {
                out.push(raw);
            }
        }
        if let Ok(DateValue::Full(d)) =
            parse_date(row.cells.get(date_col).unwrap_or(""), DateKind::Birth, 2026)
        {
            // Children's birth dates can equal a contact date of the period; adults' cannot.
            if d.year() < 2015 {
                out.push(d.format("%d/%m/%Y").to_string());
                out.push(d.format("%Y-%m-%d").to_string());
                out.push(d.format("%Y%m%d").to_string());
                out.push(d.format("%d%m%Y").to_string());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn no_identity_in_anything_the_agent_sends_prints_or_logs() {
    let t = Territory::new();
    let data = t.path("data");
    let scenario = Scenario::generate(Config {
        seed: 11,
        persons: 300,
        operators: 5,
        months: 1,
        first_period: (2026, 10),
        dirtiness: Dirtiness::Very,
    });
    let files = scenario.write_exports(&data).unwrap();
    let mut checked = 0;
    for (i, op) in scenario.operators.iter().enumerate() {
        let ws = t.operator(&op.id, &scenario.profile(i), &[]);
        let cfg = ws.join("agent.toml");
        let cfg = cfg.to_str().unwrap();
        let export = files.iter().find(|f| f.operator_id == op.id).unwrap();
        let input = export.path.to_str().unwrap();
        let profile = Profile::load(&ws.join("profile.toml")).unwrap();
        let needles = identities(&export.path, &profile);
        assert!(
            needles.len() > 20,
            "the scan must have identities to look for"
        );
        // Canary: the same scan finds the identities in the export itself, so a leak would show.
        if export.path.extension().is_some_and(|e| e == "csv") {
            let source =
                String::from_utf8_lossy(&std::fs::read(&export.path).unwrap()).into_owned();
            let found = needles
                .iter()
                .filter(|n| source.contains(n.as_str()))
                .count();
            assert!(
                found >= 20,
                "{}: the scan finds only {found} identities in the export",
                op.id
            );
        }

        let mut haystack: Vec<(String, Vec<u8>)> = Vec::new();
        let check = run(
            "synchro-agent",
            &[
                "-v", "check", "--config", cfg, "--input", input, "--period", "2026-10",
            ],
        );
        haystack.push(("check output".into(), text(&check).into_bytes()));
        let preview = t.path(&format!("{}-preview.jsonl", op.id));
        let out = ok(
            "synchro-agent",
            &[
                "-v",
                "preview",
                "--config",
                cfg,
                "--input",
                input,
                "--period",
                "2026-10",
                "--out",
                preview.to_str().unwrap(),
            ],
        );
        haystack.push(("preview output".into(), out.into_bytes()));
        haystack.push(("preview file".into(), std::fs::read(&preview).unwrap()));
        let batch = t.path(&format!("{}.age", op.id));
        let out = ok(
            "synchro-agent",
            &[
                "-v",
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
        haystack.push(("run output".into(), out.into_bytes()));
        let ciphertext = std::fs::read(&batch).unwrap();
        let mut sig = batch.clone().into_os_string();
        sig.push(".sig");
        haystack.push(("signature".into(), std::fs::read(&sig).unwrap()));
        let mut plain = Vec::new();
        std::io::Read::read_to_end(
            &mut synchro_shared::batch::decrypt_with(&ciphertext[..], &t.hub_identity()).unwrap(),
            &mut plain,
        )
        .unwrap();
        assert!(plain.len() > 1000);
        haystack.push(("decrypted batch".into(), plain));
        haystack.push(("ciphertext".into(), ciphertext));

        for (what, bytes) in &haystack {
            let hay = String::from_utf8_lossy(bytes);
            for needle in &needles {
                assert!(
                    !hay.contains(needle.as_str()),
                    "{}: an identity string appears in the {what}",
                    op.id
                );
            }
        }
        checked += needles.len();
    }
    assert!(checked > 500, "only {checked} identity strings checked");
}
