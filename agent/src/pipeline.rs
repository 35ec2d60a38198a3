//! The streaming pipeline: rows are read, mapped, pseudonymised and serialised in chunks by a
//! pool of workers, then handed back in file order. Memory is bounded by the chunks in flight,
//! plus 8 bytes per row to detect duplicate local ids.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex};

use csv::StringRecord;
use synchro_shared::pseudonym::{
    LinkageSecret, MatchKeyDeriver, ReferenceDeriver, ReferenceSecret,
};

use crate::export::{Export, ExportError, Row};
use crate::mapping::{MapScratch, Mapper};
use crate::report::{ColumnRef, Problem, ProblemKind, Report};

/// Rows per chunk: large enough to amortise channel costs, small enough to bound memory.
const CHUNK_ROWS: usize = 2048;

/// The keyed derivers a run uses.
pub struct Derivers {
    /// Match keys under the linkage secret.
    pub keys: MatchKeyDeriver,
    /// Record references under the operator's reference secret.
    pub refs: ReferenceDeriver,
}

impl Derivers {
    /// Derivers from the installed secrets.
    pub fn new(linkage: &LinkageSecret, reference: &ReferenceSecret, operator_id: &str) -> Self {
        Derivers {
            keys: MatchKeyDeriver::new(linkage),
            refs: ReferenceDeriver::new(reference, operator_id),
        }
    }

    /// Throw-away derivers for `check`, which needs no secret but counts records without keys.
    pub fn ephemeral(operator_id: &str) -> Self {
        Self::new(
            &LinkageSecret::generate(1),
            &ReferenceSecret::generate(),
            operator_id,
        )
    }
}

