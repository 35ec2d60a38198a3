//! All of the hub's SQL, in one place, portable between SQLite and PostgreSQL.
//!
//! Queries are runtime queries through sqlx's `Any` driver with `$N` placeholders, which both
//! backends accept, so the same statement runs on both and one test suite covers both. Each
//! statement starts with the name of the function that runs it. Writes that append to the audit
//! log are serialised in-process (one hub process writes), which keeps audit sequence numbers
//! gap-free on both backends without table locks.

use std::str::FromStr;

use sqlx::any::{install_default_drivers, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions as _, Executor, Row};

use crate::audit;

/// Which database the store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Backend {
    /// The aggregate that concatenates text with a separator: `group_concat(x, sep)` on
    /// SQLite, `string_agg(x, sep)` on PostgreSQL.
    fn concat(self) -> &'static str {
        match self {
            Backend::Sqlite => "group_concat",
            Backend::Postgres => "string_agg",
        }
    }
}

/// A node row as one line of text (see [`node_lines`]).
const NODE_LINE: &str =
    "operator_id || '\t' || record_ref || '\t' || COALESCE(household_ref, '') || '\t' || profile";
/// A link row as one line of text (see [`link_lines`]).
const LINK_LINE: &str = "operator_id || '\t' || record_ref || '\t' || CAST(person_id AS TEXT) || '\t' || CAST(household_id AS TEXT)";

/// Parses the lines of concatenated node rows ([`NODE_LINE`]) into `set`.
fn node_lines(set: &mut NodeSet, text: &str) {
    for line in text.split('\n') {
        let mut f = line.splitn(4, '\t');
        if let (Some(operator), Some(record_ref), Some(household), Some(profile)) =
            (f.next(), f.next(), f.next(), f.next())
        {
            set.add(operator, record_ref, Some(household), Some(profile));
        }
    }
}

/// The links in concatenated link rows ([`LINK_LINE`]).
fn link_lines(text: &str) -> impl Iterator<Item = RecordLink> + '_ {
    text.split('\n').filter_map(|line| {
        let mut f = line.split('\t');
        Some(RecordLink {
            operator_id: f.next()?.to_string(),
            record_ref: f.next()?.to_string(),
            person_id: f.next()?.parse().ok()?,
            household_id: f.next()?.parse().ok()?,
        })
    })
}

/// Storage errors, mapped from the driver in one place.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or opened.
    #[error("cannot open the database ({0}); check database.url and that the server is running")]
    Connect(String),
    /// A schema migration failed.
    #[error("cannot migrate the database schema: {0}")]
    Migrate(String),
    /// Something already exists.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// Something is missing.
    #[error("{0} not found")]
    NotFound(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => StoreError::NotFound("row".into()),
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::AlreadyExists(db.message().to_string())
            }
            _ => StoreError::Database(e.to_string()),
        }
    }
}

/// Result of store operations.
pub type Result<T> = std::result::Result<T, StoreError>;

/// An enrolled operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolledOperator {
    /// Operator id.
    pub id: String,
    /// Human name.
    pub display_name: String,
    /// Ed25519 public key, base64.
    pub signing_public_key: String,
    /// age recipient.
    pub age_recipient: String,
    /// Uploads accepted.
    pub active: bool,
    /// Unix seconds.
    pub enrolled_at: i64,
}

/// A record ready to store: references, re-keyed match keys, attributes.
#[derive(Debug, Clone)]
pub struct StoredRecord {
    /// Record reference.
    pub record_ref: String,
    /// Household reference.
    pub household_ref: Option<String>,
    /// YYYY-MM-DD.
    pub last_contact: String,
    /// JSON attributes.
    pub attributes: String,
    /// (family code, hub-keyed value).
    pub keys: Vec<(&'static str, String)>,
    /// Compact linkage profile (see `linkage::profile`).
    pub linkage: String,
}

/// A verified batch to store.
#[derive(Debug, Clone)]
pub struct NewBatch {
    /// Hub batch id.
    pub id: String,
    /// Operator.
    pub operator_id: String,
    /// YYYY-MM.
    pub period: String,
    /// Hex SHA-256 of the ciphertext.
    pub ciphertext_sha256: String,
    /// The signature's nonce.
    pub nonce: String,
    /// The raw age file.
    pub ciphertext: Vec<u8>,
    /// The signature JSON.
    pub signature: String,
    /// Records rejected at the operator.
    pub rejected_count: i64,
    /// Linkage epoch.
    pub key_epoch: i64,
    /// Template version.
    pub template_version: i64,
    /// Key-set version.
    pub key_set_version: i64,
    /// Agent version.
    pub agent_version: String,
    /// Unix seconds.
    pub received_at: i64,
    /// The records.
    pub records: Vec<StoredRecord>,
}

/// What storing a batch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    /// Stored; `replaced` names the batch it replaced for the same operator and month.
    Accepted {
        /// The new batch id.
        batch_id: String,
        /// The replaced batch id.
        replaced: Option<String>,
    },
    /// The identical batch was already stored: acknowledged, nothing duplicated.
    Duplicate {
        /// The stored batch id.
        batch_id: String,
    },
    /// The nonce was already used by another upload: a replay.
    Replay,
}

/// One month's submission, for the web interface and reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// Operator.
    pub operator_id: String,
    /// YYYY-MM.
    pub period: String,
    /// Records.
    pub row_count: i64,
    /// Rejected at the operator.
    pub rejected_count: i64,
    /// Unix seconds.
    pub received_at: i64,
    /// Batch id.
    pub batch_id: String,
}

/// What a purge removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PurgeCounts {
    /// Records past the retention after last contact.
    pub records: u64,
    /// Raw ciphertexts dropped.
    pub raw_batches: u64,
    /// Audit entries past their retention (pruned from the live table only after a checkpoint).
    pub nonces: u64,
    /// Expired sessions.
    pub sessions: u64,
}

/// A record's person and household ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordLink {
    /// Operator.
    pub operator_id: String,
    /// Per-operator record reference.
    pub record_ref: String,
    /// Person id.
    pub person_id: i64,
    /// Household id.
    pub household_id: i64,
}

/// A merge or split as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredEvent {
    /// `person_merge`, `person_split`, `household_merge` or `household_split`.
    pub kind: String,
    /// Id holding the records now.
    pub id: i64,
    /// Id merged away or split from.
    pub other_id: i64,
    /// Records concerned.
    pub records: i64,
}

