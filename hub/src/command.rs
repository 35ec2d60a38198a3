//! The `synchro-hub` subcommands.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use synchro_shared::batch::BatchSignature;

use crate::config::{self, LoadedConfig, EXAMPLE};
use crate::service::{create_hub_secrets, now, Hub, UploadError};

/// Options of `init`.
#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    /// Directory of the new hub (created if needed)
    #[arg(long, default_value = "synchro-hub")]
    pub dir: PathBuf,
    /// The territory's name (lower case, e.g. metropole-lyon)
    #[arg(long, default_value = "demo")]
    pub territory: String,
    /// Database URL: sqlite://hub.db (default) or postgres://user@host/db
    #[arg(long)]
    pub database_url: Option<String>,
    /// File holding the PostgreSQL password
    #[arg(long)]
    pub database_password_file: Option<PathBuf>,
    /// Address and port to listen on
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: String,
    /// Extra host names for the self-signed certificate (besides localhost and 127.0.0.1)
    #[arg(long)]
    pub host: Vec<String>,
}

/// What `init` created.
pub struct Initialised {
    /// hub.toml.
    pub config: PathBuf,
    /// The CA certificate operators configure (`ca_certificate`).
    pub ca_certificate: PathBuf,
    /// The admin password, shown once.
    pub admin_password: String,
}

/// Operator management.
#[derive(Debug, Clone, Subcommand)]
pub enum OperatorCommand {
    /// Enrol an operator from its public key file (operator-ID.pub.toml)
    Add {
        /// The operator's public key file
        #[arg(long)]
        public: PathBuf,
        /// Display name (e.g. "SIAO du Rhône")
        #[arg(long)]
        name: String,
    },
    /// List enrolled operators
    List,
    /// Stop accepting an operator's uploads
    Disable {
        /// Operator id
        id: String,
    },
    /// Accept an operator's uploads again
    Enable {
        /// Operator id
        id: String,
    },
}

/// Audit log commands.
#[derive(Debug, Clone, Subcommand)]
pub enum AuditCommand {
    /// Print the latest signed checkpoint (a DPO keeps it)
    Checkpoint,
    /// Print the verifier key that checks checkpoints
    VerifierKey,
    /// Recompute the log and check it against stored and external checkpoints
    Verify {
        /// Checkpoint files kept outside the hub
        #[arg(long)]
        checkpoint: Vec<PathBuf>,
    },
}

fn self_signed_tls(dir: &Path, hosts: &[String]) -> Result<PathBuf> {
    let tls = dir.join("tls");
    std::fs::create_dir_all(&tls)?;
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "Synchro hub local CA");
    let ca_cert = ca.self_signed(&ca_key)?;
    let key = rcgen::KeyPair::generate()?;
    let mut names = vec!["localhost".to_string()];
    names.extend(hosts.iter().cloned());
    let mut params = rcgen::CertificateParams::new(names)?;
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress(std::net::IpAddr::V4(
            std::net::Ipv4Addr::LOCALHOST,
        )));
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Synchro hub");
    let cert = params.signed_by(&key, &ca_cert, &ca_key)?;
    std::fs::write(
        tls.join("cert.pem"),
        format!("{}{}", cert.pem(), ca_cert.pem()),
    )?;
    synchro_keys::secret_file::write_secret(&tls.join("key.pem"), &key.serialize_pem())?;
    let ca_path = tls.join("ca.pem");
    std::fs::write(&ca_path, ca_cert.pem())?;
    Ok(ca_path)
}

