//! Monthly processing: link every stored record, carry person and household ids over from the
//! previous run, record merges and splits, and keep a summary for `linkage report`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::linkage::{
    fresh_value_counts, link_detailed, link_step, step_partners, value_bits, LinkParams, Linked,
    Model, Node, Step, ValueCounts,
};
use crate::persons::{assign_ids, household_clusters, IdAssignment};
use crate::store::{LinkageRun, RecordLink, Store, StoreError, StoredEvent};

/// Width of a bin of the score distribution, in log2 units.
pub const SCORE_BIN: f64 = 2.0;
/// Lowest and highest bins (weights beyond are counted in the end bins).
pub const SCORE_RANGE: (f64, f64) = (-30.0, 40.0);

/// What one run found, stored as JSON and shown by `linkage report`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSummary {
    /// Month processed.
    pub period: String,
    /// Records linked (one per operator and record reference, months merged).
    pub records: usize,
    /// Distinct persons.
    pub persons: usize,
    /// Distinct households.
    pub households: usize,
    /// Candidate pairs compared.
    pub candidate_pairs: usize,
    /// Pairs above the threshold that were merged.
    pub links_merged: usize,
    /// Pairs above the threshold that a veto (sex, size, birth years) kept apart.
    pub links_vetoed: usize,
    /// Expected share of false matches among merged pairs, from their match weights.
    pub estimated_false_match_share: f64,
    /// Candidate pairs per score bin: (lower bound, count).
    pub score_distribution: Vec<(f64, usize)>,
    /// Persons per number of records.
    pub cluster_sizes: BTreeMap<usize, usize>,
    /// Persons per number of operators that know them.
    pub persons_by_operators: BTreeMap<usize, usize>,
    /// Person ids issued, merged away, split off, and retired in this run.
    pub person_changes: Changes,
    /// The same for households.
    pub household_changes: Changes,
    /// Seconds spent loading records and keys from the database.
    #[serde(default)]
    pub load_seconds: f64,
    /// Seconds spent linking (loading excluded).
    pub link_seconds: f64,
    /// Seconds for the whole run.
    pub total_seconds: f64,
    /// Estimated prior probability that a candidate pair is a match.
    pub model_match_share: f64,
    /// The parameters used.
    pub params: LinkParams,
    /// `full` (every stored record linked) or `incremental` (the batches received since the
    /// last run and the records they touch, earlier decisions kept).
    #[serde(default)]
    pub mode: String,
    /// Records this run read and linked (all of them in a full run).
    #[serde(default)]
    pub records_linked: usize,
    /// The batches linked, as `id:purged_count` (see `Store::linked_batches`).
    #[serde(default)]
    pub batches: Vec<String>,
    /// The model that weighed the pairs: estimated on every record by a full run, reused by
    /// the incremental runs after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<Model>,
    /// Records the full run that estimated `model` linked.
    #[serde(default)]
    pub model_records: usize,
}

/// Id changes of one kind in one run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Changes {
    /// Ids issued.
    pub created: usize,
    /// Merge events.
    pub merges: usize,
    /// Split events.
    pub splits: usize,
    /// Ids that hold no record any more.
    pub retired: usize,
}

impl Changes {
    fn of(a: &IdAssignment) -> Self {
        use crate::persons::EventKind;
        Changes {
            created: a.created.len(),
            merges: a
                .events
                .iter()
                .filter(|e| e.kind == EventKind::Merge)
                .count(),
            splits: a
                .events
                .iter()
                .filter(|e| e.kind == EventKind::Split)
                .count(),
            retired: a.retired.len(),
        }
    }
}

/// Why processing could not run.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Nothing is stored yet.
    #[error("no records are stored yet: ingest a batch first")]
    Empty,
    /// Later months are stored: ids are carried from run to run, so runs go forward only.
    #[error("records of {latest} are stored: process the latest month ({latest}), which links every month up to it")]
    NotLatest {
        /// The latest month stored.
        latest: String,
    },
    /// No stored record has this reference.
    #[error("no stored record has the reference {0:?}; references are per operator, as in the agent's table (local_id,record_ref)")]
    UnknownRecord(String),
    /// The linking task failed.
    #[error("the linkage task failed: {0}")]
    Task(String),
}

