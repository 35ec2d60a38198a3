//! `synchro-hub audit verify` catches every tampering with the audit log: an edited entry, the
//! last entries deleted, entries reordered, and the whole log rewritten and re-signed (caught
//! against a checkpoint kept outside the hub). The hub refuses to sign a log that does not
//! extend its last checkpoint.

use synchro_tests::{
    agent_run, block_on, run, small_scenario, test_databases, text, HubProcess, Territory,
};

fn sql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[test]
fn audit_verify_detects_each_tampering_on_every_backend() {
    let t = Territory::new();
    let (scenario, files) = small_scenario(&t.path("data"), 1, 2, (2026, 9), 80);
    for db in test_databases(t.dir.path()) {
        let b = db.backend;
        let hub_dir = t.path(&format!("hub-{b}"));
        let hub = HubProcess::init(&hub_dir, &db);
        let ws = hub.operator(
            &t,
            &format!("op-{b}"),
            &scenario.operators[0].id,
            &scenario.profile(0),
            false,
        );
        for f in &files {
            let out = t.path(&format!("{b}-{}.age", f.period));
            agent_run(&ws, &f.path, &f.period, Some(&out));
            let msg = hub.cli(&["ingest", out.to_str().unwrap()]);
            assert!(msg.contains("accepted"), "{msg}");
        }
        hub.cli(&["purge"]);
        let external = t.path(&format!("checkpoint-{b}.txt"));
        std::fs::write(&external, hub.cli(&["audit", "checkpoint"])).unwrap();
        let cfg = hub.config.to_str().unwrap().to_string();
        let verify = |with_external: bool| {
            let mut args = vec!["audit", "verify", "--config", &cfg];
            if with_external {
                args.extend(["--checkpoint", external.to_str().unwrap()]);
            }
            let out = run("synchro-hub", &args);
            (out.status.success(), text(&out))
        };
        assert!(
            verify(true).0,
            "{b}: intact log must verify: {}",
            verify(true).1
        );

        let store = hub.store(&db);
        let leaves = block_on(store.audit_leaves()).unwrap();
        assert!(leaves.len() >= 5, "{b}: enough entries to tamper with");
        let set_leaf = |seq: i64, leaf: &str| {
            block_on(store.execute_raw(&format!(
                "UPDATE audit_entries SET leaf = {} WHERE seq = {seq}",
                sql_literal(leaf)
            )))
            .unwrap();
        };

        // 1. An edited entry.
        set_leaf(2, &leaves[2].1.replace("batch_ingested", "batch_refused"));
        let (okay, out) = verify(false);
        assert!(
            !okay && out.contains("TAMPERING"),
            "{b}: edit not detected: {out}"
        );
        // The hub refuses to sign a checkpoint over the edited log.
        let refused = run("synchro-hub", &["audit", "checkpoint", "--config", &cfg]);
        assert!(
            !refused.status.success() && text(&refused).contains("does not extend"),
            "{b}: {}",
            text(&refused)
        );
        set_leaf(2, &leaves[2].1);
        assert!(verify(true).0, "{b}: restored");

        // 2. The last entries deleted.
        let n = leaves.len() as i64;
        block_on(store.execute_raw(&format!("DELETE FROM audit_entries WHERE seq >= {}", n - 2)))
            .unwrap();
        let (okay, out) = verify(false);
        assert!(
            !okay && out.contains("deleted"),
            "{b}: deletion not detected: {out}"
        );
        for (seq, leaf) in &leaves[(n - 2) as usize..] {
            block_on(store.execute_raw(&format!(
                "INSERT INTO audit_entries (seq, leaf) VALUES ({seq}, {})",
                sql_literal(leaf)
            )))
            .unwrap();
        }
        assert!(verify(true).0, "{b}: restored");

        // 3. Entries reordered (contents swapped between two positions).
        set_leaf(1, &leaves[3].1);
        set_leaf(3, &leaves[1].1);
        let (okay, out) = verify(false);
        assert!(
            !okay && out.contains("TAMPERING"),
            "{b}: reorder not detected: {out}"
        );
        set_leaf(1, &leaves[1].1);
        set_leaf(3, &leaves[3].1);
        assert!(verify(true).0, "{b}: restored");

        // 4. The whole log rewritten and re-signed by someone holding the hub's keys: the
        //    stored checkpoints agree with it, the one kept outside does not.
        set_leaf(2, &leaves[2].1.replace("batch_ingested", "batch_refused"));
        block_on(store.execute_raw("DELETE FROM checkpoints")).unwrap();
        hub.cli(&["audit", "checkpoint"]);
        assert!(
            verify(false).0,
            "{b}: a rewritten, re-signed log is self-consistent"
        );
        let (okay, out) = verify(true);
        assert!(
            !okay && out.contains("external checkpoint"),
            "{b}: rewrite not caught by the external checkpoint: {out}"
        );
        block_on(store.close());
    }
}