/// Creates a hub directory: configuration, keys, TLS certificate, database, admin account.
pub async fn init(args: &InitArgs) -> Result<Initialised> {
    let config_path = args.dir.join("hub.toml");
    if config_path.exists() {
        bail!(
            "{} already exists: this folder is already a hub",
            config_path.display()
        );
    }
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let keys = args.dir.join("keys");
    synchro_keys::hub::create(&keys)?;
    create_hub_secrets(
        &keys.join("hub-pepper.key"),
        &keys.join("audit-signing.key"),
    )?;
    let ca_certificate = self_signed_tls(&args.dir, &args.host)?;
    let mut text = EXAMPLE
        .replace(
            "territory = \"demo\"",
            &format!("territory = {:?}", args.territory),
        )
        .replace(
            "listen = \"127.0.0.1:8443\"",
            &format!("listen = {:?}", args.listen),
        );
    if let Some(url) = &args.database_url {
        text = text.replace("url = \"sqlite://hub.db\"", &format!("url = {url:?}"));
    }
    if let Some(pw) = &args.database_password_file {
        text = text.replace(
            "# password_file = \"keys/postgres-password\"",
            &format!(
                "password_file = {:?}",
                std::fs::canonicalize(pw).unwrap_or(pw.clone())
            ),
        );
    }
    std::fs::write(&config_path, text)?;
    let cfg = config::load(&config_path)?;
    let hub = Hub::open(cfg).await?;
    let admin_password = crate::accounts::random_token();
    let hash = crate::accounts::hash_password(&admin_password).map_err(anyhow::Error::msg)?;
    hub.store.create_admin("admin", &hash, now()).await?;
    hub.store
        .audit(
            "technical-operator",
            "hub_initialised",
            serde_json::json!({"territory": args.territory, "verifier_key": hub.verifier_key()}),
            now(),
        )
        .await?;
    hub.checkpoint().await?;
    hub.store.close().await;
    Ok(Initialised {
        config: config_path,
        ca_certificate,
        admin_password,
    })
}

/// Opens the hub from its configuration file.
pub async fn open(config: &Path) -> Result<Hub> {
    let cfg: LoadedConfig = config::load(config)?;
    Ok(Hub::open(cfg).await?)
}

/// Serves HTTPS until Ctrl-C or SIGTERM, purging on schedule.
pub async fn serve(config: &Path) -> Result<()> {
    let hub = Arc::new(open(config).await?);
    record_configuration(&hub, config).await?;
    let server = &hub.cfg.config.server;
    let listener = TcpListener::bind(&server.listen)
        .with_context(|| format!("cannot listen on {}", server.listen))?;
    let tls = if server.plain_http_behind_proxy {
        tracing::warn!(
            "serving plain HTTP: only acceptable behind a reverse proxy that terminates TLS"
        );
        None
    } else {
        Some(crate::server::tls_config(
            &hub.cfg.resolve(&server.tls_certificate),
            &hub.cfg.resolve(&server.tls_private_key),
        )?)
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!(
        "Synchro hub listening on {scheme}://{}",
        listener.local_addr()?
    );
    let handle = axum_server::Handle::new();
    let purger = {
        let hub = Arc::clone(&hub);
        let every = u64::from(hub.cfg.config.retention.purge_interval_hours.max(1)) * 3600;
        tokio::spawn(async move {
            loop {
                if let Err(e) = hub.purge(now()).await {
                    tracing::error!(error = %e, "scheduled purge failed");
                }
                tokio::time::sleep(std::time::Duration::from_secs(every)).await;
            }
        })
    };
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        // Drain in-flight uploads: each is one transaction, committed or not at all.
        stopper.graceful_shutdown(Some(std::time::Duration::from_secs(60)));
    });
    crate::server::run_with_listener(Arc::clone(&hub), listener, tls, handle).await?;
    purger.abort();
    Ok(())
}