/// Appends `local_id,record_ref` as a CSV line, quoting the local id only when it needs it.
fn push_reference_line(out: &mut Vec<u8>, local_id: &str, record_ref: &str) {
    if local_id
        .bytes()
        .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
    {
        out.push(b'"');
        out.extend_from_slice(local_id.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(local_id.as_bytes());
    }
    out.push(b',');
    out.extend_from_slice(record_ref.as_bytes());
    out.push(b'\n');
}

/// What one chunk produced, in file order.
pub struct ChunkOutput {
    /// JSON lines of the accepted records.
    pub payload: Vec<u8>,
    /// CSV lines `local_id,record_ref` (kept by the operator only).
    pub refs: Vec<u8>,
    /// The chunk's share of the report.
    pub report: Report,
    id_hashes: Vec<u64>,
}

/// The result of a whole pass over the export.
pub struct PassOutcome {
    /// The merged report.
    pub report: Report,
    /// Hashes of local ids seen more than once; locate them with [`locate_duplicates`].
    pub duplicate_hashes: HashSet<u64>,
}

/// FNV-1a: fast on short ids; a collision only costs a second look, never a false report.
fn id_hash(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn process_chunk(
    mapper: &Mapper,
    scratch: &mut MapScratch,
    derivers: &Derivers,
    emit: bool,
    rows: &[Row],
    mut payload: Vec<u8>,
) -> ChunkOutput {
    payload.clear();
    let mut out = ChunkOutput {
        payload,
        refs: Vec::new(),
        report: Report::default(),
        id_hashes: Vec::with_capacity(rows.len()),
    };
    let mut problems = Vec::new();
    let mut keys = Vec::with_capacity(16);
    for row in rows {
        out.report.rows_read += 1;
        problems.clear();
        let Some(mut mapped) = mapper.map(row, &mut problems, scratch) else {
            out.report.rows_rejected += 1;
            out.report.rejected_lines.push(row.line);
            for p in problems.drain(..) {
                out.report.add(p);
            }
            continue;
        };
        out.report.rows_accepted += 1;
        out.id_hashes.push(id_hash(&mapped.local_id));
        let record = &mut mapped.record;
        *out.report
            .name_quality
            .entry(record.name_quality)
            .or_default() += 1;
        *out.report
            .birth_date_quality
            .entry(record.birth_date_quality)
            .or_default() += 1;
        let id = &mapped.identity;
        derivers.keys.derive_into(&id.names, &id.birth, &mut keys);
        if keys.is_empty() {
            out.report.records_without_keys += 1;
        }
        if emit {
            record.record_ref = derivers.refs.record_ref(&mapped.local_id);
            record.household_ref = mapped
                .household_id
                .as_deref()
                .map(|h| derivers.refs.household_ref(h));
            record.write_json_with_keys(&mut out.payload, &keys);
            out.payload.push(b'\n');
            push_reference_line(&mut out.refs, &mapped.local_id, &record.record_ref);
        }
    }
    out
}

/// Reads the whole export through the pipeline, handing each chunk's output to `sink` in order.
///
/// `emit` false (check) maps and validates only. Stops at the first fatal file error or sink
/// error; rows rejected within tolerance are the caller's decision.
pub fn run_pass(
    mut export: Export,
    mapper: &Mapper,
    derivers: &Derivers,
    emit: bool,
    progress: &indicatif::ProgressBar,
    sink: &mut dyn FnMut(&ChunkOutput) -> std::io::Result<()>,
) -> Result<PassOutcome, PassError> {
    // One worker more than cores: the reader and the writer (encryption, hashing) share the
    // cores and wait at times, and a core left idle then had no worker to run (2 cores: 186 %
    // CPU with 2 workers, 192 % with 3, about 5 % faster; a 4th adds memory, not speed).
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8)
        + 1;
    let mut report = Report {
        file: export.name.clone(),
        ..Report::default()
    };
    let mut hashes: Vec<u64> = Vec::new();
    let outcome: Result<(), PassError> = std::thread::scope(|scope| {
        let (work_tx, work_rx) = sync_channel::<(u64, Vec<Row>)>(workers * 2);
        let work_rx = Arc::new(Mutex::new(work_rx));
        let (done_tx, done_rx) = sync_channel::<(u64, ChunkOutput)>(workers * 2);
        // Processed chunks come back to the reader so their row buffers are reused.
        let (free_tx, free_rx) = sync_channel::<Vec<Row>>(workers * 4);
        // Written payload buffers come back to the workers: no fresh pages per chunk.
        let (spent_tx, spent_rx) = sync_channel::<Vec<u8>>(workers * 4);
        let spent_rx = Arc::new(Mutex::new(spent_rx));
        let reader = scope.spawn(move || -> Result<Export, ExportError> {
            let mut seq = 0u64;
            loop {
                let mut chunk = free_rx.try_recv().unwrap_or_default();
                let mut filled = 0;
                loop {
                    if filled == chunk.len() {
                        if chunk.len() == CHUNK_ROWS {
                            break;
                        }
                        chunk.push(Row {
                            line: 0,
                            cells: StringRecord::with_capacity(256, 24),
                        });
                    }
                    if !export.next_row(&mut chunk[filled])? {
                        break;
                    }
                    filled += 1;
                }
                chunk.truncate(filled);
                let last = filled < CHUNK_ROWS;
                progress.set_position(export.bytes_read());
                if !chunk.is_empty() && work_tx.send((seq, chunk)).is_err() {
                    return Ok(export);
                }
                seq += 1;
                if last {
                    return Ok(export);
                }
            }
        });
        for _ in 0..workers {
            let rx = Arc::clone(&work_rx);
            let tx = done_tx.clone();
            let free = free_tx.clone();
            let spent = Arc::clone(&spent_rx);
            scope.spawn(move || {
                let mut scratch = MapScratch::default();
                loop {
                    // Unwrap safety: a worker panicking while holding a lock is a bug worth surfacing.
                    let next = rx.lock().expect("work queue lock").recv();
                    let Ok((seq, rows)) = next else { return };
                    let buffer = spent
                        .lock()
                        .expect("buffer list lock")
                        .try_recv()
                        .unwrap_or_default();
                    let out = process_chunk(mapper, &mut scratch, derivers, emit, &rows, buffer);
                    // A full free list just drops the chunk; the reader then allocates a new one.
                    let _ = free.try_send(rows);
                    if tx.send((seq, out)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done_tx);
        drop(free_tx);
        let mut pending: BTreeMap<u64, ChunkOutput> = BTreeMap::new();
        let mut next = 0u64;
        let mut sink_result = Ok(());
        'receive: for (seq, out) in done_rx.iter() {
            pending.insert(seq, out);
            while let Some(out) = pending.remove(&next) {
                if let Err(e) = sink(&out) {
                    sink_result = Err(PassError::Output(e));
                    break 'receive;
                }
                hashes.extend_from_slice(&out.id_hashes);
                report.merge(out.report);
                let _ = spent_tx.try_send(out.payload);
                next += 1;
            }
        }
        drop(done_rx);
        // Unwrap safety: the reader thread does not panic; if it did, propagating is right.
        let export = reader.join().expect("reader thread")?;
        sink_result?;
        if report.rows_read == 0 {
            return Err(PassError::Export(ExportError::HeaderOnly {
                file: export.name,
            }));
        }
        Ok(())
    });
    outcome?;
    hashes.sort_unstable();
    let duplicated: HashSet<u64> = hashes
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0])
        .collect();
    Ok(PassOutcome {
        report,
        duplicate_hashes: duplicated,
    })
}

/// A pass failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    /// The export cannot be read.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// Writing the output failed.
    #[error("cannot write the output: {0}")]
    Output(std::io::Error),
}

/// Second pass, only when duplicates were seen: finds the lines of each repeated local id.
pub fn locate_duplicates(
    mut export: Export,
    id_column: &ColumnRef,
    hashes: &HashSet<u64>,
    report: &mut Report,
) -> Result<(), ExportError> {
    let mut first_line: HashMap<String, u64> = HashMap::new();
    let mut row = Row {
        line: 0,
        cells: StringRecord::new(),
    };
    while export.next_row(&mut row)? {
        let Some(id) = row.cells.get(id_column.index).map(str::trim) else {
            continue;
        };
        if !hashes.contains(&id_hash(id)) {
            continue;
        }
        match first_line.get(id) {
            Some(first) => {
                report.rows_rejected += 1;
                report.add(Problem {
                    line: row.line,
                    column: Some(id_column.clone()),
                    kind: ProblemKind::DuplicateLocalId { first_line: *first },
                });
            }
            None => {
                first_line.insert(id.to_string(), row.line);
            }
        }
    }
    Ok(())
}
