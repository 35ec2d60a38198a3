//! `synchro-hub bench-linkage`: the whole chain on generated data, scored against the truth.
//!
//! Generated exports (two dirtiness levels) → agents (`run --out`) → hub ingestion → linkage →
//! (operator, record reference) → the agents' reference tables → local ids → the generator's
//! truth file. The naive baseline (one key: normalised surname + first name + exact birth date)
//! is scored on the same records in the same run.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use synchro_agent::command::run::{run as agent_run, RunArgs};
use synchro_agent::command::ExportArgs;
use synchro_agent::export::{Export, Row};
use synchro_agent::profile::Profile;
use synchro_shared::batch::Period;
use synchro_shared::normalise::{BirthDate, NormalisedNames};
use synchro_synth::{Config, Dirtiness, Scenario};

use crate::command::{init, InitArgs};
use crate::linkage::{score, PairwiseQuality};

/// Options of `bench-linkage`.
#[derive(Debug, Clone, Args)]
pub struct EvalArgs {
    /// People in the synthetic population
    #[arg(long, default_value_t = 3000)]
    pub persons: usize,
    /// Operators
    #[arg(long, default_value_t = 5)]
    pub operators: usize,
    /// Months
    #[arg(long, default_value_t = 3)]
    pub months: u32,
    /// Random seed
    #[arg(long, default_value_t = 11)]
    pub seed: u64,
    /// Print this many missed and false pairs with their synthetic identities (development aid:
    /// the generated data is fictitious and stays on this machine)
    #[arg(long, default_value_t = 0)]
    pub show_errors: usize,
    /// Write each level's linkage nodes with their true person to DIR/<level>.nodes (development
    /// aid: `cargo run --release -p synchro-hub --example relink` re-links them in seconds)
    #[arg(long)]
    pub dump_nodes: Option<PathBuf>,
    /// Work in DIR and keep it (exports, keys, each level's hub) instead of a temporary folder,
    /// so that `synchro-hub process --full --config DIR/<level>/hub/hub.toml` can be timed again.
    /// DIR also keeps the simulated operators' linkage secret: for generated data only
    #[arg(long)]
    pub keep: Option<PathBuf>,
    /// A `[linkage]` option of hub.toml for the bench's hubs, as KEY=VALUE (repeatable:
    /// `--linkage threshold=-1.5 --linkage max_block=80`); the bench builds its own hubs, so
    /// the global `--config` is not read
    #[arg(long = "linkage", value_name = "KEY=VALUE")]
    pub linkage: Vec<String>,
}

/// The bench hubs' hub.toml with `settings` (KEY=VALUE, each a `[linkage]` option) applied;
/// the hub validates them when it opens, naming the key and the allowed values.
fn with_linkage_settings(config_text: &str, settings: &[String]) -> Result<String> {
    if settings.is_empty() {
        return Ok(config_text.to_string());
    }
    let given = crate::config::linkage_settings(settings.iter().map(String::as_str))
        .context("--linkage")?;
    let mut config: toml::Table =
        toml::from_str(config_text).context("the bench hub's hub.toml")?;
    let linkage = config
        .entry("linkage")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let Some(linkage) = linkage.as_table_mut() else {
        anyhow::bail!("the bench hub's hub.toml has a [linkage] that is not a table");
    };
    linkage.extend(given);
    Ok(toml::to_string(&config)?)
}

struct LevelResult {
    level: &'static str,
    nodes: usize,
    persons: usize,
    linkage: PairwiseQuality,
    /// The ids after processing month by month (incremental runs), scored the same way.
    month_by_month: PairwiseQuality,
    last_step_records: usize,
    last_step_seconds: f64,
    last_step_mode: String,
    /// (runs, seconds, records received) of the full, then of the incremental runs, batch by
    /// batch.
    step_runs: [(usize, f64, usize); 2],
    baseline: PairwiseQuality,
    seconds: f64,
    link_seconds: f64,
    load_seconds: f64,
    rows: i64,
    peak_mib: Option<f64>,
}

/// Resets the process's peak resident memory (Linux), so the next reading covers one step.
pub fn clear_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident memory since the last reset, MiB (Linux; `None` elsewhere).
pub fn peak_memory_mib() -> Option<f64> {
    synchro_agent::command::bench::peak_rss_kib().map(|k| k as f64 / 1024.0)
}