/// Audits each start, and a configuration change when hub.toml differs from the last start's.
async fn record_configuration(hub: &Hub, config: &Path) -> Result<()> {
    let text = std::fs::read(config)?;
    let digest = hex::encode(ring::digest::digest(&ring::digest::SHA256, &text));
    let previous = hub
        .store
        .audit_leaves()
        .await?
        .into_iter()
        .rev()
        .filter_map(|(_, l)| serde_json::from_str::<serde_json::Value>(&l).ok())
        .find(|v| v["action"] == "hub_started")
        .and_then(|v| v["details"]["config_sha256"].as_str().map(str::to_string));
    if previous.as_deref().is_some_and(|p| p != digest) {
        let details = serde_json::json!({"config_sha256": digest, "previous_sha256": previous});
        hub.store
            .audit(
                "technical-operator",
                "configuration_changed",
                details,
                now(),
            )
            .await?;
    }
    hub.store
        .audit(
            "hub",
            "hub_started",
            serde_json::json!({"config_sha256": digest, "version": env!("CARGO_PKG_VERSION")}),
            now(),
        )
        .await?;
    hub.checkpoint().await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Manages operators.
pub async fn operator(config: &Path, cmd: &OperatorCommand) -> Result<()> {
    let hub = open(config).await?;
    match cmd {
        OperatorCommand::Add { public, name } => {
            let op = synchro_keys::operator::load_public(public)?;
            hub.enrol(&op, name).await?;
            println!(
                "operator {} enrolled (signing key {})",
                op.operator_id, op.signing_key_fingerprint
            );
        }
        OperatorCommand::List => {
            for op in hub.store.operators().await? {
                println!(
                    "{}\t{}\t{}",
                    op.id,
                    if op.active { "active" } else { "disabled" },
                    op.display_name
                );
            }
        }
        OperatorCommand::Disable { id } | OperatorCommand::Enable { id } => {
            let active = matches!(cmd, OperatorCommand::Enable { .. });
            if !hub.set_active(id, active).await? {
                bail!("no operator {id} is enrolled (see `synchro-hub operator list`)");
            }
            println!(
                "operator {id} {}",
                if active { "enabled" } else { "disabled" }
            );
        }
    }
    Ok(())
}

/// Ingests a batch received as a file (its `.sig` beside it), with the upload's checks.
pub async fn ingest(config: &Path, batch: &Path) -> Result<()> {
    let hub = open(config).await?;
    let ciphertext =
        std::fs::read(batch).with_context(|| format!("cannot read {}", batch.display()))?;
    let mut sig_path = batch.as_os_str().to_owned();
    sig_path.push(".sig");
    let signature = std::fs::read_to_string(&sig_path).with_context(|| {
        format!(
            "cannot read the signature {} (it must be beside the batch)",
            PathBuf::from(&sig_path).display()
        )
    })?;
    // Parse early for a clear message; the hub parses again with the same checks.
    BatchSignature::from_json(&signature)?;
    match hub
        .accept_upload(&ciphertext, Some(&signature), "offline-ingest")
        .await
    {
        Ok(a) => {
            println!("{}: {}", a.status, a.message);
            if a.status == "accepted" {
                match hub.process_after_ingest("offline-ingest").await {
                    Some(Ok(run)) => println!(
                        "linkage {}: {} records, {} persons, {} households",
                        run.period,
                        run.records,
                        crate::processing::protected(run.persons),
                        crate::processing::protected(run.households)
                    ),
                    Some(Err(e)) => bail!(
                        "the batch is stored, but linking failed: {e}. Run `synchro-hub process` once fixed"
                    ),
                    None => {}
                }
            }
        }
        Err(UploadError::Refused(r)) => bail!("refused ({}): {r}", r.code()),
        Err(UploadError::Hub(e)) => return Err(e.into()),
    }
    Ok(())
}

/// Audit log commands.
pub async fn audit(config: &Path, cmd: &AuditCommand) -> Result<bool> {
    let hub = open(config).await?;
    match cmd {
        AuditCommand::Checkpoint => {
            print!("{}", hub.checkpoint().await?);
            Ok(true)
        }
        AuditCommand::VerifierKey => {
            println!("{}", hub.verifier_key());
            Ok(true)
        }
        AuditCommand::Verify { checkpoint } => {
            let external: Vec<String> = checkpoint
                .iter()
                .map(|p| {
                    std::fs::read_to_string(p)
                        .with_context(|| format!("cannot read {}", p.display()))
                })
                .collect::<Result<_>>()?;
            let report = hub.verify_audit(&external).await?;
            println!(
                "{} entries, root {}, {} checkpoints verified",
                report.entries, report.root, report.checkpoints_checked
            );
            for p in &report.problems {
                println!("TAMPERING: {p}");
            }
            Ok(report.problems.is_empty())
        }
    }
}

/// Applies retention now.
pub async fn purge(config: &Path) -> Result<()> {
    let hub = open(config).await?;
    let c = hub.purge(now()).await?;
    println!(
        "purged: {} records past retention, {} raw batches, {} old nonces, {} expired sessions",
        c.records, c.raw_batches, c.nonces, c.sessions
    );
    Ok(())
}

/// Linkage inspection, for the technical operator on the hub host.
#[derive(Debug, Clone, Subcommand)]
pub enum LinkageCommand {
    /// Show a record's person, the records linked with it and the candidates kept apart,
    /// with the keys that agreed and their weights
    Explain {
        /// The record reference (as in the operator's table local_id,record_ref)
        record_ref: String,
    },
    /// Score distribution, cluster sizes, persons by number of operators, estimated false
    /// matches and revisions of a month, compared with the previous month
    Report {
        /// Month (YYYY-MM; default: the latest processed)
        #[arg(long)]
        period: Option<String>,
    },
    /// Write `operator,record_ref,person_id,household_id` for every record of a month, to
    /// score linkage against a truth kept by operators (audited; never served over HTTP)
    Export {
        /// Output CSV file (created, never overwritten; readable by its owner only)
        #[arg(long)]
        out: PathBuf,
        /// Month (YYYY-MM; default: the latest processed)
        #[arg(long)]
        period: Option<String>,
    },
}

fn check_period(period: &Option<String>) -> Result<()> {
    if let Some(p) = period {
        p.parse::<synchro_shared::batch::Period>()
            .map_err(|e| anyhow::anyhow!("--period {p:?}: {e}"))?;
    }
    Ok(())
}

/// `process`: links every stored month up to the given one and prints the summary line.
pub async fn process(config: &Path, period: &Option<String>, full: bool) -> Result<()> {
    check_period(period)?;
    let hub = open(config).await?;
    let run = hub.process(period.as_deref(), full, "hub-host").await?;
    println!(
        "{} ({}, {} records read): {} records linked into {} persons and {} households in {:.2} s (person ids: {} new, {} merges, {} splits; estimated false matches {:.2} %). `synchro-hub linkage report --period {}` for details.",
        run.period,
        run.mode,
        run.records_linked,
        run.records,
        crate::processing::protected(run.persons),
        crate::processing::protected(run.households),
        run.total_seconds,
        run.person_changes.created,
        run.person_changes.merges,
        run.person_changes.splits,
        run.estimated_false_match_share * 100.0,
        run.period
    );
    Ok(())
}

/// `linkage …`.
pub async fn linkage(config: &Path, cmd: &LinkageCommand) -> Result<()> {
    use crate::processing::{explain, render_report, RunSummary};
    let hub = open(config).await?;
    let latest_processed = || async {
        hub.store
            .latest_period()
            .await?
            .context("no records are stored yet: ingest a batch first")
    };
    match cmd {
        LinkageCommand::Explain { record_ref } => {
            print!(
                "{}",
                explain(&hub.store, &hub.cfg.config.linkage.params(), record_ref).await?
            );
        }
        LinkageCommand::Report { period } => {
            check_period(period)?;
            let period = match period {
                Some(p) => p.clone(),
                None => latest_processed().await?,
            };
            let (current, previous) = hub.store.linkage_summaries(&period).await?;
            let current = current.with_context(|| {
                format!(
                    "{period} has not been processed: run `synchro-hub process --period {period}`"
                )
            })?;
            let current: RunSummary = serde_json::from_str(&current)?;
            let previous: Option<RunSummary> = previous.and_then(|p| serde_json::from_str(&p).ok());
            let events = hub.store.linkage_events(&period).await?;
            print!("{}", render_report(&current, previous.as_ref(), &events));
        }
        LinkageCommand::Export { out, period } => {
            check_period(period)?;
            let period = match period {
                Some(p) => p.clone(),
                None => latest_processed().await?,
            };
            let links = hub.store.period_links(&period).await?;
            if links.is_empty() {
                bail!("no processed records for {period}: run `synchro-hub process` first");
            }
            let mut csv = String::from("operator,record_ref,person_id,household_id\n");
            for l in &links {
                csv.push_str(&format!(
                    "{},{},{},{}\n",
                    l.operator_id, l.record_ref, l.person_id, l.household_id
                ));
            }
            synchro_keys::secret_file::write_secret(out, &csv)
                .with_context(|| format!("cannot write {}", out.display()))?;
            let details = serde_json::json!({
                "period": period,
                "rows": links.len(),
                "file": out.display().to_string(),
            });
            hub.store
                .audit("hub-host", "linkage_exported", details, now())
                .await?;
            hub.checkpoint().await?;
            println!(
                "{} records of {period} written to {} (audited).",
                links.len(),
                out.display()
            );
        }
    }
    Ok(())
}
