//! Durability and concurrency: the hub killed with SIGKILL while ingesting loses no
//! acknowledged batch and keeps no partial one; fifty operators uploading at once get fifty
//! complete, unmixed batches.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rand::{Rng, SeedableRng};
use synchro_tests::{block_on, run, test_databases, text, HubProcess, Territory};

const PROFILE: &str = include_str!("../../../samples/profile.toml");

/// (operator workspace, operator id, export, period, rows)
type Job = (PathBuf, String, PathBuf, String, usize);

fn upload(job: &Job) -> bool {
    let (ws, _, input, period, _) = job;
    let out = run(
        "synchro-agent",
        &[
            "run",
            "--quiet",
            "--config",
            ws.join("agent.toml").to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--period",
            period,
        ],
    );
    out.status.success()
}

#[test]
fn acknowledged_batches_survive_sigkill_during_ingestion() {
    let t = Territory::new();
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    for db in test_databases(t.dir.path()) {
        let b = db.backend;
        let hub_dir = t.path(&format!("hub-{b}"));
        let mut hub = HubProcess::init(&hub_dir, &db);
        hub.start();
        let mut jobs: Vec<Job> = Vec::new();
        for o in 0..3 {
            let id = format!("op-{o}");
            let ws = hub.operator(&t, &format!("{id}-{b}"), &id, PROFILE, true);
            for (p, period) in ["2026-10", "2026-11", "2026-12"].iter().enumerate() {
                let input = t.path(&format!("bulk-{b}-{o}-{p}.csv"));
                let rows = 4000 + 1500 * p;
                synchro_synth::write_bulk_export(&input, rows, (o * 10 + p) as u64).unwrap();
                jobs.push((ws.clone(), id.clone(), input, period.to_string(), rows));
            }
        }
        let acked: Arc<Mutex<Vec<Job>>> = Arc::default();
        let mut pending = jobs.clone();
        for _cycle in 0..4 {
            let queue = pending.clone();
            let acked_now = Arc::clone(&acked);
            let uploader = std::thread::spawn(move || {
                let mut failed = Vec::new();
                for job in queue {
                    if upload(&job) {
                        acked_now.lock().unwrap().push(job);
                    } else {
                        failed.push(job);
                    }
                }
                failed
            });
            // A timed kill is the point of the test: it lands in the middle of ingestions.
            std::thread::sleep(std::time::Duration::from_millis(rng.gen_range(150..900)));
            hub.kill();
            pending = uploader.join().unwrap();
            hub.start();
        }
        for job in std::mem::take(&mut pending) {
            assert!(
                upload(&job),
                "{b}: the restarted hub must accept the remaining uploads"
            );
            acked.lock().unwrap().push(job);
        }
        let store = hub.store(&db);
        let subs = block_on(store.submissions()).unwrap();
        for (_, id, _, period, rows) in acked.lock().unwrap().iter() {
            let s = subs
                .iter()
                .find(|s| &s.operator_id == id && &s.period == period);
            let s = s.unwrap_or_else(|| panic!("{b}: acknowledged batch {id} {period} is missing"));
            assert_eq!(s.row_count, *rows as i64, "{b}: {id} {period}");
            assert_eq!(
                block_on(store.record_count(&s.batch_id)).unwrap().0,
                *rows as i64,
                "{b}: {id} {period} complete"
            );
        }
        assert_eq!(
            block_on(store.integrity()).unwrap(),
            (0, 0, 0),
            "{b}: no partial or mixed batch"
        );
        assert_eq!(subs.len(), jobs.len(), "{b}");
        block_on(store.close());
        let verify = run(
            "synchro-hub",
            &["audit", "verify", "--config", hub.config.to_str().unwrap()],
        );
        assert!(verify.status.success(), "{b}: {}", text(&verify));
        hub.kill();
    }
}

#[test]
fn fifty_operators_upload_at_once() {
    let t = Territory::new();
    for db in test_databases(t.dir.path()) {
        let b = db.backend;
        let hub_dir = t.path(&format!("hub-{b}"));
        let mut hub = HubProcess::init(&hub_dir, &db);
        hub.start();
        let mut jobs: Vec<Job> = Vec::new();
        for o in 0..50 {
            let id = format!("op-{o:02}");
            let ws = hub.operator(&t, &format!("{id}-{b}"), &id, PROFILE, true);
            let input = t.path(&format!("c-{b}-{o}.csv"));
            let rows = 200 + o * 7;
            synchro_synth::write_bulk_export(&input, rows, 100 + o as u64).unwrap();
            jobs.push((ws, id, input, "2026-10".into(), rows));
        }
        let threads: Vec<_> = jobs
            .iter()
            .cloned()
            .map(|job| std::thread::spawn(move || upload(&job)))
            .collect();
        for th in threads {
            assert!(
                th.join().unwrap(),
                "{b}: every concurrent upload is accepted"
            );
        }
        let store = hub.store(&db);
        let subs = block_on(store.submissions()).unwrap();
        assert_eq!(subs.len(), 50, "{b}");
        for (_, id, _, _, rows) in &jobs {
            let s = subs.iter().find(|s| &s.operator_id == id).unwrap();
            assert_eq!(s.row_count, *rows as i64, "{b}: {id}");
        }
        assert_eq!(
            block_on(store.integrity()).unwrap(),
            (0, 0, 0),
            "{b}: no lost or mixed batch"
        );
        block_on(store.close());
        hub.kill();
    }
}
