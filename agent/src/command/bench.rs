//! `bench`: rows per second and peak memory of a real `run`, against the bare HMAC cost.
//!
//! Each export size runs in its own child process so that its peak memory is its own. The
//! bare cost is the same number of HMAC-SHA-256 computations per row as the run derives
//! (match keys plus references), with the same implementation ([`HmacKey`]), on the same
//! number of threads, in the same invocation:
//! machines here are shared and noisy, so only ratios measured together mean anything. The
//! report also measures the format's floor (reading the export, sealing the batch), which
//! bounds the ratio from below whatever the pipeline does.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use synchro_shared::batch::{encrypt_to, Period, Sha256Writer};
use synchro_shared::pseudonym::HmacKey;

use super::init::{init, InitArgs};
use super::run::{run, RunArgs};
use super::{ExportArgs, Prepared};
use crate::export::Row;

/// Arguments of `bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Rows of the largest export (a tenth of it is measured too, to show memory is flat)
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: usize,
    /// Working directory (default: a temporary one, removed afterwards)
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Also write the report (Markdown) to this file
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Internal: run one measured child on this export
    #[arg(long, hide = true)]
    pub child_input: Option<PathBuf>,
    /// Internal: the child's agent configuration
    #[arg(long, hide = true)]
    pub child_config: Option<PathBuf>,
}

const PERIOD: &str = "2026-10";

/// Peak resident memory of this process in KiB (Linux; `None` elsewhere).
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

struct Measure {
    rows: usize,
    seconds: f64,
    peak_kib: Option<u64>,
}

fn child(input: &Path, config: &Path) -> Result<()> {
    let start = Instant::now();
    let out = input.with_extension("batch.age");
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_file(super::run::signature_path(&out));
    let summary = run(&RunArgs {
        export: ExportArgs {
            input: input.to_path_buf(),
            period: PERIOD.parse()?,
            config: config.to_path_buf(),
            lang: None,
            quiet: true,
        },
        out: Some(out),
    })?
    .context("the benchmark export was refused")?;
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "BENCH {} {seconds} {}",
        summary.receipt.rows_sent,
        peak_rss_kib()
            .map(|k| k.to_string())
            .unwrap_or_else(|| "-".into())
    );
    Ok(())
}

fn measure(input: &Path, config: &Path) -> Result<Measure> {
    let exe = std::env::current_exe()?;
    let out = Command::new(exe)
        .arg("bench")
        .arg("--child-input")
        .arg(input)
        .arg("--child-config")
        .arg(config)
        .output()?;
    if !out.status.success() {
        bail!(
            "benchmark run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("BENCH "))
        .context("no measurement from the child")?;
    let parts: Vec<&str> = line.split_whitespace().collect();
    Ok(Measure {
        rows: parts[1].parse()?,
        seconds: parts[2].parse()?,
        peak_kib: parts[3].parse().ok(),
    })
}

/// Average HMACs per row of a run: match keys plus the record and household references.
fn hmacs_per_row(prepared: &Prepared, input: &Path, period: Period) -> Result<f64> {
    let (mut export, mapper) = prepared.open(input, period)?;
    let derivers = prepared.derivers()?;
    let mut row = Row {
        line: 0,
        cells: csv::StringRecord::new(),
    };
    let (mut rows, mut macs) = (0u64, 0u64);
    let mut problems = Vec::new();
    let mut scratch = crate::mapping::MapScratch::default();
    while rows < 20_000 && export.next_row(&mut row)? {
        if let Some(m) = mapper.map(&row, &mut problems, &mut scratch) {
            let keys = derivers.keys.derive(&m.identity.names, &m.identity.birth);
            macs += keys.values().map(|v| v.len() as u64).sum::<u64>()
                + 1
                + u64::from(m.household_id.is_some());
            rows += 1;
        }
    }
    Ok(macs as f64 / rows.max(1) as f64)
}

/// The same number of HMACs on typical inputs, on `threads` threads; seconds.
fn bare_hmac_seconds(total: u64, threads: usize) -> f64 {
    let key = HmacKey::new(&[7u8; 32]);
    let inputs: Vec<Vec<u8>> = (0..1024)
        .map(|i| format!("DUPONT{i}\u{1f}JEANPIERRE\u{1f}19870325\u{1f}M").into_bytes())
        .collect();
    let per_thread = total / threads as u64;
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (key, inputs) = (&key, &inputs);
            s.spawn(move || {
                let mut acc = 0u8;
                for i in 0..per_thread {
                    let tag = key.tag(&inputs[(i as usize + t) % inputs.len()]);
                    acc ^= tag[0];
                }
                std::hint::black_box(acc);
            });
        }
    });
    start.elapsed().as_secs_f64()
}