/// Candidate pairs a model must have been fitted on for incremental runs to reuse it (and at
/// least one per fresh record): a model estimated on the first batches alone has seen too few
/// agreements to weigh the next ones, so those runs are full.
const MIN_MODEL_PAIRS: usize = 100;

/// Growth of the stored records since the model was fitted beyond which a run is full again.
const REFIT_GROWTH: f64 = 1.25;

/// What an incremental run links and weighs with.
struct StepInput {
    /// The nodes read (see [`increment_nodes`]).
    read: crate::store::Increment,
    /// The last full run's model.
    model: Model,
    /// Holders of the fresh records' values across every stored record.
    counts: ValueCounts,
    /// Records the run that fitted `model` linked.
    model_records: usize,
    /// The territory's figures after the last run.
    figures: Figures,
}

/// What an incremental run links, read in two steps so that the history read follows the new
/// batches: (1) their records and every record sharing a blocking value with them, weighed
/// with the last full run's model; (2) the whole persons and households of the fresh records
/// and of those that score above the threshold with one. Returns the nodes of (2) and the
/// counts of the fresh records' values across every stored record.
async fn increment_nodes(
    store: &Store,
    fresh_batches: &[String],
    last: RunSummary,
    params: &LinkParams,
) -> Result<Option<StepInput>, ProcessError> {
    let figures = Figures::of_summary(&last);
    let Some(model) = last.model else {
        return Ok(None);
    };
    let started = Instant::now();
    let fresh = store.fresh_records(fresh_batches).await?;
    if model.pairs < MIN_MODEL_PAIRS.max(fresh.records.len()) {
        return Ok(None);
    }
    let (read, common) = store
        .sharing_nodes(fresh_batches, params.max_block as i64, &fresh.records)
        .await?;
    let sharing_seconds = started.elapsed().as_secs_f64();
    let common: rustc_hash::FxHashMap<u128, u32> = common
        .iter()
        .map(|(value, rows)| (value_bits(value), *rows as u32))
        .collect();
    let (model_task, params_task) = (model.clone(), params.clone());
    let (read, partners, counts) = tokio::task::spawn_blocking(move || {
        let counts = fresh_value_counts(&read.nodes, &read.fresh, &common);
        let partners = step_partners(&read.nodes, &read.fresh, &model_task, &counts, &params_task);
        (read, partners, counts)
    })
    .await
    .map_err(|e| ProcessError::Task(e.to_string()))?;
    let read_first = read.nodes.len();
    let mut refs: std::collections::BTreeSet<(String, String)> = read
        .nodes
        .into_iter()
        .zip(partners)
        .filter(|(_, partner)| *partner)
        .map(|(n, _)| (n.operator, n.record_ref))
        .collect();
    let partners_seconds = started.elapsed().as_secs_f64();
    let previous = store.whole_persons(&mut refs, &fresh.households).await?;
    let persons_seconds = started.elapsed().as_secs_f64();
    let read = store.step_nodes(&refs, &fresh.records, &previous).await?;
    tracing::info!(
        "incremental read: {} fresh records; step 1 read {} records in {sharing_seconds:.3} s, weighed in {:.3} s; step 2 found {} records in {:.3} s, read in {:.3} s",
        fresh.records.len(),
        read_first,
        partners_seconds - sharing_seconds,
        refs.len(),
        persons_seconds - partners_seconds,
        started.elapsed().as_secs_f64() - persons_seconds,
    );
    Ok(Some(StepInput {
        read,
        model,
        counts,
        model_records: last.model_records,
        figures,
    }))
}

