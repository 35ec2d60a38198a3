//! The hub's web interface and retention, against a real hub process.

use synchro_synth::{Config, Scenario};
use synchro_tests::{
    agent_run, block_on, small_scenario, test_databases, web_client, HubProcess, Territory,
};

fn response(r: Result<ureq::Response, ureq::Error>) -> (u16, Option<String>, String) {
    let resp = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("cannot reach the hub: {e}"),
    };
    let status = resp.status();
    let cookie = resp.header("set-cookie").map(str::to_string);
    (status, cookie, resp.into_string().unwrap_or_default())
}

#[test]
fn web_interface_shows_submissions_after_login_in_french_and_english() {
    let t = Territory::new();
    let (scenario, files) = small_scenario(&t.path("data"), 2, 1, (2026, 10), 150);
    for db in test_databases(t.dir.path()) {
        let b = db.backend;
        let hub_dir = t.path(&format!("hub-{b}"));
        let mut hub = HubProcess::init(&hub_dir, &db);
        hub.start();
        for (i, op) in scenario.operators.iter().enumerate() {
            let ws = hub.operator(
                &t,
                &format!("{}-{b}", op.id),
                &op.id,
                &scenario.profile(i),
                true,
            );
            let f = files.iter().find(|f| f.operator_id == op.id).unwrap();
            agent_run(&ws, &f.path, &f.period, None);
        }
        let web = web_client(&hub.ca);
        let (status, _, body) = response(web.get(&format!("{}/", hub.url)).call());
        assert_eq!(status, 303, "{b}: the dashboard needs a session");
        let (status, _, body_login) = response(web.get(&format!("{}/login", hub.url)).call());
        assert_eq!(status, 200);
        assert!(
            body_login.contains("Mot de passe") && body_login.contains("lang=\"fr\""),
            "{b}: French by default"
        );
        let _ = body;
        let (status, cookie, body) = response(
            web.post(&format!("{}/login", hub.url))
                .send_form(&[("username", "admin"), ("password", "wrong")]),
        );
        assert_eq!(status, 401, "{b}");
        assert!(cookie.is_none() && body.contains("incorrect"), "{b}");
        let (status, cookie, _) = response(
            web.post(&format!("{}/login", hub.url))
                .send_form(&[("username", "admin"), ("password", &hub.admin_password)]),
        );
        assert_eq!(status, 303, "{b}");
        let cookie = cookie.expect("session cookie");
        assert!(
            cookie.contains("HttpOnly")
                && cookie.contains("Secure")
                && cookie.contains("SameSite=Strict"),
            "{cookie}"
        );
        let session = cookie.split(';').next().unwrap().to_string();
        let (status, _, page) = response(
            web.get(&format!("{}/", hub.url))
                .set("Cookie", &session)
                .call(),
        );
        assert_eq!(status, 200, "{b}");
        for op in &scenario.operators {
            assert!(page.contains(&op.id), "{b}: {} missing", op.id);
            let f = files.iter().find(|f| f.operator_id == op.id).unwrap();
            if f.rows >= 11 {
                assert!(
                    page.contains(&format!("{} dossiers", f.rows)),
                    "{b}: count for {}",
                    op.id
                );
            }
        }
        assert!(page.contains("2026-10"), "{b}");
        let (_, _, page_en) = response(
            web.get(&format!("{}/?lang=en", hub.url))
                .set("Cookie", &session)
                .call(),
        );
        assert!(
            page_en.contains("Batches received per operator and month")
                && page_en.contains("records"),
            "{b}"
        );
        let store = hub.store(&db);
        let logins: Vec<String> = block_on(store.audit_leaves())
            .unwrap()
            .into_iter()
            .map(|(_, l)| l)
            .filter(|l| l.contains("\"login\""))
            .collect();
        assert_eq!(logins.len(), 2, "{b}: both logins audited");
        assert!(
            !logins
                .iter()
                .any(|l| l.contains("wrong") || l.contains(&hub.admin_password)),
            "{b}: no password in the audit log"
        );
        block_on(store.close());
        hub.kill();
    }
}

/// Fails unless every record reference PostgreSQL's statistics sampled is still stored.
const SAMPLED_REFERENCES_ARE_STORED: &str = "DO $$ DECLARE stale bigint; BEGIN \
    SELECT COUNT(*) INTO stale FROM pg_stats s, \
    unnest(COALESCE(s.histogram_bounds::text::text[], '{}') || COALESCE(s.most_common_vals::text::text[], '{}')) AS v \
    WHERE s.tablename = 'records' AND s.attname = 'record_ref' \
    AND NOT EXISTS (SELECT 1 FROM records r WHERE r.record_ref = v); \
    IF stale > 0 THEN RAISE EXCEPTION '% sampled references are no longer stored', stale; END IF; END $$";