/// What the format makes unavoidable, one thread each, seconds: reading the export through
/// the run's own reader (no mapping), and sealing a payload of the batch's size (age
/// encryption to the hub and SHA-256 of the ciphertext, as `run` does).
struct Floor {
    read: f64,
    seal: f64,
}

fn floor_seconds(
    prepared: &Prepared,
    input: &Path,
    period: Period,
    payload_bytes: u64,
) -> Result<Floor> {
    let (mut export, _) = prepared.open(input, period)?;
    let mut row = Row {
        line: 0,
        cells: csv::StringRecord::new(),
    };
    let start = Instant::now();
    let mut cells = 0usize;
    while export.next_row(&mut row)? {
        cells += row.cells.len();
    }
    let read = start.elapsed().as_secs_f64();
    std::hint::black_box(cells);

    let recipient = prepared.cfg.hub_recipient()?;
    // A payload-like line repeated: ChaCha20-Poly1305 and SHA-256 cost the same on any bytes.
    let block: Vec<u8> =
        br#"{"ref":"r_uMr_G6FEWl62VQF4","k":{"ndf":["FRkbALurVKA0hIxQ"]},"sit":"rue"}"#
            .iter()
            .copied()
            .cycle()
            .take(64 * 1024)
            .collect();
    let start = Instant::now();
    let mut sealed = encrypt_to(Sha256Writer::new(std::io::sink()), &recipient)?;
    let mut left = payload_bytes;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        sealed.write_all(&block[..n])?;
        left -= n as u64;
    }
    let (_, digest, _) = sealed.finish()?.finish();
    let seal = start.elapsed().as_secs_f64();
    std::hint::black_box(digest);
    Ok(Floor { read, seal })
}

/// Which SHA-256 code the HMACs run on: the ratio target depends on it more than on anything
/// the pipeline does (see `docs/benchmarks.md`).
fn hmac_backend() -> &'static str {
    if cfg!(feature = "software-sha256") {
        return "portable code, `software-sha256` feature";
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("sha") {
        return "the CPU's SHA extensions";
    }
    "portable code, no SHA extensions detected"
}