/// Links the records stored up to `period` (default: the latest month stored), assigns stable
/// ids and stores the run. Returns its summary.
///
/// When every batch the last run linked is still stored unchanged (nothing replaced or purged
/// since) and the month is not older than the last run's, the run is incremental: only the
/// batches received since and the records they touch are read and linked, the last run's
/// decisions stand, so the cost follows what arrived, not the history. Otherwise (or with
/// `full`) every stored record is linked again.
pub async fn process(
    store: &Store,
    params: &LinkParams,
    period: Option<&str>,
    full: bool,
    actor: &str,
    now: i64,
) -> Result<RunSummary, ProcessError> {
    let started = Instant::now();
    store.refresh_planner_statistics().await?;
    let latest = store.latest_period().await?.ok_or(ProcessError::Empty)?;
    let period = match period {
        Some(p) if p < latest.as_str() => return Err(ProcessError::NotLatest { latest }),
        Some(p) => p.to_string(),
        None => latest,
    };
    let batches = store.linked_batches(&period).await?;
    // The last run, when this one can build on it: every batch it linked still stored
    // unchanged, a model to reuse, and a territory not grown well beyond what that model was
    // fitted on (full runs, which fit it again, then come at geometric intervals, so their
    // cost per record received stays bounded).
    let base: Option<RunSummary> = match store.last_linkage_run().await? {
        Some((last_period, summary)) if !full && last_period <= period => {
            serde_json::from_str::<RunSummary>(&summary)
                .ok()
                .filter(|l| !l.batches.is_empty() && l.model.is_some())
                .filter(|l| l.batches.iter().all(|b| batches.binary_search(b).is_ok()))
                .filter(|l| l.records as f64 <= l.model_records as f64 * REFIT_GROWTH)
        }
        _ => None,
    };
    let step_input = match base {
        Some(last) => {
            let fresh_batches: Vec<String> = batches
                .iter()
                .filter(|b| last.batches.binary_search(b).is_err())
                .map(|b| b.split(':').next().unwrap_or_default().to_string())
                .collect();
            // Nothing new since the last run: a deliberate re-run links everything again.
            match fresh_batches.is_empty() {
                true => None,
                false => increment_nodes(store, &fresh_batches, last, params).await?,
            }
        }
        None => None,
    };
    let step = step_input.is_some();
    let model_records = step_input.as_ref().map(|s| s.model_records);
    let last_figures = step_input.as_ref().map(|s| s.figures.clone());
    let (nodes, fresh, before, removed, step_model) = if let Some(s) = step_input {
        (
            s.read.nodes,
            Some(s.read.fresh),
            s.read.previous,
            Vec::new(),
            Some((s.model, s.counts)),
        )
    } else {
        let nodes = store.linkage_nodes(&period).await?;
        let mut previous = store.record_ids().await?;
        let before = nodes
            .iter()
            .map(|n| previous.remove(&(n.operator.clone(), n.record_ref.clone())))
            .collect();
        // Linked before, no longer stored (purged): their links go.
        let removed: Vec<(String, String)> = previous.into_keys().collect();
        (nodes, None, before, removed, None)
    };
    let load_seconds = started.elapsed().as_secs_f64();
    let link_start = Instant::now();
    let task_params = params.clone();
    let seeds: Vec<Option<i64>> = before.iter().map(|b| b.map(|b| b.0)).collect();
    let (nodes, linked) = tokio::task::spawn_blocking(move || {
        let linked = match (&fresh, &step_model) {
            (Some(fresh), Some((model, counts))) => {
                let step = Step {
                    fresh,
                    seeds: &seeds,
                    model,
                    counts,
                };
                link_step(&nodes, &step, &task_params)
            }
            _ => link_detailed(&nodes, &task_params),
        };
        (nodes, linked)
    })
    .await
    .map_err(|e| ProcessError::Task(e.to_string()))?;
    let link_seconds = link_start.elapsed().as_secs_f64();

    // An incremental run decides only for the persons it read: only their ids can change.
    let live_in = |kind: usize| -> Vec<i64> {
        let mut ids: Vec<i64> = before
            .iter()
            .flatten()
            .map(|b| if kind == 0 { b.0 } else { b.1 })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    let (live_persons, mut next_person) = if step {
        (live_in(0), store.next_linkage_id("person").await?)
    } else {
        store.live_ids("person").await?
    };
    let persons = assign_ids(
        &linked.person,
        &before.iter().map(|b| b.map(|b| b.0)).collect::<Vec<_>>(),
        &live_persons,
        &mut next_person,
    );
    let household_keys: Vec<Option<(&str, &str)>> = nodes
        .iter()
        .map(|n| n.household_ref.as_deref().map(|h| (n.operator.as_str(), h)))
        .collect();
    let (live_households, mut next_household) = if step {
        (live_in(1), store.next_linkage_id("household").await?)
    } else {
        store.live_ids("household").await?
    };
    let households = assign_ids(
        &household_clusters(&linked.person, &household_keys),
        &before.iter().map(|b| b.map(|b| b.1)).collect::<Vec<_>>(),
        &live_households,
        &mut next_household,
    );

    let mut summary = summarise(&period, &nodes, &linked, &persons, &households, params);
    summary.link_seconds = link_seconds;
    summary.load_seconds = load_seconds;
    summary.mode = if step { "incremental" } else { "full" }.to_string();
    if let Some(last) = last_figures {
        let read_before = Figures::of(
            nodes
                .iter()
                .zip(&before)
                .filter_map(|(n, b)| b.map(|(p, h)| (p, h, n.operator.as_str()))),
        );
        let territory = last.replace(&read_before, &Figures::of_summary(&summary));
        summary.records = territory.records;
        summary.persons = territory.persons;
        summary.households = territory.households;
        summary.cluster_sizes = territory.cluster_sizes;
        summary.persons_by_operators = territory.persons_by_operators;
    }
    summary.batches = batches;
    let events: Vec<StoredEvent> = [("person", &persons), ("household", &households)]
        .iter()
        .flat_map(|(kind, a)| {
            a.events.iter().map(move |e| StoredEvent {
                kind: format!("{kind}_{}", e.kind.code()),
                id: e.id,
                other_id: e.other_id,
                records: e.records as i64,
            })
        })
        .collect();
    // Only links that changed are written: ids are stable, so a run rewrites a few rows.
    let links: Vec<RecordLink> = nodes
        .iter()
        .enumerate()
        .filter(|&(i, _)| before[i] != Some((persons.ids[i], households.ids[i])))
        .map(|(i, n)| RecordLink {
            operator_id: n.operator.clone(),
            record_ref: n.record_ref.clone(),
            person_id: persons.ids[i],
            household_id: households.ids[i],
        })
        .collect();
    let audit = serde_json::json!({
        "period": period,
        "mode": summary.mode,
        "records_linked": summary.records_linked,
        "person_changes": summary.person_changes,
        "household_changes": summary.household_changes,
    });
    let run = LinkageRun {
        period: period.clone(),
        run_at: now,
        actor: actor.to_string(),
        links,
        removed,
        created: vec![
            ("person", persons.created),
            ("household", households.created),
        ],
        retired: vec![
            ("person", persons.retired),
            ("household", households.retired),
        ],
        events,
        audit,
    };
    summary.total_seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        "linkage run: read in {load_seconds:.3} s, linked in {link_seconds:.3} s, ids and summary by {:.3} s",
        summary.total_seconds
    );
    summary.model_records = model_records.unwrap_or(summary.records);
    store
        .save_linkage_run(&run, &serde_json::to_string(&summary).unwrap_or_default())
        .await?;
    tracing::info!(
        "linkage run: saved by {:.3} s",
        started.elapsed().as_secs_f64()
    );
    Ok(summary)
}

