//! The hub as one object: configuration, keys, store; what the HTTP server and the command
//! line both call, so an upload and an offline `ingest FILE` go through the same checks.

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::hmac;
use ring::signature::{Ed25519KeyPair, KeyPair};
use synchro_shared::batch::BatchSignature;
use zeroize::Zeroizing;

use crate::audit::{self, Checkpoint};
use crate::config::LoadedConfig;
use crate::ingest::{open_batch, Acceptance, Refusal};
use crate::store::{EnrolledOperator, IngestOutcome, NewBatch, PurgeCounts, Store, StoredRecord};

/// Errors of hub operations that are not refusals of a batch.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A key file is missing or damaged.
    #[error(transparent)]
    Key(#[from] synchro_keys::KeyError),
    /// The audit log does not extend the last signed checkpoint: it was tampered with.
    #[error("the audit log does not extend its last signed checkpoint (size {size}); refusing to sign. Run `synchro-hub audit verify` and investigate")]
    InconsistentLog {
        /// The last signed size.
        size: u64,
    },
    /// Something else, with a sentence.
    #[error("{0}")]
    Other(String),
}

/// The answer to an accepted (or duplicate) upload.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Accepted {
    /// `accepted` or `duplicate`.
    pub status: &'static str,
    /// Human sentence.
    pub message: String,
    /// Stored batch id.
    pub batch_id: String,
}

/// Why an upload failed: a refusal of the batch, or a hub fault.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The batch is refused (the sender must act).
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The hub failed (the sender may retry).
    #[error(transparent)]
    Hub(#[from] HubError),
}

const AUDIT_KEY_PREFIX: &str = "SYNCHRO-AUDIT-SIGNING-KEY-V1:";
const PEPPER_PREFIX: &str = "SYNCHRO-HUB-PEPPER-V1:";

/// The running hub.
pub struct Hub {
    /// Configuration.
    pub cfg: LoadedConfig,
    /// Database.
    pub store: Store,
    identity: age::x25519::Identity,
    pepper: hmac::Key,
    audit_key: Ed25519KeyPair,
    /// Serialises linkage runs (each reads the ids the previous one wrote) and remembers which
    /// accepted batches the last run of the latest month covered.
    processing: tokio::sync::Mutex<Coverage>,
    /// Batches accepted by this process so far: the ticket each takes to wait for a run.
    accepted: std::sync::atomic::AtomicU64,
}

/// What the last successful run of the latest month covered.
#[derive(Default)]
struct Coverage {
    /// Tickets up to this one were accepted before that run began.
    covered: u64,
    /// That run's summary.
    last: Option<crate::processing::RunSummary>,
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Creates the hub-only secrets (pepper and audit key) next to the age identity.
pub fn create_hub_secrets(pepper_path: &Path, audit_path: &Path) -> Result<(), HubError> {
    let rng = ring::rand::SystemRandom::new();
    let mut pepper = Zeroizing::new([0u8; 32]);
    ring::rand::SecureRandom::fill(&rng, pepper.as_mut())
        .map_err(|_| HubError::Other("random generator failed".into()))?;
    synchro_keys::secret_file::write_secret(
        pepper_path,
        &format!(
            "# Synchro hub pepper: second keyed pass over match keys. KEEP SECRET, hub only.\n{PEPPER_PREFIX}{}\n",
            URL_SAFE_NO_PAD.encode(pepper.as_ref())
        ),
    )?;
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
        .map_err(|_| HubError::Other("cannot generate the audit key".into()))?;
    synchro_keys::secret_file::write_secret(
        audit_path,
        &format!(
            "# Synchro hub audit checkpoint signing key (Ed25519). KEEP SECRET.\n{AUDIT_KEY_PREFIX}{}\n",
            URL_SAFE_NO_PAD.encode(pkcs8.as_ref())
        ),
    )?;
    Ok(())
}

fn secret_value(path: &Path, prefix: &str) -> Result<Zeroizing<Vec<u8>>, HubError> {
    let text = synchro_keys::secret_file::read_secret(path)?;
    let b64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix(prefix))
        .ok_or_else(|| {
            HubError::Other(format!(
                "{}: not a Synchro hub key file ({prefix}…)",
                path.display()
            ))
        })?;
    Ok(Zeroizing::new(URL_SAFE_NO_PAD.decode(b64).map_err(
        |_| HubError::Other(format!("{}: damaged key", path.display())),
    )?))
}