/// Runs the benchmark and prints (and optionally writes) the report.
pub fn bench(args: &BenchArgs) -> Result<()> {
    if let (Some(input), Some(config)) = (&args.child_input, &args.child_config) {
        return child(input, config);
    }
    let temp;
    let dir = match &args.work_dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let hub = synchro_keys::hub::create(&dir.join("hub-keys"))?;
    let workspace = dir.join("agent");
    init(&InitArgs {
        dir: workspace.clone(),
        operator_id: "siao-bench".into(),
        hub_recipient: hub.recipient.to_string_lossy().into_owned(),
        hub_url: None,
        ca_certificate: None,
        quiet: true,
    })?;
    synchro_keys::linkage::create(&workspace.join("keys/linkage-secret.key"), 1)?;
    let config = workspace.join("agent.toml");
    let sizes = [args.rows / 10, args.rows];
    let mut measures = Vec::new();
    for size in sizes {
        let input = dir.join(format!("bulk-{size}.csv"));
        eprintln!("generating {size} rows…");
        synchro_synth::write_bulk_export(&input, size, 7)?;
        eprintln!("measuring {size} rows…");
        measures.push((input.clone(), measure(&input, &config)?));
    }
    let prepared = Prepared::load(&config, None)?;
    let period: Period = PERIOD.parse()?;
    let per_row = hmacs_per_row(&prepared, &measures[1].0, period)?;
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8);
    let big = &measures[1].1;
    let bare = bare_hmac_seconds((per_row * big.rows as f64) as u64, threads);
    let bare_single = bare_hmac_seconds((per_row * big.rows as f64 / 10.0) as u64, 1) * 10.0;
    let batch_bytes = std::fs::metadata(measures[1].0.with_extension("batch.age"))?.len();
    let floor = floor_seconds(&prepared, &measures[1].0, period, batch_bytes)?;
    // With every core busy and nothing else done, the pipeline would cost the HMACs plus
    // reading and sealing, spread over the same threads as the bare HMACs.
    let floor_ratio = (bare_single + floor.read + floor.seal) / bare_single;
    // Under 2x, the rest of the pipeline may cost at most one more bare-HMAC time, less the floor.
    let budget = (bare_single - floor.read - floor.seal).max(0.0);
    let mut report = String::new();
    report.push_str("# synchro-agent bench\n\n");
    report.push_str(&format!(
        "Machine: {threads} worker threads. Export: SIAO-style CSV (UTF-8 BOM, `;`), moderate dirtiness.\n\
         Each size runs as a separate process (`run --out`, full pipeline: read, map, normalise, derive,\n\
         serialise, encrypt, hash, sign, write receipt and reference table).\n\n"
    ));
    report.push_str("| rows | seconds | rows/s | peak memory (MiB) |\n|---:|---:|---:|---:|\n");
    for (_, m) in &measures {
        report.push_str(&format!(
            "| {} | {:.2} | {:.0} | {} |\n",
            m.rows,
            m.seconds,
            m.rows as f64 / m.seconds,
            m.peak_kib
                .map(|k| format!("{:.1}", k as f64 / 1024.0))
                .unwrap_or_else(|| "n/a".into())
        ));
    }
    let rate = big.rows as f64 / big.seconds;
    let ratio = big.seconds / bare;
    report.push_str(&format!(
        "\nBare HMAC-SHA-256 (SHA-256 on {}): {per_row:.2} HMACs per row (match keys + references), {} rows' worth on {threads} threads: \
         {bare:.2} s ({:.0} rows/s; single thread {:.2} s).\n\n\
         **Pipeline / bare HMAC cost per row: {ratio:.2}x** (target < 2x). **Throughput: {rate:.0} rows/s** (target ≥ 300,000).\n",
        hmac_backend(),
        big.rows,
        big.rows as f64 / bare,
        bare_single
    ));
    report.push_str(&format!(
        "Floor of this format, one thread: reading the export (CSV parser, no mapping) {:.2} s; \
         sealing {:.0} MB (age encryption + SHA-256 of the ciphertext) {:.2} s. HMACs + reading + \
         sealing alone come to **{floor_ratio:.2}x** the bare HMACs: what mapping, normalisation, \
         key inputs and serialisation may add before the ratio target is missed is {:.2} s of \
         one thread ({:.2} µs per row).\n",
        floor.read,
        batch_bytes as f64 / 1e6,
        floor.seal,
        budget,
        budget * 1e6 / big.rows as f64,
    ));
    if let (Some(small), Some(large)) = (measures[0].1.peak_kib, big.peak_kib) {
        report.push_str(&format!(
            "Memory: {:.1} MiB for {} rows vs {:.1} MiB for {} rows ({:.2}x memory for {}x rows).\n",
            small as f64 / 1024.0,
            measures[0].1.rows,
            large as f64 / 1024.0,
            big.rows,
            large as f64 / small as f64,
            big.rows / measures[0].1.rows.max(1)
        ));
    }
    print!("{report}");
    if let Some(path) = &args.report {
        std::fs::write(path, &report)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