/// Territory-wide figures of a set of links: records, persons, households, persons by number
/// of records and by number of operators.
#[derive(Debug, Default, Clone, PartialEq)]
struct Figures {
    records: usize,
    persons: usize,
    households: usize,
    cluster_sizes: BTreeMap<usize, usize>,
    persons_by_operators: BTreeMap<usize, usize>,
}

impl Figures {
    /// The figures of (person id, household id, operator) links.
    fn of<'a>(links: impl Iterator<Item = (i64, i64, &'a str)>) -> Figures {
        let mut records_of: HashMap<i64, usize> = HashMap::new();
        let mut operators_of: HashMap<i64, HashSet<&str>> = HashMap::new();
        let mut households = HashSet::new();
        let mut records = 0;
        for (person, household, operator) in links {
            records += 1;
            *records_of.entry(person).or_default() += 1;
            operators_of.entry(person).or_default().insert(operator);
            households.insert(household);
        }
        let mut figures = Figures {
            records,
            persons: records_of.len(),
            households: households.len(),
            ..Default::default()
        };
        for n in records_of.values() {
            *figures.cluster_sizes.entry(*n).or_default() += 1;
        }
        for ops in operators_of.values() {
            *figures.persons_by_operators.entry(ops.len()).or_default() += 1;
        }
        figures
    }

    /// The figures of a summary.
    fn of_summary(s: &RunSummary) -> Figures {
        Figures {
            records: s.records,
            persons: s.persons,
            households: s.households,
            cluster_sizes: s.cluster_sizes.clone(),
            persons_by_operators: s.persons_by_operators.clone(),
        }
    }

    /// These figures with the links of `before` replaced by those of `after`: an incremental
    /// run reads whole persons and households, so the territory's figures change by the
    /// difference between what it read and what it decided, without reading the rest.
    fn replace(mut self, before: &Figures, after: &Figures) -> Figures {
        let sub = |total: usize, part: usize| total.saturating_sub(part);
        self.records = sub(self.records, before.records) + after.records;
        self.persons = sub(self.persons, before.persons) + after.persons;
        self.households = sub(self.households, before.households) + after.households;
        for (total, (b, a)) in [
            (
                &mut self.cluster_sizes,
                (&before.cluster_sizes, &after.cluster_sizes),
            ),
            (
                &mut self.persons_by_operators,
                (&before.persons_by_operators, &after.persons_by_operators),
            ),
        ] {
            for (k, n) in b {
                let entry = total.entry(*k).or_default();
                *entry = sub(*entry, *n);
            }
            for (k, n) in a {
                *total.entry(*k).or_default() += n;
            }
            total.retain(|_, n| *n > 0);
        }
        self
    }
}