/// Everything a linkage run writes.
#[derive(Debug, Clone)]
pub struct LinkageRun {
    /// Month processed.
    pub period: String,
    /// Unix seconds.
    pub run_at: i64,
    /// Who ran it (audit actor).
    pub actor: String,
    /// The ids of every record whose ids are new or changed (others keep their stored link).
    pub links: Vec<RecordLink>,
    /// Records linked before that are no longer stored: their links are deleted.
    pub removed: Vec<(String, String)>,
    /// Ids issued, per kind.
    pub created: Vec<(&'static str, Vec<i64>)>,
    /// Ids that hold no record any more, per kind.
    pub retired: Vec<(&'static str, Vec<i64>)>,
    /// Merges and splits.
    pub events: Vec<StoredEvent>,
    /// Audit details (counts only).
    pub audit: serde_json::Value,
}

/// The records of the batches received since the last run.
#[derive(Debug, Default)]
pub struct FreshRecords {
    /// (operator, record reference).
    pub records: std::collections::HashSet<(String, String)>,
    /// (operator, household reference) of those records.
    pub households: std::collections::BTreeSet<(String, String)>,
}

/// Linkage nodes built from stored rows: one per (operator, record reference), every month read
/// merged into it in reading order (the first household and attributes read stand).
#[derive(Default)]
struct NodeSet {
    index: rustc_hash::FxHashMap<(String, String), usize>,
    nodes: Vec<crate::linkage::Node>,
}

impl NodeSet {
    /// Merges one stored month of a record into its node (an empty household or profile counts
    /// as none); returns the node's position.
    fn add(
        &mut self,
        operator: &str,
        record_ref: &str,
        household_ref: Option<&str>,
        profile: Option<&str>,
    ) -> usize {
        let key = (operator.to_string(), record_ref.to_string());
        let at = match self.index.get(&key) {
            Some(&at) => at,
            None => {
                self.nodes.push(crate::linkage::Node {
                    operator: key.0.clone(),
                    record_ref: key.1.clone(),
                    ..Default::default()
                });
                self.index.insert(key, self.nodes.len() - 1);
                self.nodes.len() - 1
            }
        };
        let node = &mut self.nodes[at];
        if node.household_ref.is_none() {
            node.household_ref = household_ref.filter(|h| !h.is_empty()).map(str::to_string);
        }
        if let Some(profile) = profile.filter(|p| !p.is_empty()) {
            crate::linkage::add_profile(node, profile);
        }
        at
    }

    /// The same nodes sorted by (operator, reference), whatever order they were read in.
    fn in_reference_order(mut self) -> Self {
        self.nodes.sort_unstable_by(|a, b| {
            (&a.operator, &a.record_ref).cmp(&(&b.operator, &b.record_ref))
        });
        self.index = self
            .nodes
            .iter()
            .enumerate()
            .map(|(at, n)| ((n.operator.clone(), n.record_ref.clone()), at))
            .collect();
        self
    }

    /// The nodes as an increment: fresh when in `fresh`, with their ids from `previous`.
    fn into_increment(
        self,
        fresh: &std::collections::HashSet<(String, String)>,
        previous: &rustc_hash::FxHashMap<(String, String), (i64, i64)>,
    ) -> Increment {
        let mut step = Increment {
            fresh: vec![false; self.nodes.len()],
            previous: vec![None; self.nodes.len()],
            nodes: self.nodes,
        };
        for (key, &at) in &self.index {
            step.fresh[at] = fresh.contains(key);
            step.previous[at] = previous.get(key).copied();
        }
        step
    }
}

/// What an incremental run links (see [`Store::step_nodes`]), node by node.
#[derive(Debug, Default)]
pub struct Increment {
    /// One node per operator and record reference, every month merged.
    pub nodes: Vec<crate::linkage::Node>,
    /// The node has a record in a fresh batch.
    pub fresh: Vec<bool>,
    /// The node's (person, household) ids from the last run, if it had any.
    pub previous: Vec<Option<(i64, i64)>>,
}

/// The hub's database.
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Serialises every write of this process (see the module doc): on SQLite a transaction
    /// that read before writing fails at once if another write slipped in between.
    write_lock: tokio::sync::Mutex<()>,
}

/// Rows bound per multi-row INSERT. Binding costs grow with the square of a statement's
/// parameters in sqlx's SQLite driver (each is looked up by name), so statements stay at a few
/// thousand: 1,000 rows made the node-table writes cost a third more ingestion time, 250 none.
const INSERT_CHUNK: usize = 250;

impl Store {
    /// Opens (creating SQLite files if needed) and migrates the database.
    pub async fn connect(url: &str, password: Option<&str>) -> Result<Self> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let url = match backend {
            Backend::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            Backend::Sqlite => url.to_string(),
            Backend::Postgres => match password {
                Some(pw) => with_password(url, pw),
                None => url.to_string(),
            },
        };
        let mut options =
            AnyPoolOptions::new().max_connections(if backend == Backend::Sqlite { 4 } else { 16 });
        if backend == Backend::Sqlite {
            options = options.after_connect(|conn, _| {
                Box::pin(async move {
                    // WAL and FULL sync: an acknowledged batch survives a killed process or host.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = FULL").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute("PRAGMA busy_timeout = 30000").await?;
                    conn.execute("PRAGMA temp_store = MEMORY").await?;
                    // SQLite's default page cache is 2 MiB: an ingestion transaction writing
                    // into large indexes then spills pages to the WAL and reads them back
                    // through system calls, most of its time. 64 MiB per connection (at most
                    // four) keeps a month's writes and a linkage run's reads in memory.
                    conn.execute("PRAGMA cache_size = -65536").await?;
                    Ok(())
                })
            });
        }
        // sqlx warns of every statement over a second with its whole SQL text: on a large
        // territory a full linkage run's reads always take that long, and the run reports its
        // own timings, so those lines are details, shown with `--verbose` (info level).
        let connect = sqlx::any::AnyConnectOptions::from_str(&url)
            .map_err(|e| StoreError::Connect(redact(&e.to_string())))?
            .log_slow_statements(log::LevelFilter::Info, std::time::Duration::from_secs(1));
        let pool = options
            .connect_with(connect)
            .await
            .map_err(|e| StoreError::Connect(redact(&e.to_string())))?;
        let migrator = match backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("migrations/postgres"),
        };
        migrator
            .run(&pool)
            .await
            .map_err(|e| StoreError::Migrate(e.to_string()))?;
        let store = Store {
            pool,
            backend,
            write_lock: tokio::sync::Mutex::new(()),
        };
        store.fill_nodes().await?;
        Ok(store)
    }

    /// Fills the node tables from the stored records when they are empty while records are
    /// stored: once, on the first opening after migration 0006.
    async fn fill_nodes(&self) -> Result<()> {
        let _guard = self.write_lock.lock().await;
        let mut tx = self.pool.begin().await?;
        let empty: i64 = sqlx::query(
            "-- fill_nodes(): needed\nSELECT CASE WHEN EXISTS (SELECT 1 FROM records) AND NOT EXISTS (SELECT 1 FROM nodes) THEN 1 ELSE 0 END",
        )
        .fetch_one(&mut *tx)
        .await?
        .get(0);
        if empty == 1 {
            let refs = ref_pairs(
                &mut tx,
                sqlx::query("-- fill_nodes(): records\nSELECT DISTINCT operator_id, record_ref FROM records"),
            )
            .await?;
            tracing::warn!(
                "building the linkage node tables from the {} records stored (once, after an upgrade; about a minute per 300,000 records)",
                refs.len()
            );
            rebuild_nodes(&mut tx, self.backend, &refs).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    // ----- operators -----

    /// Enrols an operator.
    pub async fn add_operator(&self, op: &EnrolledOperator) -> Result<()> {
        let _guard = self.write_lock.lock().await;
        sqlx::query(
            "-- add_operator()\nINSERT INTO operators (id, display_name, signing_public_key, age_recipient, active, enrolled_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&op.id)
        .bind(&op.display_name)
        .bind(&op.signing_public_key)
        .bind(&op.age_recipient)
        .bind(i64::from(op.active))
        .bind(op.enrolled_at)
        .execute(&self.pool)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::AlreadyExists(_) => StoreError::AlreadyExists(format!("operator {}", op.id)),
            other => other,
        })?;
        Ok(())
    }

    /// Enables or disables an operator; returns false when unknown.
    pub async fn set_operator_active(&self, id: &str, active: bool) -> Result<bool> {
        let _guard = self.write_lock.lock().await;
        let r =
            sqlx::query("-- set_operator_active()\nUPDATE operators SET active = $1 WHERE id = $2")
                .bind(i64::from(active))
                .bind(id)
                .execute(&self.pool)
                .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Every enrolled operator.
    pub async fn operators(&self) -> Result<Vec<EnrolledOperator>> {
        let rows = sqlx::query(
            "-- operators()\nSELECT id, display_name, signing_public_key, age_recipient, active, enrolled_at FROM operators ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(operator_from_row).collect()
    }

    /// One operator.
    pub async fn operator(&self, id: &str) -> Result<Option<EnrolledOperator>> {
        let row = sqlx::query(
            "-- operator()\nSELECT id, display_name, signing_public_key, age_recipient, active, enrolled_at FROM operators WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(operator_from_row).transpose()
    }

    // ----- batches -----

    /// Stores a verified batch in one transaction: replaces the operator's batch for that
    /// month, refuses a reused nonce, acknowledges an identical resubmission, and appends the
    /// audit entries. Returns after commit (durable).
    pub async fn ingest_batch(&self, batch: &NewBatch, actor: &str) -> Result<IngestOutcome> {
        let _guard = self.write_lock.lock().await;
        let mut tx = self.pool.begin().await?;
        let existing = sqlx::query(
            "-- ingest_batch(): existing\nSELECT id, ciphertext_sha256 FROM batches WHERE operator_id = $1 AND period = $2",
        )
        .bind(&batch.operator_id)
        .bind(&batch.period)
        .fetch_optional(&mut *tx)
        .await?;
        let existing: Option<(String, String)> =
            existing.map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)));
        if let Some((id, sha)) = &existing {
            if *sha == batch.ciphertext_sha256 {
                let details = serde_json::json!({
                    "operator": batch.operator_id,
                    "period": batch.period,
                    "batch": id,
                    "ciphertext_sha256": sha,
                });
                append_audit(
                    &mut tx,
                    actor,
                    "batch_resubmitted_identical",
                    details,
                    batch.received_at,
                )
                .await?;
                tx.commit().await?;
                return Ok(IngestOutcome::Duplicate {
                    batch_id: id.clone(),
                });
            }
        }
        let nonce = sqlx::query("-- ingest_batch(): nonce\nINSERT INTO nonces (nonce, operator_id, seen_at) VALUES ($1, $2, $3)")
            .bind(&batch.nonce)
            .bind(&batch.operator_id)
            .bind(batch.received_at)
            .execute(&mut *tx)
            .await;
        match nonce.map_err(StoreError::from) {
            Ok(_) => {}
            Err(StoreError::AlreadyExists(_)) => {
                tx.rollback().await?;
                return Ok(IngestOutcome::Replay);
            }
            Err(e) => return Err(e),
        }
        // The records of a replaced month: their nodes are rebuilt without it.
        let mut replaced = std::collections::BTreeSet::new();
        if let Some((old, _)) = &existing {
            replaced = ref_pairs(
                &mut tx,
                sqlx::query("-- ingest_batch(): replaced records\nSELECT operator_id, record_ref FROM records WHERE batch_id = $1").bind(old),
            )
            .await?;
            sqlx::query("-- ingest_batch(): replace\nDELETE FROM batches WHERE id = $1")
                .bind(old)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "-- ingest_batch(): batch\nINSERT INTO batches (id, operator_id, period, ciphertext_sha256, row_count, rejected_count, key_epoch, template_version, key_set_version, agent_version, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&batch.id)
        .bind(&batch.operator_id)
        .bind(&batch.period)
        .bind(&batch.ciphertext_sha256)
        .bind(batch.records.len() as i64)
        .bind(batch.rejected_count)
        .bind(batch.key_epoch)
        .bind(batch.template_version)
        .bind(batch.key_set_version)
        .bind(&batch.agent_version)
        .bind(batch.received_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query("-- ingest_batch(): blob\nINSERT INTO batch_blobs (batch_id, ciphertext, signature) VALUES ($1, $2, $3)")
            .bind(&batch.id)
            .bind(batch.ciphertext.clone())
            .bind(&batch.signature)
            .execute(&mut *tx)
            .await?;
        for (chunk_no, chunk) in batch.records.chunks(INSERT_CHUNK).enumerate() {
            let base = chunk_no * INSERT_CHUNK;
            let mut sql = String::from(
                "-- ingest_batch(): records\nINSERT INTO records (batch_id, idx, operator_id, period, record_ref, household_ref, last_contact, attributes, linkage) VALUES ",
            );
            push_placeholders(&mut sql, chunk.len(), 9, self.backend);
            let mut q = sqlx::query(&sql);
            for (i, r) in chunk.iter().enumerate() {
                q = q
                    .bind(&batch.id)
                    .bind((base + i) as i64)
                    .bind(&batch.operator_id)
                    .bind(&batch.period)
                    .bind(&r.record_ref)
                    .bind(r.household_ref.clone())
                    .bind(&r.last_contact)
                    .bind(&r.attributes)
                    .bind(&r.linkage);
            }
            q.execute(&mut *tx).await?;
        }
        let keys: Vec<(usize, &str, &str)> = batch
            .records
            .iter()
            .enumerate()
            .flat_map(|(i, r)| r.keys.iter().map(move |(f, v)| (i, *f, v.as_str())))
            .collect();
        for chunk in keys.chunks(INSERT_CHUNK * 2) {
            let mut sql = String::from("-- ingest_batch(): keys\nINSERT INTO match_keys (batch_id, idx, family, value) VALUES ");
            push_placeholders(&mut sql, chunk.len(), 4, self.backend);
            let mut q = sqlx::query(&sql);
            for (i, f, v) in chunk {
                q = q.bind(&batch.id).bind(*i as i64).bind(*f).bind(*v);
            }
            q.execute(&mut *tx).await?;
        }
        update_nodes(&mut tx, self.backend, batch, replaced).await?;
        let mut details = serde_json::json!({
            "operator": batch.operator_id,
            "period": batch.period,
            "batch": batch.id,
            "records": batch.records.len(),
            "ciphertext_sha256": batch.ciphertext_sha256,
        });
        let action = match &existing {
            Some((old, _)) => {
                details["replaced_batch"] = serde_json::Value::String(old.clone());
                "batch_replaced"
            }
            None => "batch_ingested",
        };
        append_audit(&mut tx, actor, action, details, batch.received_at).await?;
        tx.commit().await?;
        Ok(IngestOutcome::Accepted {
            batch_id: batch.id.clone(),
            replaced: existing.map(|(id, _)| id),
        })
    }

    /// Submissions received, per operator and month.
    pub async fn submissions(&self) -> Result<Vec<Submission>> {
        let rows = sqlx::query(
            "-- submissions()\nSELECT operator_id, period, row_count, rejected_count, received_at, id FROM batches ORDER BY period DESC, operator_id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| Submission {
                operator_id: r.get(0),
                period: r.get(1),
                row_count: r.get(2),
                rejected_count: r.get(3),
                received_at: r.get(4),
                batch_id: r.get(5),
            })
            .collect())
    }

    /// Records stored for a batch (for tests and integrity checks).
    pub async fn record_count(&self, batch_id: &str) -> Result<(i64, i64)> {
        let r = sqlx::query("-- record_count()\nSELECT (SELECT COUNT(*) FROM records WHERE batch_id = $1), (SELECT COUNT(*) FROM match_keys WHERE batch_id = $1)")
            .bind(batch_id)
            .fetch_one(&self.pool)
            .await?;
        Ok((r.get(0), r.get(1)))
    }

    /// Integrity counts: batches whose stored records differ from their row count less the
    /// records purged by retention; records filed under another operator or month than their
    /// batch; and node rows out of step with the stored records (a record without its node or
    /// the reverse, a node's value missing or left over). All must be zero. The node values are
    /// compared as two set differences, not row by row: `match_keys` has no value index since
    /// migration 0007, and PostgreSQL then planned the row-by-row form quadratically.
    pub async fn integrity(&self) -> Result<(i64, i64, i64)> {
        let r = sqlx::query(
            "-- integrity()\nSELECT (SELECT COUNT(*) FROM batches b WHERE b.row_count - b.purged_count <> (SELECT COUNT(*) FROM records r WHERE r.batch_id = b.id)), (SELECT COUNT(*) FROM records r JOIN batches b ON b.id = r.batch_id WHERE r.operator_id <> b.operator_id OR r.period <> b.period), \
             (SELECT COUNT(*) FROM records r WHERE NOT EXISTS (SELECT 1 FROM nodes n WHERE n.operator_id = r.operator_id AND n.record_ref = r.record_ref)) \
             + (SELECT COUNT(*) FROM nodes n WHERE NOT EXISTS (SELECT 1 FROM records r WHERE r.operator_id = n.operator_id AND r.record_ref = n.record_ref)) \
             + (SELECT COUNT(*) FROM (SELECT value, operator_id, record_ref FROM node_keys EXCEPT SELECT m.value, r.operator_id, r.record_ref FROM records r JOIN match_keys m ON m.batch_id = r.batch_id AND m.idx = r.idx) AS left_over) \
             + (SELECT COUNT(*) FROM (SELECT m.value, r.operator_id, r.record_ref FROM records r JOIN match_keys m ON m.batch_id = r.batch_id AND m.idx = r.idx EXCEPT SELECT value, operator_id, record_ref FROM node_keys) AS missing)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((r.get(0), r.get(1), r.get(2)))
    }

    /// The node table, in reference order: every record's months as ingestion merged them
    /// (what an incremental run reads; a full run merges the same from the monthly rows).
    pub async fn stored_nodes(&self) -> Result<Vec<crate::linkage::Node>> {
        let sql = format!(
            "-- stored_nodes()\nSELECT {}({NODE_LINE}, '\n') FROM nodes GROUP BY substr(record_ref, 3, 1)",
            self.backend.concat()
        );
        let mut set = NodeSet::default();
        for text in self.concatenated(sqlx::query(&sql)).await? {
            node_lines(&mut set, &text);
        }
        Ok(set.in_reference_order().nodes)
    }

    /// Every record stored for months up to `up_to` as a linkage node: one per operator and
    /// record reference (months merged), with its keys and non-identifying attributes, read
    /// from the compact profile written at ingestion.
    pub async fn linkage_nodes(&self, up_to: &str) -> Result<Vec<crate::linkage::Node>> {
        let mut set = NodeSet::default();
        // One row per 10,000 records of a batch, their lines concatenated by the database: on
        // SQLite each result row crosses a thread boundary in sqlx, which cost more than reading
        // the row (about 4 s of a 7 s run at 360,000 rows). Each chunk is a range of the
        // primary key (no sort); batches by month, then by id, and lines in record order.
        const LINES: i64 = 10_000;
        let concat = self.backend.concat();
        let mut spans: Vec<(String, String, i64)> = sqlx::query(
            "-- linkage_nodes(): batches\nSELECT MAX(period), batch_id, MAX(idx) FROM records WHERE period <= $1 GROUP BY batch_id",
        )
        .bind(up_to)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
        // Months in order, as the node table merges them at ingestion (see `update_nodes`);
        // sorted here, not by the database: its collation may not be byte order.
        spans.sort();
        let sql = format!(
            "-- linkage_nodes(): records\nSELECT {concat}(CAST(idx AS TEXT) || '\t' || operator_id || '\t' || record_ref || '\t' || COALESCE(household_ref, '') || '\t' || COALESCE(linkage, ''), '\n') FROM records WHERE batch_id = $1 AND idx >= $2 AND idx < $3"
        );
        let mut legacy: Vec<(String, i64, usize)> = Vec::new();
        for (_, batch_id, last) in spans {
            for start in (0..=last).step_by(LINES as usize) {
                let text: Option<String> = sqlx::query(&sql)
                    .bind(&batch_id)
                    .bind(start)
                    .bind(start + LINES)
                    .fetch_one(&self.pool)
                    .await?
                    .get(0);
                let Some(text) = text else { continue };
                let mut lines: Vec<(i64, [&str; 4])> = text
                    .split('\n')
                    .filter_map(|line| {
                        let mut f = line.splitn(5, '\t');
                        let idx = f.next()?.parse().ok()?;
                        Some((idx, [f.next()?, f.next()?, f.next()?, f.next()?]))
                    })
                    .collect();
                lines.sort_unstable_by_key(|l| l.0);
                for (idx, [op, rf, hh, profile]) in lines {
                    let at = set.add(op, rf, Some(hh), Some(profile));
                    // Stored before profiles existed: rebuilt below from attributes and key rows.
                    if profile.is_empty() {
                        legacy.push((batch_id.clone(), idx, at));
                    }
                }
            }
        }
        let mut conn = self.pool.acquire().await?;
        for (batch_id, idx, at) in legacy {
            let profile = legacy_profile(&mut conn, &batch_id, idx).await?;
            crate::linkage::add_profile(&mut set.nodes[at], &profile);
        }
        Ok(set.nodes)
    }

    /// The records of the batches received since the last run, and their households.
    pub async fn fresh_records(&self, fresh_batches: &[String]) -> Result<FreshRecords> {
        let sql = format!(
            "-- incremental_nodes(): fresh\nSELECT operator_id, record_ref, household_ref FROM records WHERE batch_id IN ({})",
            placeholders(1, fresh_batches.len(), self.backend)
        );
        let mut out = FreshRecords::default();
        for r in bind_all(&sql, fresh_batches).fetch_all(&self.pool).await? {
            let key: (String, String) = (r.get(0), r.get(1));
            if let Some(h) = r.get::<Option<String>, _>(2) {
                out.households.insert((key.0.clone(), h));
            }
            out.records.insert(key);
        }
        Ok(out)
    }

    /// Grows `refs` by the other members of `households`, then by the whole persons and
    /// households (from the last run's links) of every record so found. Returns the last run's
    /// (person, household) ids of every record in `refs` that had them.
    pub async fn whole_persons(
        &self,
        refs: &mut std::collections::BTreeSet<(String, String)>,
        households: &std::collections::BTreeSet<(String, String)>,
    ) -> Result<rustc_hash::FxHashMap<(String, String), (i64, i64)>> {
        use std::collections::BTreeSet;
        const CHUNK: usize = 500;
        // Each statement's rows come concatenated in one (see `concatenated`).
        let concat = self.backend.concat();
        let select = format!("SELECT {concat}(record_ref, '\n') FROM records");
        for (operator, r) in self
            .rows_by_operator(
                "household members",
                &select,
                "household_ref",
                "",
                households,
            )
            .await?
        {
            if let Some(text) = r.get::<Option<String>, _>(0) {
                refs.extend(
                    text.split('\n')
                        .map(|rf| (operator.clone(), rf.to_string())),
                );
            }
        }
        let (mut persons, mut household_ids) = (BTreeSet::new(), BTreeSet::new());
        let select = format!("SELECT {concat}({LINK_LINE}, '\n') FROM record_links");
        for (_, r) in self
            .rows_by_operator("links", &select, "record_ref", "", refs)
            .await?
        {
            if let Some(text) = r.get::<Option<String>, _>(0) {
                for l in link_lines(&text) {
                    persons.insert(l.person_id);
                    household_ids.insert(l.household_id);
                }
            }
        }
        // Every linked record of `refs` belongs to one of these persons: its link comes back
        // with the members, so the links are read once.
        let mut previous = rustc_hash::FxHashMap::default();
        for (column, ids) in [("person_id", &persons), ("household_id", &household_ids)] {
            let ids: Vec<i64> = ids.iter().copied().collect();
            for chunk in ids.chunks(CHUNK) {
                let sql = format!(
                    "-- incremental_nodes(): members\nSELECT {concat}({LINK_LINE}, '\n') FROM record_links WHERE {column} IN ({})",
                    placeholders(1, chunk.len(), self.backend)
                );
                let q = chunk.iter().fold(sqlx::query(&sql), |q, id| q.bind(*id));
                for text in self.concatenated(q).await? {
                    for l in link_lines(&text) {
                        refs.insert((l.operator_id.clone(), l.record_ref.clone()));
                        previous
                            .insert((l.operator_id, l.record_ref), (l.person_id, l.household_id));
                    }
                }
            }
        }
        Ok(previous)
    }

    /// The nodes of the records of the fresh batches and of every stored record holding one of
    /// their keyed values, for values held by at most `max_nodes` records, marked fresh when in
    /// `fresh`; and (value, holders) of each more common value, which is counted, not followed.
    /// One statement over the node tables (kept at ingestion, every month of a record merged):
    /// each value's holders are counted by a grouped walk of its index, then the holders of
    /// the values under the limit are read, one row per record whatever the length of its
    /// history — no round trip per value and no monthly rows.
    pub async fn sharing_nodes(
        &self,
        fresh_batches: &[String],
        max_nodes: i64,
        fresh: &std::collections::HashSet<(String, String)>,
    ) -> Result<(Increment, Vec<(String, i64)>)> {
        let batch_list = placeholders(1, fresh_batches.len(), self.backend);
        let limit = placeholders(fresh_batches.len() + 1, 1, self.backend);
        let concat = self.backend.concat();
        // The nodes come concatenated in about 64 rows (by a character of the reference), as a
        // full run reads them (see `linkage_nodes`): on SQLite each result row crosses a thread
        // in sqlx, which cost more than reading it (4.5 s for 241,000 rows at 160,000 persons).
        let sql = format!(
            "-- incremental_nodes(): sharing\nWITH f AS MATERIALIZED (SELECT DISTINCT operator_id, record_ref FROM records WHERE batch_id IN ({batch_list})), \
             c AS MATERIALIZED (SELECT value, COUNT(*) AS n FROM node_keys WHERE value IN (SELECT k.value FROM node_keys k WHERE (k.operator_id, k.record_ref) IN (SELECT operator_id, record_ref FROM f)) GROUP BY value) \
             SELECT {concat}({NODE_LINE}, '\n') AS nodes, NULL AS value, NULL AS n FROM nodes WHERE (operator_id, record_ref) IN (SELECT operator_id, record_ref FROM f UNION SELECT operator_id, record_ref FROM node_keys WHERE value IN (SELECT value FROM c WHERE n <= {limit})) GROUP BY substr(record_ref, 3, 1) \
             UNION ALL SELECT NULL, value, n FROM c WHERE n > {limit}"
        );
        use futures_util::TryStreamExt as _;
        // Each chunk is parsed as it arrives, while the database builds the next.
        let mut set = NodeSet::default();
        let mut common = Vec::new();
        let query = bind_all(&sql, fresh_batches).bind(max_nodes);
        let mut rows = query.fetch(&self.pool);
        while let Some(r) = rows.try_next().await? {
            match r.get::<Option<String>, _>(0) {
                Some(chunk) => node_lines(&mut set, &chunk),
                None => common.push((r.get(1), r.get(2))),
            }
        }
        Ok((
            set.in_reference_order()
                .into_increment(fresh, &Default::default()),
            common,
        ))
    }

    /// The nodes of `refs` (every month merged), marked fresh when in `fresh`, with their ids
    /// from the last run (`previous`, as [`Store::whole_persons`] returns them).
    pub async fn step_nodes(
        &self,
        refs: &std::collections::BTreeSet<(String, String)>,
        fresh: &std::collections::HashSet<(String, String)>,
        previous: &rustc_hash::FxHashMap<(String, String), (i64, i64)>,
    ) -> Result<Increment> {
        // One concatenated row per statement (see `concatenated`).
        let select = format!(
            "SELECT {}({NODE_LINE}, '\n') FROM nodes",
            self.backend.concat()
        );
        let mut set = NodeSet::default();
        for (_, r) in self
            .rows_by_operator("nodes", &select, "record_ref", "", refs)
            .await?
        {
            if let Some(text) = r.get::<Option<String>, _>(0) {
                node_lines(&mut set, &text);
            }
        }
        Ok(set.in_reference_order().into_increment(fresh, previous))
    }

    /// [`rows_by_operator`] on a pooled connection, for an incremental run's reads.
    async fn rows_by_operator(
        &self,
        what: &str,
        select: &str,
        column: &str,
        tail: &str,
        pairs: &std::collections::BTreeSet<(String, String)>,
    ) -> Result<Vec<(String, sqlx::any::AnyRow)>> {
        let mut conn = self.pool.acquire().await?;
        let what = format!("incremental_nodes(): {what}");
        rows_by_operator(&mut conn, self.backend, &what, select, column, tail, pairs).await
    }

    /// The batches stored up to `period`, each as `id:purged_count`, sorted: what a run links.
    /// An incremental run may build on the last run only if all of the last run's are still
    /// there unchanged (nothing replaced or purged since).
    pub async fn linked_batches(&self, up_to: &str) -> Result<Vec<String>> {
        let mut batches: Vec<String> = sqlx::query(
            "-- linked_batches()\nSELECT id, purged_count FROM batches WHERE period <= $1",
        )
        .bind(up_to)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| format!("{}:{}", r.get::<String, _>(0), r.get::<i64, _>(1)))
        .collect();
        // Sorted here, not by the database: its collation may not be byte order.
        batches.sort();
        Ok(batches)
    }

    /// The month and summary of the last linkage run.
    pub async fn last_linkage_run(&self) -> Result<Option<(String, String)>> {
        Ok(sqlx::query(
            "-- last_linkage_run()\nSELECT period, summary FROM linkage_runs ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?
        .map(|r| (r.get(0), r.get(1))))
    }

    /// Brings PostgreSQL's planner statistics up to date for the tables a linkage run reads
    /// (a no-op on SQLite, whose planner keeps none unless asked); also after a purge, since
    /// the statistics hold sampled values of the rows.
    ///
    /// Why: autovacuum may sample a table while an ingestion is still uncommitted (or after a
    /// killed one left only dead rows); it then records zero rows over a non-empty table, and
    /// the planner, scaling that density by the table's size, expects one row from a month of
    /// records. Joins planned on that estimate compare every row with every other: on the
    /// kill-the-hub test's 49,500 records the integrity check went from 3 s to 36-78 s. A run
    /// is where the large joins are, so it analyses first (under a second at that size), under
    /// the write lock so that its own sample never sees one of this hub's ingestions half-done.
    pub async fn refresh_planner_statistics(&self) -> Result<()> {
        if self.backend == Backend::Postgres {
            let _guard = self.write_lock.lock().await;
            sqlx::query(
                "-- refresh_planner_statistics()\nANALYZE batches, records, match_keys, nodes, node_keys, record_links, linkage_ids",
            )
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    /// The latest month with stored records.
    pub async fn latest_period(&self) -> Result<Option<String>> {
        Ok(
            sqlx::query("-- latest_period()\nSELECT MAX(period) FROM batches")
                .fetch_one(&self.pool)
                .await?
                .try_get::<Option<String>, _>(0)?,
        )
    }

    /// The person and household ids of the last linkage run, in (operator, record reference)
    /// order.
    pub async fn record_links(&self) -> Result<Vec<RecordLink>> {
        let mut links = self.links_in_any_order().await?;
        links.sort_unstable_by(|a, b| {
            (&a.operator_id, &a.record_ref).cmp(&(&b.operator_id, &b.record_ref))
        });
        Ok(links)
    }

    /// The last run's links, read concatenated in a few rows (see [`Store::concatenated`]).
    async fn links_in_any_order(&self) -> Result<Vec<RecordLink>> {
        let sql = format!(
            "-- record_links()\nSELECT {}({LINK_LINE}, '\n') FROM record_links GROUP BY substr(record_ref, 3, 1)",
            self.backend.concat()
        );
        Ok(self
            .concatenated(sqlx::query(&sql))
            .await?
            .iter()
            .flat_map(|chunk| link_lines(chunk))
            .collect())
    }

    /// The last run's (person, household) ids keyed by (operator, record reference).
    pub async fn record_ids(&self) -> Result<rustc_hash::FxHashMap<(String, String), (i64, i64)>> {
        Ok(self
            .links_in_any_order()
            .await?
            .into_iter()
            .map(|l| ((l.operator_id, l.record_ref), (l.person_id, l.household_id)))
            .collect())
    }

    /// Ids of a kind (`person`, `household`) still holding records, and the next id to issue.
    pub async fn live_ids(&self, kind: &str) -> Result<(Vec<i64>, i64)> {
        let sql = format!(
            "-- live_ids(): live\nSELECT {}(CAST(id AS TEXT), ',') FROM linkage_ids WHERE kind = $1 AND retired_run IS NULL GROUP BY id % 64",
            self.backend.concat()
        );
        let mut live: Vec<i64> = self
            .concatenated(sqlx::query(&sql).bind(kind))
            .await?
            .iter()
            .flat_map(|chunk| chunk.split(','))
            .filter_map(|id| id.parse().ok())
            .collect();
        live.sort_unstable();
        Ok((live, self.next_linkage_id(kind).await?))
    }

    /// The text of each row's first column, for statements that concatenate many rows into a
    /// few (grouped by a bucket): sqlx's SQLite driver hands every result row across a thread,
    /// which costs more than reading it when a statement returns hundreds of thousands (0.9 s
    /// of a 7 s full run for the last run's 279,000 links, one row each).
    async fn concatenated<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<Vec<String>> {
        Ok(query
            .fetch_all(&self.pool)
            .await?
            .iter()
            .filter_map(|r| r.get::<Option<String>, _>(0))
            .collect())
    }

    /// The next id of a kind (`person`, `household`) to issue: ids are never reused.
    pub async fn next_linkage_id(&self, kind: &str) -> Result<i64> {
        Ok(sqlx::query(
            "-- next_linkage_id()\nSELECT COALESCE(MAX(id), 0) + 1 FROM linkage_ids WHERE kind = $1",
        )
        .bind(kind)
        .fetch_one(&self.pool)
        .await?
        .get(0))
    }

    /// Stores a linkage run in one transaction: the new links replace the old ones, new ids are
    /// registered, vanished ones retired, events and the summary (JSON) kept, and the run
    /// audited.
    pub async fn save_linkage_run(&self, run: &LinkageRun, summary: &str) -> Result<i64> {
        let _guard = self.write_lock.lock().await;
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query(
            "-- save_linkage_run(): id\nSELECT COALESCE(MAX(id), 0) + 1 FROM linkage_runs",
        )
        .fetch_one(&mut *tx)
        .await?
        .get(0);
        // Removed links and retired ids go by lists: a purge can touch a whole territory's.
        let removed: std::collections::BTreeSet<(String, String)> =
            run.removed.iter().cloned().collect();
        for (operator, refs) in group_by_operator(&removed) {
            for chunk in refs.chunks(INSERT_CHUNK) {
                let sql = format!(
                    "-- save_linkage_run(): removed\nDELETE FROM record_links WHERE operator_id = {} AND record_ref IN ({})",
                    placeholders(1, 1, self.backend),
                    placeholders(2, chunk.len(), self.backend)
                );
                bind_refs(&sql, operator, chunk).execute(&mut *tx).await?;
            }
        }
        for chunk in run.links.chunks(INSERT_CHUNK * 2) {
            let mut sql = String::from("-- save_linkage_run(): links\nINSERT INTO record_links (operator_id, record_ref, person_id, household_id) VALUES ");
            push_placeholders(&mut sql, chunk.len(), 4, self.backend);
            sql.push_str(" ON CONFLICT (operator_id, record_ref) DO UPDATE SET person_id = excluded.person_id, household_id = excluded.household_id");
            let mut q = sqlx::query(&sql);
            for l in chunk {
                q = q
                    .bind(&l.operator_id)
                    .bind(&l.record_ref)
                    .bind(l.person_id)
                    .bind(l.household_id);
            }
            q.execute(&mut *tx).await?;
        }
        for (kind, created) in &run.created {
            for chunk in created.chunks(INSERT_CHUNK * 2) {
                let mut sql = String::from("-- save_linkage_run(): ids\nINSERT INTO linkage_ids (kind, id, first_run) VALUES ");
                push_placeholders(&mut sql, chunk.len(), 3, self.backend);
                let mut q = sqlx::query(&sql);
                for new_id in chunk {
                    q = q.bind(*kind).bind(*new_id).bind(id);
                }
                q.execute(&mut *tx).await?;
            }
        }
        for (kind, retired) in &run.retired {
            for chunk in retired.chunks(INSERT_CHUNK) {
                let sql = format!(
                    "-- save_linkage_run(): retire\nUPDATE linkage_ids SET retired_run = {} WHERE kind = {} AND id IN ({})",
                    placeholders(1, 1, self.backend),
                    placeholders(2, 1, self.backend),
                    placeholders(3, chunk.len(), self.backend)
                );
                chunk
                    .iter()
                    .fold(sqlx::query(&sql).bind(id).bind(*kind), |q, old| {
                        q.bind(*old)
                    })
                    .execute(&mut *tx)
                    .await?;
            }
        }
        for chunk in run.events.chunks(INSERT_CHUNK) {
            let mut sql = String::from("-- save_linkage_run(): events\nINSERT INTO linkage_events (run_id, kind, id, other_id, records) VALUES ");
            push_placeholders(&mut sql, chunk.len(), 5, self.backend);
            let mut q = sqlx::query(&sql);
            for e in chunk {
                q = q
                    .bind(id)
                    .bind(&e.kind)
                    .bind(e.id)
                    .bind(e.other_id)
                    .bind(e.records);
            }
            q.execute(&mut *tx).await?;
        }
        sqlx::query("-- save_linkage_run(): run\nINSERT INTO linkage_runs (id, period, run_at, summary) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(&run.period)
            .bind(run.run_at)
            .bind(summary)
            .execute(&mut *tx)
            .await?;
        append_audit(
            &mut tx,
            &run.actor,
            "linkage_processed",
            run.audit.clone(),
            run.run_at,
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The summaries of the latest run for `period` and of the latest run of an earlier month.
    pub async fn linkage_summaries(
        &self,
        period: &str,
    ) -> Result<(Option<String>, Option<String>)> {
        let current = sqlx::query(
            "-- linkage_summaries(): current\nSELECT summary FROM linkage_runs WHERE period = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(period)
        .fetch_optional(&self.pool)
        .await?
        .map(|r| r.get::<String, _>(0));
        let previous = sqlx::query(
            "-- linkage_summaries(): previous\nSELECT summary FROM linkage_runs WHERE period < $1 ORDER BY period DESC, id DESC LIMIT 1",
        )
        .bind(period)
        .fetch_optional(&self.pool)
        .await?
        .map(|r| r.get::<String, _>(0));
        Ok((current, previous))
    }

    /// The events found by runs for `period`.
    pub async fn linkage_events(&self, period: &str) -> Result<Vec<StoredEvent>> {
        let rows = sqlx::query(
            "-- linkage_events()\nSELECT e.kind, e.id, e.other_id, e.records FROM linkage_events e JOIN linkage_runs r ON r.id = e.run_id WHERE r.period = $1 ORDER BY e.run_id, e.kind, e.id, e.other_id",
        )
        .bind(period)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| StoredEvent {
                kind: r.get(0),
                id: r.get(1),
                other_id: r.get(2),
                records: r.get(3),
            })
            .collect())
    }

    /// `operator,record_ref,person_id,household_id` of every record stored for `period`.
    pub async fn period_links(&self, period: &str) -> Result<Vec<RecordLink>> {
        let rows = sqlx::query(
            "-- period_links()\nSELECT DISTINCT r.operator_id, r.record_ref, l.person_id, l.household_id FROM records r JOIN record_links l ON l.operator_id = r.operator_id AND l.record_ref = r.record_ref WHERE r.period = $1 ORDER BY r.operator_id, r.record_ref",
        )
        .bind(period)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(link_from_row).collect())
    }

    /// The raw ciphertext and signature of a batch, while retained.
    pub async fn raw_batch(&self, batch_id: &str) -> Result<Option<(Option<Vec<u8>>, String)>> {
        let r = sqlx::query(
            "-- raw_batch()\nSELECT ciphertext, signature FROM batch_blobs WHERE batch_id = $1",
        )
        .bind(batch_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(r.map(|r| (r.get(0), r.get(1))))
    }

    // ----- audit -----

    /// Appends one audit event in its own transaction.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        details: serde_json::Value,
        at: i64,
    ) -> Result<u64> {
        let _guard = self.write_lock.lock().await;
        let mut tx = self.pool.begin().await?;
        let seq = append_audit(&mut tx, actor, action, details, at).await?;
        tx.commit().await?;
        Ok(seq)
    }

    /// Every audit leaf, in order.
    pub async fn audit_leaves(&self) -> Result<Vec<(i64, String)>> {
        let rows =
            sqlx::query("-- audit_leaves()\nSELECT seq, leaf FROM audit_entries ORDER BY seq")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// The latest signed checkpoint note.
    pub async fn last_checkpoint(&self) -> Result<Option<(i64, String)>> {
        let r = sqlx::query("-- last_checkpoint()\nSELECT tree_size, note FROM checkpoints ORDER BY tree_size DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(r.map(|r| (r.get(0), r.get(1))))
    }

    /// Every stored checkpoint note.
    pub async fn checkpoints(&self) -> Result<Vec<(i64, String)>> {
        let rows = sqlx::query(
            "-- checkpoints()\nSELECT tree_size, note FROM checkpoints ORDER BY tree_size",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Saves a signed checkpoint (a tree size is signed once).
    pub async fn save_checkpoint(&self, size: i64, note: &str, at: i64) -> Result<()> {
        let _guard = self.write_lock.lock().await;
        sqlx::query("-- save_checkpoint()\nINSERT INTO checkpoints (tree_size, note, signed_at) VALUES ($1, $2, $3) ON CONFLICT (tree_size) DO NOTHING")
            .bind(size)
            .bind(note)
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Runs raw SQL; for tamper tests only.
    #[doc(hidden)]
    pub async fn execute_raw(&self, sql: &str) -> Result<u64> {
        Ok(sqlx::query(sql).execute(&self.pool).await?.rows_affected())
    }

    // ----- retention -----

    /// Deletes what retention no longer allows; audited by the caller.
    ///
    /// Records go `records_months` after the person's last contact. Until linkage exists,
    /// the person is approximated by the operator's record reference: a record is purged when
    /// no record with the same reference at that operator has a recent contact.
    pub async fn purge(
        &self,
        record_cutoff: &str,
        raw_cutoff: i64,
        now: i64,
    ) -> Result<PurgeCounts> {
        let _guard = self.write_lock.lock().await;
        let mut tx = self.pool.begin().await?;
        // Count per batch first, so that received = stored + purged stays checkable.
        sqlx::query(
            "-- purge(): count\nUPDATE batches SET purged_count = purged_count + (SELECT COUNT(*) FROM records r WHERE r.batch_id = batches.id AND r.last_contact < $1 AND NOT EXISTS (SELECT 1 FROM records recent WHERE recent.operator_id = r.operator_id AND recent.record_ref = r.record_ref AND recent.last_contact >= $1))",
        )
        .bind(record_cutoff)
        .execute(&mut *tx)
        .await?;
        let records = sqlx::query(
            "-- purge(): records\nDELETE FROM records WHERE last_contact < $1 AND NOT EXISTS (SELECT 1 FROM records recent WHERE recent.operator_id = records.operator_id AND recent.record_ref = records.record_ref AND recent.last_contact >= $1)",
        )
        .bind(record_cutoff)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("-- purge(): orphan keys\nDELETE FROM match_keys WHERE NOT EXISTS (SELECT 1 FROM records r WHERE r.batch_id = match_keys.batch_id AND r.idx = match_keys.idx)")
            .execute(&mut *tx)
            .await?;
        // Retention removes whole records (every month of one), so their nodes go.
        let gone = ref_pairs(
            &mut tx,
            sqlx::query("-- purge(): nodes\nSELECT operator_id, record_ref FROM nodes n WHERE NOT EXISTS (SELECT 1 FROM records r WHERE r.operator_id = n.operator_id AND r.record_ref = n.record_ref)"),
        )
        .await?;
        rebuild_nodes(&mut tx, self.backend, &gone).await?;
        let raw_batches = sqlx::query(
            "-- purge(): raw batches\nUPDATE batch_blobs SET ciphertext = NULL WHERE ciphertext IS NOT NULL AND batch_id IN (SELECT id FROM batches WHERE received_at < $1)",
        )
        .bind(raw_cutoff)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let nonces = sqlx::query("-- purge(): nonces\nDELETE FROM nonces WHERE seen_at < $1")
            .bind(raw_cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let sessions =
            sqlx::query("-- purge(): sessions\nDELETE FROM sessions WHERE expires_at < $1")
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        let counts = PurgeCounts {
            records,
            raw_batches,
            nonces,
            sessions,
        };
        append_audit(
            &mut tx,
            "hub",
            "purge",
            serde_json::to_value(&counts).unwrap_or_default(),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(counts)
    }

    // ----- accounts -----

    /// Creates an admin account with an argon2 hash.
    pub async fn create_admin(&self, username: &str, password_hash: &str, at: i64) -> Result<()> {
        let _guard = self.write_lock.lock().await;
        sqlx::query("-- create_admin()\nINSERT INTO admins (username, password_hash, created_at) VALUES ($1, $2, $3)")
            .bind(username)
            .bind(password_hash)
            .bind(at)
            .execute(&self.pool)
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::AlreadyExists(_) => StoreError::AlreadyExists(format!("account {username}")),
                other => other,
            })?;
        Ok(())
    }

    /// An admin's password hash.
    pub async fn admin_hash(&self, username: &str) -> Result<Option<String>> {
        let r =
            sqlx::query("-- admin_hash()\nSELECT password_hash FROM admins WHERE username = $1")
                .bind(username)
                .fetch_optional(&self.pool)
                .await?;
        Ok(r.map(|r| r.get(0)))
    }

    /// Stores a session by the hash of its token.
    pub async fn create_session(
        &self,
        token_hash: &str,
        username: &str,
        expires_at: i64,
    ) -> Result<()> {
        let _guard = self.write_lock.lock().await;
        sqlx::query("-- create_session()\nINSERT INTO sessions (token_hash, username, expires_at) VALUES ($1, $2, $3)")
            .bind(token_hash)
            .bind(username)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The user of a live session.
    pub async fn session_user(&self, token_hash: &str, now: i64) -> Result<Option<String>> {
        let r = sqlx::query("-- session_user()\nSELECT username FROM sessions WHERE token_hash = $1 AND expires_at > $2")
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        Ok(r.map(|r| r.get(0)))
    }
}

/// Runs one administrative statement (CREATE/DROP DATABASE) on a server URL; for tests and
/// set-up scripts. Errors are returned as text with any password removed.
pub async fn admin_execute(url: &str, sql: &str) -> std::result::Result<(), String> {
    install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .map_err(|e| redact(&e.to_string()))?;
    let result = sqlx::query(sql)
        .execute(&pool)
        .await
        .map(|_| ())
        .map_err(|e| redact(&e.to_string()));
    pool.close().await;
    result
}

async fn append_audit(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    actor: &str,
    action: &str,
    details: serde_json::Value,
    at: i64,
) -> Result<u64> {
    let next: i64 = sqlx::query(
        "-- append_audit(): next\nSELECT COALESCE(MAX(seq), -1) + 1 FROM audit_entries",
    )
    .fetch_one(&mut **tx)
    .await?
    .get(0);
    let leaf = audit::event_leaf(next as u64, at, actor, action, details);
    sqlx::query("-- append_audit()\nINSERT INTO audit_entries (seq, leaf) VALUES ($1, $2)")
        .bind(next)
        .bind(leaf)
        .execute(&mut **tx)
        .await?;
    Ok(next as u64)
}

fn link_from_row(r: &sqlx::any::AnyRow) -> RecordLink {
    RecordLink {
        operator_id: r.get(0),
        record_ref: r.get(1),
        person_id: r.get(2),
        household_id: r.get(3),
    }
}

fn operator_from_row(r: &sqlx::any::AnyRow) -> Result<EnrolledOperator> {
    Ok(EnrolledOperator {
        id: r.try_get(0)?,
        display_name: r.try_get(1)?,
        signing_public_key: r.try_get(2)?,
        age_recipient: r.try_get(3)?,
        active: r.try_get::<i64, _>(4)? == 1,
        enrolled_at: r.try_get(5)?,
    })
}

/// Appends `(…), (…)` placeholders for `rows` rows of `cols` columns, the statement's only
/// parameters: `$N` for PostgreSQL, anonymous `?` for SQLite. A numbered SQLite parameter
/// (`?N`) is found by a linear search of the statement's parameter names at preparation and at
/// every bind (sqlx calls `sqlite3_bind_parameter_name` for each argument), so a multi-row
/// insert of n numbered values costs n²: most of a large ingestion's time.
fn push_placeholders(sql: &mut String, rows: usize, cols: usize, backend: Backend) {
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        match backend {
            Backend::Sqlite => {
                for c in 0..cols {
                    sql.push_str(if c == 0 { "?" } else { ", ?" });
                }
            }
            Backend::Postgres => sql.push_str(&placeholders(r * cols + 1, cols, backend)),
        }
        sql.push(')');
    }
}

/// The profile of a record stored before profiles existed, from its attributes and key rows.
async fn legacy_profile(
    conn: &mut sqlx::AnyConnection,
    batch_id: &str,
    idx: i64,
) -> Result<String> {
    let attributes: String = sqlx::query(
        "-- legacy_profile(): attributes\nSELECT attributes FROM records WHERE batch_id = $1 AND idx = $2",
    )
    .bind(batch_id)
    .bind(idx)
    .fetch_one(&mut *conn)
    .await?
    .get(0);
    let keys: Vec<(String, String)> = sqlx::query(
        "-- legacy_profile(): keys\nSELECT family, value FROM match_keys WHERE batch_id = $1 AND idx = $2",
    )
    .bind(batch_id)
    .bind(idx)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|k| (k.get(0), k.get(1)))
    .collect();
    let keys: Vec<(&str, String)> = keys.iter().map(|(f, v)| (f.as_str(), v.clone())).collect();
    let v: serde_json::Value = serde_json::from_str(&attributes).unwrap_or_default();
    Ok(crate::linkage::profile(&v, &keys))
}

/// `select` (`SELECT … FROM table`) once per operator and chunk of `pairs` (operator, value),
/// restricted to `operator_id` and `column IN (values)`, then `tail`; each row comes with its
/// operator.
async fn rows_by_operator(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    what: &str,
    select: &str,
    column: &str,
    tail: &str,
    pairs: &std::collections::BTreeSet<(String, String)>,
) -> Result<Vec<(String, sqlx::any::AnyRow)>> {
    const CHUNK: usize = 500;
    let mut out = Vec::new();
    for (operator, values) in group_by_operator(pairs) {
        for chunk in values.chunks(CHUNK) {
            let sql = format!(
                "-- {what}\n{select} WHERE operator_id = {} AND {column} IN ({}){tail}",
                placeholders(1, 1, backend),
                placeholders(2, chunk.len(), backend)
            );
            for r in bind_refs(&sql, operator, chunk)
                .fetch_all(&mut *conn)
                .await?
            {
                out.push((operator.to_string(), r));
            }
        }
    }
    Ok(out)
}

/// Brings the node tables up to date with a batch just stored (its records and key rows
/// written): a record whose node was last seen in an earlier month takes this month on top of
/// its stored profile, as a full run merges months in order; a new record starts a node; the
/// nodes in `rebuild` (the records of a replaced batch) and those of a month stored out of
/// order are rebuilt from their stored months.
async fn update_nodes(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    batch: &NewBatch,
    mut rebuild: std::collections::BTreeSet<(String, String)>,
) -> Result<()> {
    let operator = batch.operator_id.as_str();
    // The batch's records as nodes (a reference twice in one batch merges in line order).
    let mut fresh = NodeSet::default();
    for r in &batch.records {
        fresh.add(
            operator,
            &r.record_ref,
            r.household_ref.as_deref(),
            Some(&r.linkage),
        );
    }
    let refs: std::collections::BTreeSet<(String, String)> = fresh
        .nodes
        .iter()
        .map(|n| (n.operator.clone(), n.record_ref.clone()))
        .collect();
    let mut stored: rustc_hash::FxHashMap<String, (Option<String>, String, String)> =
        Default::default();
    for (_, r) in rows_by_operator(
        conn,
        backend,
        "update_nodes(): stored",
        "SELECT record_ref, household_ref, last_period, profile FROM nodes",
        "record_ref",
        "",
        &refs,
    )
    .await?
    {
        stored.insert(r.get(0), (r.get(1), r.get(2), r.get(3)));
    }
    let mut appended: Vec<crate::linkage::Node> = Vec::new();
    for node in fresh.nodes {
        let key = (node.operator.clone(), node.record_ref.clone());
        if rebuild.contains(&key) {
            continue;
        }
        match stored.get(&node.record_ref) {
            Some((_, last, _)) if last.as_str() >= batch.period.as_str() => {
                rebuild.insert(key);
            }
            Some((household, _, profile)) => {
                let mut merged = crate::linkage::Node {
                    operator: node.operator.clone(),
                    record_ref: node.record_ref.clone(),
                    household_ref: household.clone().or_else(|| node.household_ref.clone()),
                    ..Default::default()
                };
                crate::linkage::add_profile(&mut merged, profile);
                crate::linkage::add_profile(&mut merged, &crate::linkage::node_profile(&node));
                appended.push(merged);
            }
            None => appended.push(node),
        }
    }
    for chunk in appended.chunks(INSERT_CHUNK) {
        let mut sql = String::from("-- update_nodes(): nodes\nINSERT INTO nodes (operator_id, record_ref, household_ref, last_period, profile) VALUES ");
        push_placeholders(&mut sql, chunk.len(), 5, backend);
        sql.push_str(" ON CONFLICT (operator_id, record_ref) DO UPDATE SET household_ref = excluded.household_ref, last_period = excluded.last_period, profile = excluded.profile");
        let mut q = sqlx::query(&sql);
        for n in chunk {
            q = q
                .bind(&n.operator)
                .bind(&n.record_ref)
                .bind(n.household_ref.clone())
                .bind(&batch.period)
                .bind(crate::linkage::node_profile(n));
        }
        q.execute(&mut *conn).await?;
    }
    // The appended nodes' values, once each (a value already held stays).
    let appended: std::collections::HashSet<&str> =
        appended.iter().map(|n| n.record_ref.as_str()).collect();
    let values: std::collections::BTreeSet<(&str, &str)> = batch
        .records
        .iter()
        .filter(|r| appended.contains(r.record_ref.as_str()))
        .flat_map(|r| {
            r.keys
                .iter()
                .map(|(_, v)| (v.as_str(), r.record_ref.as_str()))
        })
        .collect();
    let values: Vec<(&str, &str)> = values.into_iter().collect();
    for chunk in values.chunks(INSERT_CHUNK * 2) {
        let mut sql = String::from(
            "-- update_nodes(): keys\nINSERT INTO node_keys (value, operator_id, record_ref) VALUES ",
        );
        push_placeholders(&mut sql, chunk.len(), 3, backend);
        sql.push_str(" ON CONFLICT DO NOTHING");
        let mut q = sqlx::query(&sql);
        for (value, record_ref) in chunk {
            q = q.bind(*value).bind(operator).bind(*record_ref);
        }
        q.execute(&mut *conn).await?;
    }
    rebuild_nodes(conn, backend, &rebuild).await
}

/// One stored month of a record: reference, household, profile, month, batch, position.
type MonthRow = (String, Option<String>, Option<String>, String, String, i64);

/// Rebuilds the node rows of `refs` from their stored months, merged in month order as a full
/// run merges them; a reference with no month stored any more loses its rows.
async fn rebuild_nodes(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    refs: &std::collections::BTreeSet<(String, String)>,
) -> Result<()> {
    const CHUNK: usize = 500;
    for (operator, values) in group_by_operator(refs) {
        for chunk in values.chunks(CHUNK) {
            let (first, list) = (
                placeholders(1, 1, backend),
                placeholders(2, chunk.len(), backend),
            );
            for table in ["nodes", "node_keys"] {
                let sql = format!("-- rebuild_nodes(): clear\nDELETE FROM {table} WHERE operator_id = {first} AND record_ref IN ({list})");
                bind_refs(&sql, operator, chunk).execute(&mut *conn).await?;
            }
            let sql = format!("-- rebuild_nodes(): months\nSELECT record_ref, household_ref, linkage, period, batch_id, idx FROM records WHERE operator_id = {first} AND record_ref IN ({list})");
            let mut rows: Vec<MonthRow> = bind_refs(&sql, operator, chunk)
                .fetch_all(&mut *conn)
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
                .collect();
            // Month order (one batch per operator and month), sorted here: the database's
            // collation may not be byte order.
            rows.sort_by(|a, b| (&a.3, a.5).cmp(&(&b.3, b.5)));
            let mut set = NodeSet::default();
            let mut last: Vec<String> = Vec::new();
            for (record_ref, household, linkage, period, batch_id, idx) in rows {
                let profile = match linkage.filter(|p| !p.is_empty()) {
                    Some(p) => p,
                    None => legacy_profile(conn, &batch_id, idx).await?,
                };
                let at = set.add(operator, &record_ref, household.as_deref(), Some(&profile));
                last.resize(set.nodes.len(), String::new());
                last[at] = period;
            }
            for (nodes, periods) in set
                .nodes
                .chunks(INSERT_CHUNK)
                .zip(last.chunks(INSERT_CHUNK))
            {
                let mut sql = String::from("-- rebuild_nodes(): nodes\nINSERT INTO nodes (operator_id, record_ref, household_ref, last_period, profile) VALUES ");
                push_placeholders(&mut sql, nodes.len(), 5, backend);
                let mut q = sqlx::query(&sql);
                for (n, period) in nodes.iter().zip(periods) {
                    q = q
                        .bind(&n.operator)
                        .bind(&n.record_ref)
                        .bind(n.household_ref.clone())
                        .bind(period)
                        .bind(crate::linkage::node_profile(n));
                }
                q.execute(&mut *conn).await?;
            }
            let sql = format!("-- rebuild_nodes(): keys\nINSERT INTO node_keys (value, operator_id, record_ref) SELECT DISTINCT m.value, r.operator_id, r.record_ref FROM records r JOIN match_keys m ON m.batch_id = r.batch_id AND m.idx = r.idx WHERE r.operator_id = {first} AND r.record_ref IN ({list})");
            bind_refs(&sql, operator, chunk).execute(&mut *conn).await?;
        }
    }
    Ok(())
}

/// The (operator, record reference) pairs in the first two columns of `query`'s rows.
async fn ref_pairs<'q>(
    conn: &mut sqlx::AnyConnection,
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
) -> Result<std::collections::BTreeSet<(String, String)>> {
    Ok(query
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// `sql` bound to an operator, then to each of its references.
fn bind_refs<'q>(
    sql: &'q str,
    operator: &'q str,
    refs: &'q [&'q str],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    refs.iter()
        .fold(sqlx::query(sql).bind(operator), |q, v| q.bind(*v))
}

/// A query with `values` bound in order.
fn bind_all<'q>(
    sql: &'q str,
    values: &'q [String],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    values
        .iter()
        .fold(sqlx::query(sql), |q, v| q.bind(v.as_str()))
}

/// `n` placeholders from parameter number `first`, comma-separated.
fn placeholders(first: usize, n: usize, backend: Backend) -> String {
    (first..first + n)
        .map(|i| match backend {
            // Numbered on both backends, so that one placeholder may appear twice.
            Backend::Sqlite => format!("?{i}"),
            Backend::Postgres => format!("${i}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// (operator, value) pairs grouped by operator, for per-operator IN lists.
fn group_by_operator(
    pairs: &std::collections::BTreeSet<(String, String)>,
) -> Vec<(&str, Vec<&str>)> {
    let mut out: Vec<(&str, Vec<&str>)> = Vec::new();
    for (operator, value) in pairs {
        match out.last_mut() {
            Some((o, values)) if *o == operator.as_str() => values.push(value),
            _ => out.push((operator, vec![value])),
        }
    }
    out
}

/// Inserts a password into a postgres URL (`postgres://user@host/db`).
fn with_password(url: &str, password: &str) -> String {
    let encoded: String = password
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    match url.split_once("://").and_then(|(scheme, rest)| {
        rest.split_once('@')
            .map(|(user, host)| (scheme, user, host))
    }) {
        Some((scheme, user, host)) => format!("{scheme}://{user}:{encoded}@{host}"),
        None => url.to_string(),
    }
}

/// Removes any password from a database message or URL before it is shown.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_inclusive(char::is_whitespace) {
        match word.find("://") {
            Some(i) => {
                let (scheme, rest) = word.split_at(i + 3);
                match (rest.find('@'), rest.find(':')) {
                    (Some(at), Some(colon)) if colon < at => {
                        out.push_str(scheme);
                        out.push_str(&rest[..colon]);
                        out.push_str(":***");
                        out.push_str(&rest[at..]);
                    }
                    _ => out.push_str(word),
                }
            }
            None => out.push_str(word),
        }
    }
    out
}

impl FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        if s.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if s.starts_with("postgres") {
            Ok(Backend::Postgres)
        } else {
            Err(format!("unknown database URL scheme in {}", redact(s)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_redaction() {
        let mut s = String::new();
        push_placeholders(&mut s, 2, 3, Backend::Postgres);
        assert_eq!(s, "($1, $2, $3), ($4, $5, $6)");
        let mut s = String::new();
        push_placeholders(&mut s, 2, 2, Backend::Sqlite);
        assert_eq!(s, "(?, ?), (?, ?)");
        assert_eq!(
            with_password("postgres://u@h/db", "p@ss"),
            "postgres://u:p%40ss@h/db"
        );
        assert_eq!(
            redact("error for postgres://u:secret@h/db here"),
            "error for postgres://u:***@h/db here"
        );
    }
}