#[test]
fn purge_removes_records_past_retention_and_is_audited() {
    let t = Territory::new();
    // Contacts in 2023: more than 24 months before today (2026-11).
    let old = Scenario::generate(Config {
        operators: 1,
        months: 1,
        first_period: (2023, 3),
        persons: 60,
        ..Config::default()
    });
    let recent = Scenario::generate(Config {
        operators: 1,
        months: 1,
        first_period: (2026, 10),
        persons: 60,
        seed: 7,
        ..Config::default()
    });
    let old_files = old.write_exports(&t.path("old")).unwrap();
    let recent_files = recent.write_exports(&t.path("recent")).unwrap();
    for db in test_databases(t.dir.path()) {
        let b = db.backend;
        let hub_dir = t.path(&format!("hub-{b}"));
        let hub = HubProcess::init(&hub_dir, &db);
        let ws = hub.operator(
            &t,
            &format!("op-{b}"),
            &old.operators[0].id,
            &old.profile(0),
            false,
        );
        // Recent data from another operator: its references never match the old ones.
        let ws2 = hub.operator(
            &t,
            &format!("op2-{b}"),
            "siao-recent",
            &recent.profile(0),
            false,
        );
        for (ws, f) in old_files
            .iter()
            .map(|f| (&ws, f))
            .chain(recent_files.iter().map(|f| (&ws2, f)))
        {
            let out = t.path(&format!("{b}-{}.age", f.period));
            agent_run(ws, &f.path, &f.period, Some(&out));
            hub.cli(&["ingest", out.to_str().unwrap()]);
        }
        let msg = hub.cli(&["purge"]);
        assert!(
            msg.contains(&format!("{} records past retention", old_files[0].rows)),
            "{b}: {msg}"
        );
        // PostgreSQL's statistics keep sampled values (the last run's analysis saw the old
        // references): none of a purged record may stay there after the purge.
        if let Some(sampled) = block_on(db.execute_as_admin(SAMPLED_REFERENCES_ARE_STORED)) {
            assert_eq!(sampled, Ok(()), "{b}: statistics after the purge");
        }
        let store = hub.store(&db);
        let linked_before = block_on(store.record_ids()).unwrap().len();
        // The next linkage run drops the purged records' links (deleted as lists per operator)
        // and retires the person ids only they held.
        hub.cli(&["process"]);
        let linked = block_on(store.record_ids()).unwrap();
        assert_eq!(
            linked_before,
            old_files[0].rows + recent_files[0].rows,
            "{b}: both operators linked before the purge"
        );
        assert_eq!(linked.len(), recent_files[0].rows, "{b}: links left");
        assert!(
            linked.keys().all(|(operator, _)| operator == "siao-recent"),
            "{b}: no link of a purged record remains"
        );
        let (live, _) = block_on(store.live_ids("person")).unwrap();
        let persons: std::collections::BTreeSet<i64> = linked.values().map(|ids| ids.0).collect();
        assert_eq!(
            live.iter()
                .copied()
                .collect::<std::collections::BTreeSet<i64>>(),
            persons,
            "{b}: the purged-only persons are retired"
        );
        let subs = block_on(store.submissions()).unwrap();
        let old_batch = subs.iter().find(|s| s.period == "2023-03").unwrap();
        let recent_batch = subs.iter().find(|s| s.period == "2026-10").unwrap();
        assert_eq!(
            block_on(store.record_count(&old_batch.batch_id)).unwrap(),
            (0, 0),
            "{b}: old records and keys gone"
        );
        assert_eq!(
            block_on(store.record_count(&recent_batch.batch_id))
                .unwrap()
                .0,
            recent_files[0].rows as i64,
            "{b}: recent records kept"
        );
        assert_eq!(
            block_on(store.integrity()).unwrap(),
            (0, 0, 0),
            "{b}: received = stored + purged"
        );
        let leaves = block_on(store.audit_leaves()).unwrap();
        let purge: serde_json::Value = leaves
            .iter()
            .map(|(_, l)| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .rfind(|v| v["action"] == "purge")
            .expect("purge audited");
        assert_eq!(purge["details"]["records"], old_files[0].rows as u64, "{b}");
        // The DPO report shows the purge, the retention settings and the checkpoint to keep.
        let report = hub.cli(&["report-dpo"]);
        assert!(
            report.contains(&format!("{} enregistrements", old_files[0].rows)),
            "{b}: {report}"
        );
        assert!(
            report.contains("24 mois après le dernier contact")
                && report.contains("— synchro.test/audit"),
            "{b}: {report}"
        );
        assert!(
            report.contains("siao-recent") && !report.contains("r_"),
            "{b}"
        );
        block_on(store.close());
    }
}