fn summarise(
    period: &str,
    nodes: &[Node],
    linked: &Linked,
    persons: &IdAssignment,
    households: &IdAssignment,
    params: &LinkParams,
) -> RunSummary {
    let bins = ((SCORE_RANGE.1 - SCORE_RANGE.0) / SCORE_BIN) as usize;
    let mut distribution: Vec<(f64, usize)> = (0..bins)
        .map(|b| (SCORE_RANGE.0 + b as f64 * SCORE_BIN, 0))
        .collect();
    for w in &linked.weights {
        let b = ((w - SCORE_RANGE.0) / SCORE_BIN)
            .floor()
            .clamp(0.0, (bins - 1) as f64);
        distribution[b as usize].1 += 1;
    }
    let merged: Vec<f64> = linked
        .links
        .iter()
        .filter(|l| l.3.is_none())
        .map(|l| l.2)
        .collect();
    // A weight is log2 posterior odds: the pair is false with probability 1 / (1 + 2^w).
    let false_share = if merged.is_empty() {
        0.0
    } else {
        merged.iter().map(|w| 1.0 / (1.0 + w.exp2())).sum::<f64>() / merged.len() as f64
    };
    let figures = Figures::of(
        nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (persons.ids[i], households.ids[i], n.operator.as_str())),
    );
    RunSummary {
        period: period.to_string(),
        records: figures.records,
        records_linked: nodes.len(),
        mode: String::new(),
        batches: Vec::new(),
        persons: figures.persons,
        households: figures.households,
        candidate_pairs: linked.weights.len(),
        links_merged: merged.len(),
        links_vetoed: linked.links.len() - merged.len(),
        estimated_false_match_share: false_share,
        score_distribution: distribution,
        cluster_sizes: figures.cluster_sizes,
        persons_by_operators: figures.persons_by_operators,
        person_changes: Changes::of(persons),
        household_changes: Changes::of(households),
        load_seconds: 0.0,
        link_seconds: 0.0,
        total_seconds: 0.0,
        model_match_share: linked.model.lambda,
        model: Some(linked.model.clone()),
        model_records: 0,
        params: params.clone(),
    }
}

/// How a hidden count is printed: one marker for every hidden cell, so a reader cannot tell a
/// small count from one hidden to protect it.
pub const HIDDEN: &str = "hidden";