/// Loads the audit signing key from its file.
pub fn load_audit_key(path: &Path) -> Result<Ed25519KeyPair, HubError> {
    let pkcs8 = secret_value(path, AUDIT_KEY_PREFIX)?;
    Ed25519KeyPair::from_pkcs8(&pkcs8)
        .map_err(|_| HubError::Other(format!("{}: damaged audit key", path.display())))
}

impl Hub {
    /// Opens the hub: keys, then the database (migrated).
    pub async fn open(cfg: LoadedConfig) -> Result<Self, HubError> {
        let keys = &cfg.config.keys;
        let identity = synchro_keys::hub::load_identity(&cfg.resolve(&keys.identity))?;
        let pepper_bytes = secret_value(&cfg.resolve(&keys.pepper), PEPPER_PREFIX)?;
        let pepper = hmac::Key::new(hmac::HMAC_SHA256, &pepper_bytes);
        let audit_key = load_audit_key(&cfg.resolve(&keys.audit_signing))?;
        let password = match &cfg.config.database.password_file {
            Some(p) => Some(
                synchro_keys::secret_file::read_secret(&cfg.resolve(p))?
                    .trim()
                    .to_string(),
            ),
            None => None,
        };
        let store = Store::connect(&cfg.database_url(), password.as_deref()).await?;
        Ok(Hub {
            cfg,
            store,
            identity,
            pepper,
            audit_key,
            processing: tokio::sync::Mutex::new(Coverage::default()),
            accepted: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// The checkpoint key name (the log origin).
    pub fn key_name(&self) -> String {
        self.cfg.origin()
    }

    /// The audit public key.
    pub fn audit_public_key(&self) -> Vec<u8> {
        self.audit_key.public_key().as_ref().to_vec()
    }

    /// The verifier key DPOs keep to check checkpoints.
    pub fn verifier_key(&self) -> String {
        audit::verifier_key(&self.key_name(), self.audit_key.public_key().as_ref())
    }

    fn acceptance(&self) -> Acceptance {
        let l = &self.cfg.config.linkage;
        Acceptance {
            key_epochs: l.accepted_epochs.clone(),
            key_fingerprints: l
                .fingerprints
                .iter()
                .filter_map(|(e, f)| Some((e.parse().ok()?, f.clone())))
                .collect(),
        }
    }

    /// The hub's second keyed pass: match key → value stored (a leaked operator secret alone
    /// cannot test an identity against the database).
    fn rekey(&self, family: &str, value: &str) -> String {
        // The family's HMAC domain, so families sharing one (tsd, tfd) still compare equal.
        let domain = synchro_shared::pseudonym::KeyFamily::from_code(family)
            .map(|f| f.domain())
            .unwrap_or(family);
        let mut ctx = hmac::Context::with_key(&self.pepper);
        ctx.update(domain.as_bytes());
        ctx.update(&[0x1f]);
        ctx.update(value.as_bytes());
        URL_SAFE_NO_PAD.encode(&ctx.sign().as_ref()[..16])
    }

    /// Verifies, opens and stores an uploaded batch; refusals are audited.
    pub async fn accept_upload(
        &self,
        ciphertext: &[u8],
        signature: Option<&str>,
        actor: &str,
    ) -> Result<Accepted, UploadError> {
        match self.try_accept(ciphertext, signature, actor).await {
            Err(UploadError::Refused(refusal)) => {
                let details =
                    serde_json::json!({"code": refusal.code(), "bytes": ciphertext.len()});
                self.store
                    .audit(actor, "batch_refused", details, now())
                    .await
                    .map_err(HubError::from)?;
                self.checkpoint().await?;
                Err(UploadError::Refused(refusal))
            }
            other => other,
        }
    }

    async fn try_accept(
        &self,
        ciphertext: &[u8],
        signature: Option<&str>,
        actor: &str,
    ) -> Result<Accepted, UploadError> {
        let limit = self.cfg.config.limits.max_batch_mib;
        if ciphertext.len() as u64 > limit * 1024 * 1024 {
            return Err(Refusal::Oversize { limit_mib: limit }.into());
        }
        let signature = signature.ok_or(Refusal::Unsigned)?;
        let signature = BatchSignature::from_json(signature)
            .map_err(|e| Refusal::SignatureFormat(e.to_string()))?;
        let operator = self
            .store
            .operator(&signature.operator_id)
            .await
            .map_err(HubError::from)?
            .ok_or_else(|| Refusal::UnknownOperator(signature.operator_id.clone()))?;
        if !operator.active {
            return Err(Refusal::DisabledOperator(operator.id).into());
        }
        let window = self.cfg.config.retention.raw_batches_days;
        if now() - signature.signed_at.timestamp() > i64::from(window) * 86_400 {
            return Err(Refusal::Stale { days: window }.into());
        }
        let public = synchro_keys::operator::OperatorPublic {
            operator_id: operator.id.clone(),
            age_recipient: operator.age_recipient.clone(),
            signing_public_key: operator.signing_public_key.clone(),
            signing_key_fingerprint: String::new(),
        };
        let opened = open_batch(
            ciphertext,
            &signature,
            &public,
            &self.identity,
            &self.acceptance(),
        )?;
        let records = opened
            .records
            .iter()
            .map(|r| {
                let mut attributes = r.clone();
                attributes.keys.clear();
                attributes.record_ref.clear();
                attributes.household_ref = None;
                let keys: Vec<(&'static str, String)> = r
                    .keys
                    .iter()
                    .flat_map(|(f, values)| values.iter().map(move |v| (f.code(), v)))
                    .map(|(f, v)| (f, self.rekey(f, v)))
                    .collect();
                let json = serde_json::to_value(&attributes).unwrap_or_default();
                StoredRecord {
                    record_ref: r.record_ref.clone(),
                    household_ref: r.household_ref.clone(),
                    last_contact: r.last_contact.to_string(),
                    attributes: serde_json::to_string(&attributes).unwrap_or_default(),
                    linkage: crate::linkage::profile(&json, &keys),
                    keys,
                }
            })
            .collect();
        let batch = NewBatch {
            id: batch_id(&signature.ciphertext_sha256),
            operator_id: operator.id.clone(),
            period: signature.period.to_string(),
            ciphertext_sha256: signature.ciphertext_sha256.clone(),
            nonce: signature.nonce.clone(),
            ciphertext: ciphertext.to_vec(),
            signature: serde_json::to_string(&signature).unwrap_or_default(),
            rejected_count: opened.trailer.rejected_count as i64,
            key_epoch: i64::from(opened.header.key_epoch),
            template_version: i64::from(opened.header.template_version),
            key_set_version: i64::from(opened.header.key_set_version),
            agent_version: opened.header.agent_version.clone(),
            received_at: now(),
            records,
        };
        let outcome = self
            .store
            .ingest_batch(&batch, actor)
            .await
            .map_err(HubError::from)?;
        match outcome {
            IngestOutcome::Accepted { batch_id, replaced } => {
                self.checkpoint().await?;
                let message = match replaced {
                    Some(old) => format!(
                        "{} records stored for {} {}, replacing batch {old}",
                        batch.records.len(),
                        batch.operator_id,
                        batch.period
                    ),
                    None => format!(
                        "{} records stored for {} {}",
                        batch.records.len(),
                        batch.operator_id,
                        batch.period
                    ),
                };
                Ok(Accepted {
                    status: "accepted",
                    message,
                    batch_id,
                })
            }
            IngestOutcome::Duplicate { batch_id } => {
                self.checkpoint().await?;
                Ok(Accepted {
                    status: "duplicate",
                    message: format!(
                        "this exact batch for {} {} is already stored; nothing changed",
                        batch.operator_id, batch.period
                    ),
                    batch_id,
                })
            }
            IngestOutcome::Replay => Err(Refusal::Replay.into()),
        }
    }

    /// Links the records stored up to `period` (default: the latest month) and gives stable
    /// person and household ids, incrementally when `linkage.incremental` is on and it can,
    /// unless `full`; one run at a time.
    pub async fn process(
        &self,
        period: Option<&str>,
        full: bool,
        actor: &str,
    ) -> Result<crate::processing::RunSummary, HubError> {
        let mut coverage = self.processing.lock().await;
        self.process_locked(&mut coverage, period, full, actor)
            .await
    }

    async fn process_locked(
        &self,
        coverage: &mut Coverage,
        period: Option<&str>,
        full: bool,
        actor: &str,
    ) -> Result<crate::processing::RunSummary, HubError> {
        // Read before the run reads the store: every batch with a ticket up to here is stored.
        let accepted = self.accepted.load(std::sync::atomic::Ordering::SeqCst);
        let summary = crate::processing::process(
            &self.store,
            &self.cfg.config.linkage.params(),
            period,
            full || !self.cfg.config.linkage.incremental,
            actor,
            now(),
        )
        .await
        .map_err(|e| match e {
            crate::processing::ProcessError::Store(s) => HubError::Store(s),
            other => HubError::Other(other.to_string()),
        })?;
        self.checkpoint().await?;
        if period.is_none() {
            coverage.covered = accepted;
            coverage.last = Some(summary.clone());
        }
        Ok(summary)
    }

    /// After an accepted batch: processes the latest month when `process_after_ingest` is on.
    /// The batch is already stored; a failure here is reported, never undoes it.
    ///
    /// Batches accepted while a run is under way share the next run: when fifty operators
    /// upload at once, each reply still waits for a run that links its batch, but the hub
    /// links two or three times, not fifty (a run links every batch stored when it starts).
    pub async fn process_after_ingest(
        &self,
        actor: &str,
    ) -> Option<Result<crate::processing::RunSummary, HubError>> {
        if !self.cfg.config.linkage.process_after_ingest {
            return None;
        }
        let ticket = self
            .accepted
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        let mut coverage = self.processing.lock().await;
        if coverage.covered >= ticket {
            if let Some(last) = &coverage.last {
                return Some(Ok(last.clone()));
            }
        }
        Some(self.process_locked(&mut coverage, None, false, actor).await)
    }

    /// Signs a checkpoint of the current log, refusing if it does not extend the last one.
    pub async fn checkpoint(&self) -> Result<String, HubError> {
        let leaves = self.store.audit_leaves().await?;
        let hashes: Vec<audit::Hash> = leaves
            .iter()
            .map(|(_, l)| audit::leaf_hash(l.as_bytes()))
            .collect();
        if let Some((size, note)) = self.store.last_checkpoint().await? {
            let last = Checkpoint::verify_note(
                &note,
                &self.key_name(),
                self.audit_key.public_key().as_ref(),
            )
            .map_err(|e| HubError::Other(e.to_string()))?;
            let size = size as u64;
            if size > hashes.len() as u64 || audit::root(&hashes[..size as usize]) != last.root {
                return Err(HubError::InconsistentLog { size });
            }
            if size == hashes.len() as u64 {
                return Ok(note);
            }
        }
        let cp = Checkpoint {
            origin: self.cfg.origin(),
            size: hashes.len() as u64,
            root: audit::root(&hashes),
        };
        let note = cp.sign(&self.key_name(), &self.audit_key);
        self.store
            .save_checkpoint(cp.size as i64, &note, now())
            .await?;
        Ok(note)
    }

    /// Recomputes the log and checks every stored checkpoint and the external ones given.
    pub async fn verify_audit(&self, external: &[String]) -> Result<AuditReport, HubError> {
        let leaves = self.store.audit_leaves().await?;
        let mut problems = Vec::new();
        for (i, (seq, _)) in leaves.iter().enumerate() {
            if *seq != i as i64 {
                problems.push(format!(
                    "entry at position {i} has sequence {seq}: entries were deleted or reordered"
                ));
                break;
            }
        }
        for (i, (_, leaf)) in leaves.iter().enumerate() {
            match serde_json::from_str::<serde_json::Value>(leaf) {
                Ok(v) if v["seq"] == serde_json::json!(i) => {}
                _ => {
                    problems.push(format!(
                        "entry {i} does not carry its own sequence number: edited or moved"
                    ));
                    break;
                }
            }
        }
        let hashes: Vec<audit::Hash> = leaves
            .iter()
            .map(|(_, l)| audit::leaf_hash(l.as_bytes()))
            .collect();
        let pk = self.audit_public_key();
        let mut notes: Vec<(String, String)> = self
            .store
            .checkpoints()
            .await?
            .into_iter()
            .map(|(s, n)| (format!("stored checkpoint of size {s}"), n))
            .collect();
        notes.extend(
            external
                .iter()
                .enumerate()
                .map(|(i, n)| (format!("external checkpoint #{}", i + 1), n.clone())),
        );
        let mut checked = 0;
        for (label, note) in &notes {
            match Checkpoint::verify_note(note, &self.key_name(), &pk) {
                Err(e) => problems.push(format!("{label}: {e}")),
                Ok(cp) if cp.size > hashes.len() as u64 => problems.push(format!(
                    "{label}: the log has {} entries but this checkpoint signed {}: entries were deleted",
                    hashes.len(),
                    cp.size
                )),
                Ok(cp) if audit::root(&hashes[..cp.size as usize]) != cp.root => problems.push(format!(
                    "{label}: the first {} entries no longer match the signed root: entries were edited, reordered or rewritten",
                    cp.size
                )),
                Ok(_) => checked += 1,
            }
        }
        Ok(AuditReport {
            entries: hashes.len() as u64,
            root: hex::encode(audit::root(&hashes)),
            checkpoints_checked: checked,
            problems,
        })
    }

    /// Applies retention now; audited.
    pub async fn purge(&self, now_secs: i64) -> Result<PurgeCounts, HubError> {
        let r = &self.cfg.config.retention;
        let today = chrono::DateTime::from_timestamp(now_secs, 0)
            .map(|d| d.date_naive())
            .unwrap_or_default();
        let cutoff = today
            .checked_sub_months(chrono::Months::new(r.records_months_after_last_contact))
            .unwrap_or(today)
            .to_string();
        let raw_cutoff = now_secs - i64::from(r.raw_batches_days) * 86_400;
        let counts = self.store.purge(&cutoff, raw_cutoff, now_secs).await?;
        if counts.records > 0 {
            // PostgreSQL's statistics keep sampled column values (references, keyed values)
            // until the next analysis: purged records must not linger there either.
            self.store.refresh_planner_statistics().await?;
        }
        self.checkpoint().await?;
        Ok(counts)
    }

    /// Enrols an operator from its public key file.
    pub async fn enrol(
        &self,
        public: &synchro_keys::operator::OperatorPublic,
        display_name: &str,
    ) -> Result<(), HubError> {
        self.store
            .add_operator(&EnrolledOperator {
                id: public.operator_id.clone(),
                display_name: display_name.to_string(),
                signing_public_key: public.signing_public_key.clone(),
                age_recipient: public.age_recipient.clone(),
                active: true,
                enrolled_at: now(),
            })
            .await?;
        let details = serde_json::json!({"operator": public.operator_id, "signing_key": public.signing_key_fingerprint});
        self.store
            .audit("technical-operator", "operator_enrolled", details, now())
            .await?;
        self.checkpoint().await?;
        Ok(())
    }

    /// Disables or re-enables an operator; audited.
    pub async fn set_active(&self, id: &str, active: bool) -> Result<bool, HubError> {
        let found = self.store.set_operator_active(id, active).await?;
        if found {
            let action = if active {
                "operator_enabled"
            } else {
                "operator_disabled"
            };
            self.store
                .audit(
                    "technical-operator",
                    action,
                    serde_json::json!({"operator": id}),
                    now(),
                )
                .await?;
            self.checkpoint().await?;
        }
        Ok(found)
    }
}

/// A batch id derived from its ciphertext hash (stable, no sequence to leak).
fn batch_id(sha_hex: &str) -> String {
    format!("b_{}", &sha_hex[..sha_hex.len().min(20)])
}

/// What `audit verify` found.
#[derive(Debug, Clone)]
pub struct AuditReport {
    /// Entries in the log.
    pub entries: u64,
    /// Current root, hex.
    pub root: String,
    /// Checkpoints that verified.
    pub checkpoints_checked: usize,
    /// What is wrong (empty when the log is intact).
    pub problems: Vec<String>,
}