/// The naive key of one export row: compact surname + first token + exact date.
fn naive_key(names: &NormalisedNames, birth: &BirthDate) -> Option<String> {
    let date = birth.exact()?;
    let first = names.first_token()?;
    names
        .has_surname()
        .then(|| format!("{}|{first}|{date}", names.birth.concat()))
}

async fn level(dir: &Path, dirtiness: Dirtiness, eval: &EvalArgs) -> Result<LevelResult> {
    let args = eval;
    let name = match dirtiness {
        Dirtiness::Moderate => "moderate",
        Dirtiness::Very => "very dirty",
    };
    let work = dir.join(name.replace(' ', "-"));
    let scenario = Scenario::generate(Config {
        seed: args.seed,
        persons: args.persons,
        operators: args.operators,
        months: args.months,
        first_period: (2026, 8),
        dirtiness,
    });
    let exports = scenario.write_exports(&work.join("exports"))?;
    scenario.write_truth(&work.join("truth.csv"))?;
    let hub_dir = work.join("hub");
    let created = init(&InitArgs {
        dir: hub_dir.clone(),
        territory: "eval".into(),
        database_url: None,
        database_password_file: None,
        listen: "127.0.0.1:0".into(),
        host: Vec::new(),
    })
    .await?;
    // Processing is driven below: batch by batch incrementally (whatever the default), then
    // once from scratch.
    let config_text = std::fs::read_to_string(&created.config)?;
    let config_text = config_text
        .replace(
            "process_after_ingest = true",
            "process_after_ingest = false",
        )
        .replace("incremental = false", "incremental = true");
    std::fs::write(
        &created.config,
        with_linkage_settings(&config_text, &args.linkage)?,
    )?;
    let hub = crate::command::open(&created.config).await?;
    let linkage_secret = work.join("custodian/linkage.key");
    synchro_keys::linkage::create(&linkage_secret, 1)?;
    // Truth: (operator, local id) → person; baseline key per (operator, local id).
    let mut truth: HashMap<(String, String), String> = HashMap::new();
    let mut rdr = csv::Reader::from_path(work.join("truth.csv"))?;
    for rec in rdr.records() {
        let rec = rec?;
        truth.insert((rec[0].to_string(), rec[1].to_string()), rec[2].to_string());
    }
    let mut naive: HashMap<(String, String), Option<String>> = HashMap::new();
    let mut clear: HashMap<(String, String), String> = HashMap::new();
    let mut refs: HashMap<(String, String), String> = HashMap::new();
    let mut pending: Vec<(String, PathBuf, std::ffi::OsString)> = Vec::new();
    for (i, op) in scenario.operators.iter().enumerate() {
        let ws = work.join("operators").join(&op.id);
        crate::demo::enrol_operator(
            &hub,
            &ws,
            &op.id,
            &op.name,
            &scenario.profile(i),
            "https://127.0.0.1:1",
            &hub_dir.join("tls/ca.pem"),
            &linkage_secret,
        )
        .await?;
        let profile = Profile::load(&ws.join("profile.toml"))?;
        for file in exports.iter().filter(|f| f.operator_id == op.id) {
            let out = work.join(format!("{}-{}.age", op.id, file.period));
            let args = RunArgs {
                export: ExportArgs {
                    input: file.path.clone(),
                    period: file.period.parse()?,
                    config: ws.join("agent.toml"),
                    lang: None,
                    quiet: true,
                },
                out: Some(out.clone()),
            };
            let summary = agent_run(&args)?.context("a generated export was refused")?;
            let mut refs_csv = csv::Reader::from_path(&summary.receipt.references_file)?;
            for rec in refs_csv.records() {
                let rec = rec?;
                refs.insert((op.id.clone(), rec[1].to_string()), rec[0].to_string());
            }
            let mut sig = out.as_os_str().to_owned();
            sig.push(".sig");
            pending.push((file.period.clone(), out.clone(), sig));
            // The baseline reads the same rows the agent read.
            let period: Period = file.period.parse()?;
            let mut export = Export::open(&file.path, &profile.file)?;
            let mapper =
                synchro_agent::mapping::Mapper::new(&profile, &export, period, Default::default())?;
            let mut row = Row {
                line: 0,
                cells: csv::StringRecord::new(),
            };
            let mut problems = Vec::new();
            let mut scratch = synchro_agent::mapping::MapScratch::default();
            while export.next_row(&mut row)? {
                if let Some(m) = mapper.map(&row, &mut problems, &mut scratch) {
                    let key = naive_key(&m.identity.names, &m.identity.birth);
                    if eval.show_errors > 0 {
                        clear
                            .entry((op.id.clone(), m.local_id.clone()))
                            .or_insert_with(|| {
                                format!(
                                    "{:?} {:?} {:?}",
                                    m.identity.names, m.identity.birth, m.record.sex
                                )
                            });
                    }
                    naive
                        .entry((op.id.clone(), m.local_id.clone()))
                        .or_insert(key);
                }
            }
        }
    }
    // As in production: month after month, each batch processed as it arrives (incrementally
    // once a first batch is linked).
    pending.sort();
    let mut last_step = None;
    // (runs, seconds, records received) of the full and of the incremental runs along the way.
    let mut runs = [(0usize, 0.0f64, 0usize); 2];
    for (_, out, sig) in &pending {
        let signature = std::fs::read_to_string(sig)?;
        let accepted = hub
            .accept_upload(&std::fs::read(out)?, Some(&signature), "evaluation")
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let received = hub.store.record_count(&accepted.batch_id).await?.0 as usize;
        let run = hub.process(None, false, "evaluation").await?;
        let kind = usize::from(run.mode == "incremental");
        runs[kind].0 += 1;
        runs[kind].1 += run.total_seconds;
        runs[kind].2 += received;
        last_step = Some(run);
    }
    let last_step = last_step.context("no batch generated")?;
    let step_ids: HashMap<(String, String), i64> = hub
        .store
        .record_links()
        .await?
        .into_iter()
        .map(|l| ((l.operator_id, l.record_ref), l.person_id))
        .collect();
    // Then everything again from scratch, which is what is timed and scored first.
    clear_peak_memory();
    let start = Instant::now();
    let summary = hub.process(None, true, "evaluation").await?;
    let seconds = start.elapsed().as_secs_f64();
    let peak_mib = peak_memory_mib();
    // Scored from what the hub stored: every record's person id.
    let links = hub.store.record_links().await?;
    let ids: Vec<usize> = links.iter().map(|l| l.person_id as usize).collect();
    // The development aid needs the records' keys, in the same order.
    let nodes = if eval.show_errors > 0 || eval.dump_nodes.is_some() {
        let mut loaded: HashMap<(String, String), crate::linkage::Node> = hub
            .store
            .linkage_nodes(&summary.period)
            .await?
            .into_iter()
            .map(|n| ((n.operator.clone(), n.record_ref.clone()), n))
            .collect();
        let nodes: Vec<crate::linkage::Node> = links
            .iter()
            .filter_map(|l| loaded.remove(&(l.operator_id.clone(), l.record_ref.clone())))
            .collect();
        if eval.show_errors > 0 {
            let linked = crate::linkage::link_detailed(&nodes, &hub.cfg.config.linkage.params());
            eprint!("{}", linked.model.describe());
        }
        nodes
    } else {
        Vec::new()
    };
    let mut labels = Vec::with_capacity(links.len());
    let mut baseline_ids = Vec::with_capacity(links.len());
    let mut baseline_index: HashMap<String, usize> = HashMap::new();
    for (i, l) in links.iter().enumerate() {
        let local = refs
            .get(&(l.operator_id.clone(), l.record_ref.clone()))
            .context("a stored reference has no local id")?;
        let key = (l.operator_id.clone(), local.clone());
        labels.push(
            truth
                .get(&key)
                .cloned()
                .context("a local id is missing from the truth file")?,
        );
        let b = match naive.get(&key).cloned().flatten() {
            Some(k) => {
                let next = baseline_index.len() + links.len();
                *baseline_index.entry(k).or_insert(next)
            }
            None => i,
        };
        baseline_ids.push(b);
    }
    if let Some(dump) = &eval.dump_nodes {
        std::fs::create_dir_all(dump)?;
        let mut out = std::io::BufWriter::new(std::fs::File::create(
            dump.join(format!("{}.nodes", name.replace(' ', "-"))),
        )?);
        for (node, label) in nodes.iter().zip(&labels) {
            writeln!(out, "{label}\t{}", crate::linkage::node_line(node))?;
        }
        out.flush()?;
    }
    if args.show_errors > 0 {
        show_errors(&nodes, &ids, &labels, &refs, &clear, args.show_errors);
    }
    let persons = labels
        .iter()
        .collect::<std::collections::HashSet<_>>()
        .len();
    let hub_rows: i64 = hub
        .store
        .submissions()
        .await?
        .iter()
        .map(|s| s.row_count)
        .sum();
    hub.store.close().await;
    let stepped: Vec<usize> = links
        .iter()
        .map(|l| step_ids[&(l.operator_id.clone(), l.record_ref.clone())] as usize)
        .collect();
    Ok(LevelResult {
        level: name,
        nodes: links.len(),
        persons,
        linkage: score(&ids, &labels),
        month_by_month: score(&stepped, &labels),
        last_step_records: last_step.records_linked,
        last_step_seconds: last_step.total_seconds,
        last_step_mode: last_step.mode,
        step_runs: runs,
        baseline: score(&baseline_ids, &labels),
        seconds,
        link_seconds: summary.link_seconds,
        load_seconds: summary.load_seconds,
        rows: hub_rows,
        peak_mib,
    })
}

