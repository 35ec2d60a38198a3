//! Monthly processing on every backend: person ids stay the same from month to month, a new
//! month that proves two persons one records a merge, a corrected month that takes that proof
//! away records a split with a fresh id, and ids are never reused.

use std::collections::{BTreeMap, HashMap};

use synchro_hub::linkage::{profile, LinkParams};
use synchro_hub::processing::process;
use synchro_hub::store::{EnrolledOperator, NewBatch, Store, StoredRecord};
use synchro_shared::normalise::{parse_date, BirthDate, DateKind, DateValue, NormalisedNames};
use synchro_shared::pseudonym::{LinkageSecret, MatchKeyDeriver};
use synchro_synth::names::{MALE_FIRST, SURNAMES};
use synchro_tests::{block_on, test_databases, Territory};

/// (operator, record ref, birth name, first names, birth date)
type Typed = (&'static str, String, String, String, String);

fn stored(deriver: &MatchKeyDeriver, t: &Typed, period: &str) -> StoredRecord {
    let (_, record_ref, surname, first, date) = t;
    let names = NormalisedNames::from_raw(surname, "", first);
    let birth =
        BirthDate::classify(parse_date(date, DateKind::Birth, 2026).unwrap_or(DateValue::Missing));
    let keys: Vec<(&'static str, String)> = deriver
        .derive(&names, &birth)
        .into_iter()
        .flat_map(|(f, values)| values.into_iter().map(move |v| (f.code(), v)))
        .collect();
    let attributes = serde_json::json!({
        "sex": "M",
        "by": birth.year(),
        "dq": if birth.exact().is_some() { "exact" } else { "approximate" },
    });
    StoredRecord {
        record_ref: record_ref.clone(),
        household_ref: None,
        last_contact: format!("{period}-15"),
        attributes: attributes.to_string(),
        linkage: profile(&attributes, &keys),
        keys,
    }
}

fn batch(deriver: &MatchKeyDeriver, operator: &str, period: &str, rows: &[Typed]) -> NewBatch {
    let id = format!("{operator}-{period}-{}", rows.len());
    NewBatch {
        id: id.clone(),
        operator_id: operator.to_string(),
        period: period.to_string(),
        ciphertext_sha256: format!("{:064x}", rows.len() as u64 * 7919 + id.len() as u64),
        nonce: format!("nonce-{id}"),
        ciphertext: id.as_bytes().to_vec(),
        signature: "{}".to_string(),
        rejected_count: 0,
        key_epoch: 1,
        template_version: 1,
        key_set_version: i64::from(synchro_shared::pseudonym::KEY_SET_VERSION),
        agent_version: "test".to_string(),
        received_at: 1_790_000_000,
        records: rows
            .iter()
            .filter(|t| t.0 == operator)
            .map(|t| stored(deriver, t, period))
            .collect(),
    }
}

/// 600 background persons seen by one or two operators, so that EM has matches and strangers
/// to learn from; deterministic.
fn background() -> Vec<Typed> {
    let mut state = 0x5eed_0000_beef_0001u64;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    let mut rows = Vec::new();
    for p in 0..600 {
        let surname = SURNAMES[next(SURNAMES.len())].to_string();
        let first = MALE_FIRST[next(MALE_FIRST.len())][0].to_string();
        let date = format!(
            "{:02}/{:02}/{}",
            1 + next(28),
            1 + next(12),
            1950 + next(50)
        );
        rows.push((
            "siao",
            format!("bg{p}"),
            surname.clone(),
            first.clone(),
            date.clone(),
        ));
        if p % 3 == 0 {
            rows.push(("ccas", format!("bg{p}"), surname, first, date));
        }
    }
    rows
}

fn typed(operator: &'static str, reference: &str, surname: &str, first: &str, date: &str) -> Typed {
    (
        operator,
        reference.to_string(),
        surname.to_string(),
        first.to_string(),
        date.to_string(),
    )
}

async fn ingest(store: &Store, deriver: &MatchKeyDeriver, period: &str, rows: &[Typed]) {
    for operator in ["siao", "ccas", "maraude"] {
        let b = batch(deriver, operator, period, rows);
        if !b.records.is_empty() {
            store.ingest_batch(&b, "test").await.unwrap();
        }
    }
}

/// Person id of each (operator, record ref).
async fn ids(store: &Store) -> HashMap<(String, String), i64> {
    store
        .record_links()
        .await
        .unwrap()
        .into_iter()
        .map(|l| ((l.operator_id, l.record_ref), l.person_id))
        .collect()
}

fn id_of(ids: &HashMap<(String, String), i64>, operator: &str, reference: &str) -> i64 {
    ids[&(operator.to_string(), reference.to_string())]
}

/// Records, persons, households, persons by records and by operators.
type Figures = (
    usize,
    usize,
    usize,
    BTreeMap<usize, usize>,
    BTreeMap<usize, usize>,
);

fn summary_figures(run: &synchro_hub::processing::RunSummary) -> Figures {
    (
        run.records,
        run.persons,
        run.households,
        run.cluster_sizes.clone(),
        run.persons_by_operators.clone(),
    )
}

/// The figures of the stored links, counted from scratch.
async fn stored_figures(store: &Store) -> Figures {
    let links = store.record_links().await.unwrap();
    let mut records_of: HashMap<i64, usize> = HashMap::new();
    let mut operators_of: HashMap<i64, std::collections::BTreeSet<&str>> = HashMap::new();
    for l in &links {
        *records_of.entry(l.person_id).or_default() += 1;
        operators_of
            .entry(l.person_id)
            .or_default()
            .insert(&l.operator_id);
    }
    let households: std::collections::BTreeSet<i64> =
        links.iter().map(|l| l.household_id).collect();
    let (mut sizes, mut by_operators) = (BTreeMap::new(), BTreeMap::new());
    for n in records_of.values() {
        *sizes.entry(*n).or_default() += 1;
    }
    for o in operators_of.values() {
        *by_operators.entry(o.len()).or_default() += 1;
    }
    (
        links.len(),
        records_of.len(),
        households.len(),
        sizes,
        by_operators,
    )
}

/// Event kinds of a month, counted.
async fn events(store: &Store, period: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for e in store.linkage_events(period).await.unwrap() {
        *out.entry(e.kind).or_default() += 1;
    }
    out
}

/// Enrols test operators (their keys are not used: batches go straight to the store).
async fn enrol(store: &Store, operators: &[&str]) {
    for id in operators {
        store
            .add_operator(&EnrolledOperator {
                id: id.to_string(),
                display_name: id.to_string(),
                signing_public_key: "unused".to_string(),
                age_recipient: "unused".to_string(),
                active: true,
                enrolled_at: 0,
            })
            .await
            .unwrap();
    }
}

async fn connect(db: &synchro_tests::TestDatabase) -> Store {
    let password = db
        .password_file
        .as_ref()
        .map(|p| std::fs::read_to_string(p).unwrap().trim().to_string());
    Store::connect(&db.url, password.as_deref()).await.unwrap()
}

/// Runs `test` on a fresh store of every test backend (SQLite, and PostgreSQL when
/// configured) with `operators` enrolled, then closes the store.
fn on_every_backend(
    operators: &[&str],
    test: impl AsyncFn(&Store, &MatchKeyDeriver, &LinkParams, &'static str),
) {
    let t = Territory::new();
    let deriver = MatchKeyDeriver::new(&LinkageSecret::generate(1));
    let params = LinkParams::default();
    for db in test_databases(t.dir.path()) {
        block_on(async {
            let store = connect(&db).await;
            enrol(&store, operators).await;
            test(&store, &deriver, &params, db.backend).await;
            store.close().await;
        });
    }
}

#[test]
fn person_ids_are_stable_and_merges_and_splits_are_recorded_on_every_backend() {
    on_every_backend(
        &["siao", "ccas", "maraude"],
        async |store, deriver, params, backend| {
            // September: Karim Benali is known to the SIAO and the CCAS. The outreach team
            // typed another person's birth date in Julien Marchand's file: nothing proves him
            // the SIAO's Julien yet.
            let karim = [
                typed("siao", "kb", "Benali", "Karim", "14/07/1982"),
                typed("ccas", "kb", "Benali", "Karim", "14/07/1982"),
            ];
            let julien_siao = typed("siao", "jm", "Marchand", "Julien", "03/05/1990");
            let julien_wrong = typed("maraude", "jm", "Marchand", "Julien", "12/11/1964");
            let julien_right = typed("maraude", "jm", "Marchand", "Julien", "03/05/1990");
            let mut september = background();
            september.extend(karim.clone());
            september.extend([julien_siao.clone(), julien_wrong.clone()]);
            ingest(store, deriver, "2026-09", &september).await;
            let september_run = process(store, params, None, false, "test", 1)
                .await
                .unwrap();
            assert_eq!(
                (september_run.period.as_str(), september_run.mode.as_str()),
                ("2026-09", "full")
            );
            let sept = ids(store).await;
            let karim_id = id_of(&sept, "siao", "kb");
            assert_eq!(
                karim_id,
                id_of(&sept, "ccas", "kb"),
                "{backend}: one person"
            );
            let (siao_id, outreach_id) =
                (id_of(&sept, "siao", "jm"), id_of(&sept, "maraude", "jm"));
            assert_ne!(siao_id, outreach_id, "{backend}: no proof yet");
            let issued_in_september: Vec<i64> = {
                let mut v: Vec<i64> = sept.values().copied().collect();
                v.sort_unstable();
                v.dedup();
                v
            };

            // October: the outreach team corrects the date on the same file. Its months now
            // carry both dates: the two Juliens are one person, and the merge is recorded.
            // A quarter of the background is seen again.
            let mut october: Vec<Typed> = background()
                .into_iter()
                .filter(|t| t.1[2..].parse::<usize>().unwrap() % 4 == 0)
                .collect();
            october.extend(karim.clone());
            october.extend([julien_siao.clone(), julien_right.clone()]);
            ingest(store, deriver, "2026-10", &october).await;
            let run = process(store, params, None, false, "test", 2)
                .await
                .unwrap();
            // Only October's records and the history they touch were read, weighed with the
            // model September's full run fitted on every record.
            assert_eq!(run.mode, "incremental", "{backend}");
            assert_eq!(
                run.model_match_share, september_run.model_match_share,
                "{backend}: the model is reused"
            );
            assert!(
                run.records_linked < run.records,
                "{backend}: {} of {}",
                run.records_linked,
                run.records
            );
            // Its territory-wide figures come from what it read and decided, not from a scan
            // of every link: they must be what the stored links say.
            assert_eq!(
                summary_figures(&run),
                stored_figures(store).await,
                "{backend}: territory-wide figures of the incremental run"
            );
            let oct = ids(store).await;
            assert_eq!(id_of(&oct, "siao", "kb"), karim_id, "{backend}: id kept");
            assert_eq!(id_of(&oct, "ccas", "kb"), karim_id, "{backend}: id kept");
            let background_kept = sept
                .iter()
                .filter(|(k, _)| k.1.starts_with("bg"))
                .filter(|(k, id)| oct[*k] == **id)
                .count();
            let background_total = sept.keys().filter(|k| k.1.starts_with("bg")).count();
            assert_eq!(
                background_kept, background_total,
                "{backend}: background ids kept"
            );
            let merged = id_of(&oct, "siao", "jm");
            assert_eq!(merged, id_of(&oct, "maraude", "jm"), "{backend}: merged");
            assert!(
                merged == siao_id || merged == outreach_id,
                "{backend}: an old id survives"
            );
            assert_eq!(
                events(store, "2026-10").await.get("person_merge"),
                Some(&1),
                "{backend}: the merge is recorded in October"
            );

            // The outreach team resubmits October with the wrong date again (its correction was
            // itself a mistake): the proof is gone, Julien splits, and the part that leaves
            // gets a new id, never one issued before.
            let mut corrected: Vec<Typed> = background()
                .into_iter()
                .filter(|t| t.1[2..].parse::<usize>().unwrap() % 4 == 0)
                .collect();
            corrected.extend(karim.clone());
            corrected.extend([julien_siao.clone(), julien_wrong.clone()]);
            let replacement = batch(deriver, "maraude", "2026-10", &corrected);
            let replacement = NewBatch {
                id: format!("{}-again", replacement.id),
                nonce: format!("{}-again", replacement.nonce),
                ciphertext_sha256: format!("{:064x}", 42),
                ..replacement
            };
            store.ingest_batch(&replacement, "test").await.unwrap();
            let run = process(store, params, None, false, "test", 3)
                .await
                .unwrap();
            // October again, corrected: the last run's month changed, so everything is relinked.
            assert_eq!(run.mode, "full", "{backend}");
            let split = ids(store).await;
            let (a, b) = (id_of(&split, "siao", "jm"), id_of(&split, "maraude", "jm"));
            assert_ne!(a, b, "{backend}: split");
            assert!(
                a == merged || b == merged,
                "{backend}: one part keeps the id"
            );
            let fresh = if a == merged { b } else { a };
            assert!(
                !issued_in_september.contains(&fresh) && fresh != merged,
                "{backend}: a split never reuses an id ({fresh})"
            );
            assert_eq!(id_of(&split, "siao", "kb"), karim_id, "{backend}: id kept");
            assert_eq!(
                events(store, "2026-10").await.get("person_split"),
                Some(&1),
                "{backend}: the split is recorded in October"
            );
        },
    );
}

#[test]
fn a_full_run_drops_the_links_of_records_no_longer_stored_and_keeps_the_others() {
    on_every_backend(
        &["siao", "ccas"],
        async |store, deriver, params, backend| {
            let mut september = background();
            september.push(typed("siao", "gone", "Lefort", "Paul", "02/02/1971"));
            ingest(store, deriver, "2026-09", &september).await;
            process(store, params, None, true, "test", 1).await.unwrap();
            let before = ids(store).await;
            assert!(before.contains_key(&("siao".to_string(), "gone".to_string())));
            // The SIAO resubmits September without that record: the batch is replaced.
            ingest(store, deriver, "2026-09", &background()).await;
            process(store, params, None, true, "test", 2).await.unwrap();
            let after = ids(store).await;
            assert!(
                !after.contains_key(&("siao".to_string(), "gone".to_string())),
                "{backend}: the record's link went with it"
            );
            assert_eq!(after.len(), before.len() - 1, "{backend}");
            assert!(
                after.iter().all(|(k, id)| before[k] == *id),
                "{backend}: the other ids are unchanged"
            );
        },
    );
}

/// The node table as comparable lines (keys sorted), against the nodes a full run builds from
/// the monthly rows; and the integrity counts, node rows included.
async fn assert_nodes_in_step(store: &Store, backend: &str, when: &str) {
    let lines = |nodes: Vec<synchro_hub::linkage::Node>| {
        let mut lines: Vec<String> = nodes
            .into_iter()
            .map(|mut n| {
                n.keys.sort_unstable();
                synchro_hub::linkage::node_line(&n)
            })
            .collect();
        lines.sort();
        lines
    };
    let stored = lines(store.stored_nodes().await.unwrap());
    let latest = store.latest_period().await.unwrap().unwrap();
    let rebuilt = lines(store.linkage_nodes(&latest).await.unwrap());
    assert_eq!(
        stored.len(),
        rebuilt.len(),
        "{backend}, {when}: one node per record"
    );
    assert!(
        stored == rebuilt,
        "{backend}, {when}: nodes as a full run merges them"
    );
    assert_eq!(
        store.integrity().await.unwrap(),
        (0, 0, 0),
        "{backend}, {when}: node values in step with the stored keys"
    );
}

#[test]
fn the_node_table_follows_new_replaced_late_and_purged_months_on_every_backend() {
    on_every_backend(
        &["siao", "ccas"],
        async |store, deriver, _params, backend| {
            let mut august = vec![typed("ccas", "old", "Roux", "Anne", "03/04/1962")];
            august.push(typed("ccas", "bg0", "Lefort", "Paul", "02/02/1971"));
            let september = background();
            ingest(store, deriver, "2026-09", &september).await;
            assert_nodes_in_step(store, backend, "first month").await;
            // October: most records again, one with its first name spelt otherwise (new
            // values on top of September's), one newcomer.
            let mut october: Vec<Typed> = september.iter().take(300).cloned().collect();
            october[1].3 = format!("{}e", october[1].3);
            october.push(typed("siao", "new", "Benali", "Karim", "12/05/1990"));
            ingest(store, deriver, "2026-10", &october).await;
            assert_nodes_in_step(store, backend, "next month").await;
            // The SIAO resubmits October without the newcomer and with the usual spelling.
            let corrected: Vec<Typed> = september.iter().take(299).cloned().collect();
            ingest(store, deriver, "2026-10", &corrected).await;
            assert_nodes_in_step(store, backend, "replaced month").await;
            // The CCAS sends August late, with a record also seen in September (its attributes
            // come first now) and one seen in August only.
            ingest(store, deriver, "2026-08", &august).await;
            assert_nodes_in_step(store, backend, "month out of order").await;
            // Retention removes the records last seen in August.
            let purged = store.purge("2026-09-01", 0, 1).await.unwrap();
            assert_eq!(purged.records, 1, "{backend}: the August-only record");
            assert_nodes_in_step(store, backend, "purge").await;
        },
    );
}

/// Audit leaves of linkage runs by `actor`.
async fn runs_by(store: &Store, actor: &str) -> usize {
    store
        .audit_leaves()
        .await
        .unwrap()
        .iter()
        .filter_map(|(_, l)| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["action"] == "linkage_processed" && l["actor"] == actor)
        .count()
}

/// Operators uploading at once: each accepted batch waits for a linkage run that covers it,
/// but batches accepted while a run is under way share the next one, so the hub links twice
/// for five batches instead of five times (a run reads the whole month).
#[test]
fn batches_accepted_during_a_run_share_the_next_run_on_every_backend() {
    let t = Territory::new();
    let deriver = MatchKeyDeriver::new(&LinkageSecret::generate(1));
    for db in test_databases(t.dir.path()) {
        let hub_dir = t.path(&format!("hub-{}", db.backend));
        let hub_files = synchro_tests::HubProcess::init(&hub_dir, &db);
        block_on(async {
            let hub = synchro_hub::command::open(&hub_files.config).await.unwrap();
            enrol(&hub.store, &["siao", "ccas", "maraude"]).await;
            ingest(&hub.store, &deriver, "2026-09", &background()).await;
            let (a, b, c, d, e) = tokio::join!(
                hub.process_after_ingest("upload-a"),
                hub.process_after_ingest("upload-b"),
                hub.process_after_ingest("upload-c"),
                hub.process_after_ingest("upload-d"),
                hub.process_after_ingest("upload-e"),
            );
            let mut runs = 0;
            for (actor, reply) in ["a", "b", "c", "d", "e"].iter().zip([a, b, c, d, e]) {
                let summary = reply
                    .expect("process_after_ingest is on by default")
                    .unwrap_or_else(|e| panic!("{}: {e}", db.backend));
                assert_eq!(summary.records, background().len(), "{}", db.backend);
                runs += runs_by(&hub.store, &format!("upload-{actor}")).await;
            }
            assert_eq!(runs, 2, "{}: linkage runs for five batches", db.backend);
            // A run asked for explicitly always runs.
            hub.process(None, false, "admin").await.unwrap();
            assert_eq!(runs_by(&hub.store, "admin").await, 1, "{}", db.backend);
            hub.store.close().await;
        });
    }
}

/// Autovacuum may sample a table while an ingestion is still uncommitted; it then writes zero
/// rows for a table that holds a month of records, and PostgreSQL, planning on that, joins
/// every record with every other (the kill-the-hub test's integrity check went from 3 s to
/// over a minute). A linkage run refreshes the statistics before its reads, so the run and
/// everything after it plan on the true sizes.
#[test]
fn a_linkage_run_replaces_statistics_sampled_during_an_ingestion() {
    let t = Territory::new();
    let deriver = MatchKeyDeriver::new(&LinkageSecret::generate(1));
    for db in test_databases(t.dir.path()) {
        let backend = db.backend;
        block_on(async {
            let store = connect(&db).await;
            enrol(&store, &["siao", "ccas"]).await;
            ingest(&store, &deriver, "2026-09", &background()).await;
            // What such a sample leaves in the catalogue (SQLite keeps no statistics).
            let tables = "('records', 'match_keys', 'nodes', 'node_keys')";
            let sampled_mid_ingestion = db
                .execute_as_admin(&format!(
                    "UPDATE pg_class SET reltuples = 0 WHERE relname IN {tables}"
                ))
                .await;
            // Fails, naming the table, unless every estimate is the table's row count
            // (ANALYZE reads tables this small whole, so its count is exact).
            let estimates_are_true = format!(
                "DO $$ DECLARE t text; estimate real; actual bigint; BEGIN \
                 FOR t IN SELECT unnest(ARRAY{}) LOOP \
                 SELECT reltuples INTO estimate FROM pg_class WHERE relname = t; \
                 EXECUTE format('SELECT COUNT(*) FROM %I', t) INTO actual; \
                 IF estimate <> actual THEN RAISE EXCEPTION '% estimated at % rows, holds %', t, estimate, actual; END IF; \
                 END LOOP; END $$",
                tables.replace('(', "[").replace(')', "]")
            );
            if let Some(set) = sampled_mid_ingestion {
                set.unwrap();
                let before = db.execute_as_admin(&estimates_are_true).await.unwrap();
                assert!(before.is_err(), "{backend}: the sample is in place");
            }
            process(&store, &LinkParams::default(), None, false, "test", 1)
                .await
                .unwrap();
            if let Some(after) = db.execute_as_admin(&estimates_are_true).await {
                assert_eq!(after, Ok(()), "{backend}: a run plans on true sizes");
            }
            store.close().await;
        });
    }
}