/// Counts from 1 to below the small-cell threshold are hidden.
fn is_small(count: usize) -> bool {
    count > 0 && count < crate::web::SMALL_CELL_THRESHOLD as usize
}

/// A person count as shown on its own: small counts are hidden.
pub fn protected(count: usize) -> String {
    if is_small(count) {
        HIDDEN.into()
    } else {
        count.to_string()
    }
}

/// Writes "persons by number of {what}" as a table whose cells pass [`protected_distribution`].
fn write_distribution(out: &mut String, what: &str, persons_by: &BTreeMap<usize, usize>) {
    use std::fmt::Write as _;
    let _ = writeln!(
        out,
        "\n## Persons by number of {what}\n\n| {what} | persons |\n|---:|---:|"
    );
    let counts: Vec<usize> = persons_by.values().copied().collect();
    for (n, shown) in persons_by.keys().zip(protected_distribution(&counts)) {
        let _ = writeln!(out, "| {n} | {shown} |");
    }
}

/// The cells of a distribution whose total is printed too. Small cells are hidden, then the
/// smallest other non-zero cells (ties by position) until at least two cells are hidden and
/// together hold at least the threshold: the total then tells neither a hidden cell's value
/// nor that it is below the threshold.
pub fn protected_distribution(counts: &[usize]) -> Vec<String> {
    let threshold = crate::web::SMALL_CELL_THRESHOLD as usize;
    let mut hidden: Vec<bool> = counts.iter().map(|&c| is_small(c)).collect();
    if hidden.contains(&true) {
        let mut candidates: Vec<usize> = (0..counts.len())
            .filter(|&i| !hidden[i] && counts[i] > 0)
            .collect();
        candidates.sort_by_key(|&i| (counts[i], i));
        let mut candidates = candidates.into_iter();
        loop {
            let (cells, sum) = (0..counts.len())
                .filter(|&i| hidden[i])
                .fold((0, 0), |(n, s), i| (n + 1, s + counts[i]));
            if cells >= 2 && sum >= threshold {
                break;
            }
            match candidates.next() {
                Some(i) => hidden[i] = true,
                None => break,
            }
        }
    }
    counts
        .iter()
        .zip(hidden)
        .map(|(c, h)| if h { HIDDEN.into() } else { c.to_string() })
        .collect()
}

