//! A real hub (`synchro-hub serve`, TLS on loopback) receiving real agents' uploads, on SQLite
//! and PostgreSQL: acceptance, replacement of a corrected month, acknowledged resubmission.

use synchro_tests::{
    agent_run, block_on, ok, run, small_scenario, test_databases, text, HubProcess, Territory,
};

#[test]
fn agents_upload_over_tls_and_resubmissions_replace_on_every_backend() {
    let t = Territory::new();
    let (scenario, files) = small_scenario(&t.path("data"), 2, 2, (2026, 9), 200);
    for db in test_databases(t.dir.path()) {
        let hub_dir = t.path(&format!("hub-{}", db.backend));
        let mut hub = HubProcess::init(&hub_dir, &db);
        hub.start();
        let mut expected = Vec::new();
        for (i, op) in scenario.operators.iter().enumerate() {
            let ws_name = format!("{}-{}", op.id, db.backend);
            let ws = hub.operator(&t, &ws_name, &op.id, &scenario.profile(i), true);
            for f in files.iter().filter(|f| f.operator_id == op.id) {
                let out = agent_run(&ws, &f.path, &f.period, None);
                assert!(out.contains("accepted"), "{}: {out}", db.backend);
                expected.push((op.id.clone(), f.period.clone(), f.rows as i64, ws.clone()));
            }
        }
        // A corrected export for the same month replaces the stored batch.
        let (op_id, period, rows, ws) = expected[0].clone();
        let input = files
            .iter()
            .find(|f| f.operator_id == op_id && f.period == period)
            .unwrap();
        let out = agent_run(&ws, &input.path, &period, None);
        assert!(out.contains("replacing batch"), "{out}");
        // Sending the very same sealed batch again is acknowledged, not duplicated.
        let receipts = ws.join("receipts").join(&period);
        let mut kept: Vec<_> = std::fs::read_dir(&receipts)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with(".batch.age"))
            .collect();
        kept.sort();
        let last = kept.last().unwrap();
        let out = ok(
            "synchro-agent",
            &[
                "send",
                "--config",
                ws.join("agent.toml").to_str().unwrap(),
                "--batch",
                last.to_str().unwrap(),
            ],
        );
        assert!(out.contains("duplicate"), "{out}");

        let store = hub.store(&db);
        let subs = block_on(store.submissions()).unwrap();
        assert_eq!(
            subs.len(),
            expected.len(),
            "{}: one batch per operator and month",
            db.backend
        );
        for (op, period, rows_expected, _) in &expected {
            let s = subs
                .iter()
                .find(|s| &s.operator_id == op && &s.period == period)
                .unwrap();
            assert_eq!(s.row_count, *rows_expected);
            let (records, keys) = block_on(store.record_count(&s.batch_id)).unwrap();
            assert_eq!(records, *rows_expected, "{}: records stored", db.backend);
            assert!(keys > records, "{}: match keys stored", db.backend);
        }
        let _ = rows;
        let leaves = block_on(store.audit_leaves()).unwrap();
        let actions: Vec<String> = leaves
            .iter()
            .map(|(_, l)| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["action"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert!(
            actions.contains(&"batch_replaced".to_string()),
            "{actions:?}"
        );
        assert_eq!(
            actions.iter().filter(|a| *a == "batch_ingested").count(),
            expected.len()
        );
        // No pseudonym reaches the audit log.
        for (_, leaf) in &leaves {
            assert!(
                !leaf.contains("\"r_") && !leaf.contains("\"h_"),
                "audit leaf holds a reference: {leaf}"
            );
        }
        block_on(store.close());
        let verify = run(
            "synchro-hub",
            &["audit", "verify", "--config", hub.config.to_str().unwrap()],
        );
        assert!(verify.status.success(), "{}", text(&verify));
        hub.kill();
    }
}