/// Prints missed pairs (same person, different ids) and false pairs, with whether they share a key.
fn show_errors(
    nodes: &[crate::linkage::Node],
    ids: &[usize],
    labels: &[String],
    refs: &HashMap<(String, String), String>,
    clear: &HashMap<(String, String), String>,
    limit: usize,
) {
    let describe = |i: usize| {
        let n = &nodes[i];
        let local = &refs[&(n.operator.clone(), n.record_ref.clone())];
        format!(
            "{} {}",
            n.operator,
            clear
                .get(&(n.operator.clone(), local.clone()))
                .map(String::as_str)
                .unwrap_or("?")
        )
    };
    let shared = |a: usize, b: usize| {
        let mut f: Vec<&str> = nodes[a]
            .keys
            .iter()
            .filter(|k| nodes[b].keys.contains(k))
            .map(|k| k.code())
            .collect();
        f.dedup();
        f.join(",")
    };
    let (mut missed, mut false_pairs) = (0, 0);
    for a in 0..nodes.len() {
        for b in a + 1..nodes.len() {
            let same_truth = labels[a] == labels[b];
            let same_id = ids[a] == ids[b];
            if same_truth && !same_id && missed < limit {
                missed += 1;
                eprintln!(
                    "MISSED [{}]\n  {}\n  {}",
                    shared(a, b),
                    describe(a),
                    describe(b)
                );
            } else if !same_truth && same_id && false_pairs < limit {
                false_pairs += 1;
                eprintln!(
                    "FALSE [{}]\n  {}\n  {}",
                    shared(a, b),
                    describe(a),
                    describe(b)
                );
            }
        }
    }
}