/// `linkage report`: the run of a month, compared with the latest run of an earlier month.
/// Person counts pass small-cell protection; pair counts are not counts of people.
pub fn render_report(
    current: &RunSummary,
    previous: Option<&RunSummary>,
    events: &[StoredEvent],
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "# Linkage report, {}\n", current.period);
    let prev_label = previous
        .map(|p| p.period.clone())
        .unwrap_or_else(|| "no earlier run".into());
    let _ = writeln!(
        out,
        "| | {} | {prev_label} |\n|---|---:|---:|",
        current.period
    );
    type Cell = fn(&RunSummary) -> String;
    let rows: [(&str, Cell); 11] = [
        ("run", |r| {
            if r.mode.is_empty() {
                "full".into()
            } else {
                r.mode.clone()
            }
        }),
        // Summaries written before incremental runs existed read every record.
        ("records read by the run", |r| {
            match r.records_linked {
                0 => r.records,
                n => n,
            }
            .to_string()
        }),
        ("records linked", |r| r.records.to_string()),
        ("persons", |r| protected(r.persons)),
        ("households", |r| protected(r.households)),
        ("candidate pairs compared", |r| {
            r.candidate_pairs.to_string()
        }),
        ("pairs merged", |r| r.links_merged.to_string()),
        ("pairs above threshold kept apart by a veto", |r| {
            r.links_vetoed.to_string()
        }),
        ("estimated share of false matches among merged pairs", |r| {
            format!("{:.2} %", r.estimated_false_match_share * 100.0)
        }),
        ("estimated match share of candidate pairs (EM)", |r| {
            format!("{:.3}", r.model_match_share)
        }),
        ("linking time", |r| format!("{:.2} s", r.link_seconds)),
    ];
    for (label, cell) in rows {
        let before = previous.map(cell).unwrap_or_else(|| "-".into());
        let _ = writeln!(out, "| {label} | {} | {before} |", cell(current));
    }
    let _ = writeln!(
        out,
        "\n## Revisions in {}\n\nLatest run: person ids {} new, {} merges, {} splits, {} retired; household ids {} new, {} merges, {} splits, {} retired. Every merge and split found by this month's runs (one after each accepted batch):",
        current.period,
        current.person_changes.created,
        current.person_changes.merges,
        current.person_changes.splits,
        current.person_changes.retired,
        current.household_changes.created,
        current.household_changes.merges,
        current.household_changes.splits,
        current.household_changes.retired,
    );
    if !events.is_empty() {
        let _ = writeln!(
            out,
            "\n| event | id now | earlier id | records |\n|---|---:|---:|---:|"
        );
        for e in events.iter().take(50) {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                e.kind, e.id, e.other_id, e.records
            );
        }
        if events.len() > 50 {
            let _ = writeln!(out, "\n({} more events not shown)", events.len() - 50);
        }
    }
    write_distribution(&mut out, "operators", &current.persons_by_operators);
    write_distribution(&mut out, "records", &current.cluster_sizes);
    let _ = writeln!(
        out,
        "\n## Score distribution (log2 match weight of candidate pairs; threshold {:+.1}, {:+.1} for contradictions)\n",
        current.params.threshold,
        current.params.contradiction_floor()
    );
    let peak = current
        .score_distribution
        .iter()
        .map(|b| b.1)
        .max()
        .unwrap_or(0)
        .max(1);
    for (lower, count) in current.score_distribution.iter().filter(|b| b.1 > 0) {
        let bar = "#".repeat((count * 50).div_ceil(peak));
        let _ = writeln!(
            out,
            "{:>+6.0} .. {:>+4.0} {:>9} {bar}",
            lower,
            lower + SCORE_BIN,
            count
        );
    }
    out
}

/// `linkage explain`: the person of a record, the records linked with it and the candidates
/// kept apart, with the keys that agreed and the weight of each term. Shows no identity: the
/// hub has none.
pub async fn explain(
    store: &Store,
    params: &LinkParams,
    record_ref: &str,
) -> Result<String, ProcessError> {
    use std::fmt::Write as _;
    let latest = store.latest_period().await?.ok_or(ProcessError::Empty)?;
    let nodes = store.linkage_nodes(&latest).await?;
    let targets: Vec<usize> = (0..nodes.len())
        .filter(|&i| nodes[i].record_ref == record_ref)
        .collect();
    if targets.is_empty() {
        return Err(ProcessError::UnknownRecord(record_ref.to_string()));
    }
    let links = store.record_ids().await?;
    let ids_of = |n: &Node| {
        links
            .get(&(n.operator.clone(), n.record_ref.clone()))
            .copied()
    };
    let task_params = params.clone();
    let (nodes, model, candidates) = tokio::task::spawn_blocking(move || {
        let linked = link_detailed(&nodes, &task_params);
        let candidates: Vec<Vec<(usize, crate::linkage::Comparison)>> = targets
            .iter()
            .map(|&i| crate::linkage::candidates_of(&nodes, i, &task_params))
            .collect();
        // Links tried without a shared blocking key: the household context's.
        let context: Vec<Vec<(usize, f64, bool)>> = targets
            .iter()
            .zip(&candidates)
            .map(|(&i, cands)| {
                linked
                    .links
                    .iter()
                    .filter_map(|&(a, b, w, veto)| {
                        let other = match (a as usize, b as usize) {
                            (a, b) if a == i => b,
                            (a, b) if b == i => a,
                            _ => return None,
                        };
                        (!cands.iter().any(|c| c.0 == other)).then_some((other, w, veto.is_none()))
                    })
                    .collect()
            })
            .collect();
        (nodes, linked.model, (targets, candidates, context))
    })
    .await
    .map_err(|e| ProcessError::Task(e.to_string()))?;
    let (targets, candidates, context) = candidates;
    let mut out = String::new();
    for ((&i, cands), context) in targets.iter().zip(&candidates).zip(&context) {
        let n = &nodes[i];
        let ids = ids_of(n);
        let _ = writeln!(
            out,
            "# Record {} of {}\n\nperson {}, household {} (last processing run); birth year {}, sex {}\n",
            n.record_ref,
            n.operator,
            ids.map(|x| x.0.to_string()).unwrap_or_else(|| "not processed yet".into()),
            ids.map(|x| x.1.to_string()).unwrap_or_else(|| "-".into()),
            n.birth_year.map(|y| y.to_string()).unwrap_or_else(|| "unknown".into()),
            n.sex.map(String::from).unwrap_or_else(|| "unknown".into()),
        );
        let members: Vec<usize> = (0..nodes.len())
            .filter(|&j| {
                j != i && ids.is_some() && ids_of(&nodes[j]).map(|x| x.0) == ids.map(|x| x.0)
            })
            .collect();
        let _ = writeln!(out, "Linked with {} other record(s):", members.len());
        for &j in &members {
            let _ = writeln!(out, "- {} {}", nodes[j].operator, nodes[j].record_ref);
        }
        let mut scored: Vec<(usize, f64, &crate::linkage::Comparison)> = cands
            .iter()
            .map(|(j, c)| (*j, model.weight(c, params), c))
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        let _ = writeln!(
            out,
            "\n{} candidate record(s) share a blocking key; the strongest 10, and every linked one (weights from an estimate on the records stored now, threshold {:+.1}, {:+.1} for contradictions):",
            scored.len(),
            params.threshold,
            params.contradiction_floor()
        );
        for (rank, (j, w, c)) in scored.iter().enumerate() {
            let linked = members.contains(j);
            if rank >= 10 && !linked {
                continue;
            }
            let m = &nodes[*j];
            let _ = writeln!(
                out,
                "\n## {} {}: weight {:+.1}, {}",
                m.operator,
                m.record_ref,
                w,
                if linked {
                    "same person"
                } else {
                    "another person"
                }
            );
            let agreement = crate::linkage::key_agreement(n, m);
            for (label, want) in [
                ("keys agreeing", crate::linkage::KeyAgreement::Agree),
                ("keys differing", crate::linkage::KeyAgreement::Differ),
                (
                    "keys absent on one side",
                    crate::linkage::KeyAgreement::Absent,
                ),
            ] {
                let list: Vec<&str> = agreement
                    .iter()
                    .filter(|a| a.1 == want)
                    .map(|a| a.0)
                    .collect();
                let _ = writeln!(
                    out,
                    "{label}: {}",
                    if list.is_empty() {
                        "-".into()
                    } else {
                        list.join(", ")
                    }
                );
            }
            for term in model.explain(c, params) {
                let _ = writeln!(out, "  {:+6.1}  {}: {}", term.weight, term.what, term.level);
            }
        }
        if !context.is_empty() {
            let _ = writeln!(
                out,
                "\nThrough the household context (two households already sharing a person; member to member, role to role, even prior odds):"
            );
        }
        for &(j, w, merged) in context {
            let m = &nodes[j];
            let _ = writeln!(
                out,
                "- {} {}: weight {:+.1} with the household prior, {}",
                m.operator,
                m.record_ref,
                w,
                if merged { "linked" } else { "vetoed" }
            );
        }
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_distribution_beside_its_total_hides_enough_cells() {
        let shown = |counts: &[usize]| protected_distribution(counts);
        // Nothing small: everything is printed.
        assert_eq!(shown(&[40, 12, 0]), ["40", "12", "0"]);
        // One small cell alone would be total minus the others: the smallest other goes too.
        assert_eq!(shown(&[500, 30, 3, 0]), ["500", HIDDEN, HIDDEN, "0"]);
        // Two small cells summing below the threshold: a third is hidden.
        assert_eq!(shown(&[500, 20, 2, 3]), ["500", HIDDEN, HIDDEN, HIDDEN]);
        // Two small cells that together reach the threshold are enough.
        assert_eq!(shown(&[500, 20, 6, 7]), ["500", "20", HIDDEN, HIDDEN]);
        assert_eq!(protected(4), HIDDEN);
        assert_eq!(protected(11), "11");
    }
}