/// Runs both levels and prints the report.
pub async fn bench_linkage(args: &EvalArgs) -> Result<()> {
    let temp = tempfile::tempdir()?;
    let dir = match &args.keep {
        Some(keep) => {
            std::fs::create_dir_all(keep)?;
            keep.as_path()
        }
        None => temp.path(),
    };
    let mut results = Vec::new();
    for d in [Dirtiness::Moderate, Dirtiness::Very] {
        results.push(level(dir, d, args).await?);
    }
    println!(
        "# synchro-hub bench-linkage\n\n{} persons, {} operators, {} months; records = one operator's record across months.\n",
        args.persons, args.operators, args.months
    );
    if !args.linkage.is_empty() {
        println!(
            "Linkage settings (hub.toml `[linkage]`, the rest at their defaults): {}\n",
            args.linkage.join(", ")
        );
    }
    println!("| level | records | true persons | method | precision | recall | F1 | count error | processing (time, peak memory) |");
    println!("|---|---:|---:|---|---:|---:|---:|---:|---:|");
    for r in &results {
        for (method, q, t) in [
            (
                "Synchro linkage (EM + term frequency)",
                r.linkage,
                format!(
                    "{:.2} s (loading {:.2} s, linking {:.2} s) for {} rows, {}",
                    r.seconds,
                    r.load_seconds,
                    r.link_seconds,
                    r.rows,
                    r.peak_mib
                        .map(|m| format!("{m:.0} MiB"))
                        .unwrap_or_else(|| "n/a".into())
                ),
            ),
            (
                "the same, batch by batch as they arrive (incremental runs)",
                r.month_by_month,
                format!(
                    "last batch ({}): {:.2} s, {} records read; {} runs: {} full ({:.2} s each), {} incremental ({:.2} s each, {:.2} ms per record received)",
                    r.last_step_mode,
                    r.last_step_seconds,
                    r.last_step_records,
                    r.step_runs[0].0 + r.step_runs[1].0,
                    r.step_runs[0].0,
                    r.step_runs[0].1 / r.step_runs[0].0.max(1) as f64,
                    r.step_runs[1].0,
                    r.step_runs[1].1 / r.step_runs[1].0.max(1) as f64,
                    r.step_runs[1].1 * 1000.0 / r.step_runs[1].2.max(1) as f64
                ),
            ),
            ("naive baseline (name+first+date)", r.baseline, "-".into()),
        ] {
            println!(
                "| {} | {} | {} | {method} | {:.3} | {:.3} | {:.3} | {:+.1} % | {t} |",
                r.level,
                r.nodes,
                r.persons,
                q.precision,
                q.recall,
                q.f1,
                q.count_error * 100.0
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linkage_settings_reach_the_bench_hubs_config() {
        let text = "[hub]\nlisten = \"127.0.0.1:0\"\n\n[linkage]\nthreshold = -1.0\n";
        let patched = with_linkage_settings(
            text,
            &["threshold=-1.5".to_string(), "max_block = 80".to_string()],
        )
        .unwrap();
        let config: toml::Table = toml::from_str(&patched).unwrap();
        assert_eq!(config["linkage"]["threshold"].as_float(), Some(-1.5));
        assert_eq!(config["linkage"]["max_block"].as_integer(), Some(80));
        assert_eq!(config["hub"]["listen"].as_str(), Some("127.0.0.1:0"));
        assert_eq!(with_linkage_settings(text, &[]).unwrap(), text);
        let error = with_linkage_settings(text, &["threshold".to_string()]).unwrap_err();
        assert!(
            format!("{error:#}").contains("expected KEY=VALUE"),
            "{error:#}"
        );
        let error = with_linkage_settings(text, &["threshold=abc".to_string()]).unwrap_err();
        assert!(
            format!("{error:#}").contains("`threshold=abc`"),
            "{error:#}"
        );
    }

    #[tokio::test]
    async fn linkage_beats_the_naive_key_on_generated_data() {
        let dir = tempfile::tempdir().unwrap();
        let args = EvalArgs {
            persons: 300,
            operators: 4,
            months: 2,
            seed: 5,
            show_errors: 0,
            dump_nodes: None,
            keep: None,
            linkage: Vec::new(),
        };
        let r = level(dir.path(), Dirtiness::Moderate, &args).await.unwrap();
        assert!(
            r.persons > 200 && r.nodes > r.persons,
            "{} nodes, {} persons",
            r.nodes,
            r.persons
        );
        assert!(r.linkage.precision > 0.9, "{:?}", r.linkage);
        // Batches were linked incrementally once a model was fitted, and about as well as
        // from scratch.
        assert!(
            r.step_runs[1].0 > 0,
            "no incremental run: {:?} ({} last)",
            r.step_runs,
            r.last_step_mode
        );
        assert!(
            r.month_by_month.f1 > r.linkage.f1 - 0.05,
            "month by month {:?} vs from scratch {:?}",
            r.month_by_month,
            r.linkage
        );
        assert!(
            r.linkage.f1 > r.baseline.f1 + 0.1,
            "linkage {:?} vs baseline {:?}",
            r.linkage,
            r.baseline
        );
    }
}
