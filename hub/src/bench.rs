//! `synchro-hub bench`: ingestion throughput on SQLite and PostgreSQL, and what HTTPS adds.
//!
//! Measured in one invocation, so ratios compare like with like on a noisy machine: one
//! operator's large batch ingested from a file (no network), the same size uploaded over HTTPS
//! on loopback, and many operators uploading at once.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use synchro_agent::command::init::{init as agent_init, InitArgs as AgentInitArgs};
use synchro_agent::command::run::{run as agent_run, signature_path, RunArgs};
use synchro_agent::command::ExportArgs;
use synchro_agent::upload::HubClient;
use synchro_shared::batch::BatchSignature;

use crate::command::{init, InitArgs};
use crate::service::Hub;

/// Options of `bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Records in the single large batch
    #[arg(long, default_value_t = 100_000)]
    pub records: usize,
    /// Operators uploading at once
    #[arg(long, default_value_t = 50)]
    pub operators: usize,
    /// Records per batch when many operators upload at once
    #[arg(long, default_value_t = 2_000)]
    pub records_each: usize,
    /// Also measure PostgreSQL: an admin URL with password (a database is created and dropped)
    #[arg(long)]
    pub postgres_url: Option<String>,
    /// Also write the report (Markdown) to this file
    #[arg(long)]
    pub report: Option<PathBuf>,
}

/// A sealed batch on disk with its signature.
struct Sealed {
    ciphertext: Vec<u8>,
    signature: String,
    path: PathBuf,
    records: usize,
}

fn seal(
    dir: &Path,
    id: &str,
    recipient: &Path,
    rows: usize,
    period: &str,
    seed: u64,
) -> Result<Sealed> {
    let ws = dir.join(format!("agent-{id}"));
    if !ws.join("agent.toml").exists() {
        agent_init(&AgentInitArgs {
            dir: ws.clone(),
            operator_id: id.into(),
            hub_recipient: recipient.to_string_lossy().into_owned(),
            hub_url: None,
            ca_certificate: None,
            quiet: true,
        })?;
        synchro_keys::linkage::create(&ws.join("keys/linkage-secret.key"), 1).ok();
    }
    let input = dir.join(format!("export-{id}-{period}.csv"));
    synchro_synth::write_bulk_export(&input, rows, seed)?;
    let out = dir.join(format!("{id}-{period}.batch.age"));
    agent_run(&RunArgs {
        export: ExportArgs {
            input,
            period: period.parse()?,
            config: ws.join("agent.toml"),
            lang: None,
            quiet: true,
        },
        out: Some(out.clone()),
    })?
    .context("benchmark export refused")?;
    Ok(Sealed {
        ciphertext: std::fs::read(&out)?,
        signature: std::fs::read_to_string(signature_path(&out))?,
        path: out,
        records: rows,
    })
}

async fn enrol(hub: &Hub, dir: &Path, id: &str) -> Result<()> {
    let public = synchro_keys::operator::load_public(
        &dir.join(format!("agent-{id}/keys/operator-{id}.pub.toml")),
    )?;
    hub.enrol(&public, id).await?;
    Ok(())
}

struct Row {
    backend: &'static str,
    file_rate: f64,
    https_rate: f64,
    many_rate: f64,
}

async fn measure(
    dir: &Path,
    backend: &'static str,
    database_url: Option<String>,
    password_file: Option<PathBuf>,
    args: &BenchArgs,
) -> Result<Row> {
    let hub_dir = dir.join(format!("hub-{backend}"));
    let created = init(&InitArgs {
        dir: hub_dir.clone(),
        territory: "bench".into(),
        database_url,
        database_password_file: password_file,
        listen: "127.0.0.1:0".into(),
        host: Vec::new(),
    })
    .await?;
    let hub = Arc::new(crate::command::open(&created.config).await?);
    let recipient = hub_dir.join("keys/hub-recipient.txt");
    let work = dir.join(format!("work-{backend}"));
    std::fs::create_dir_all(&work)?;

    // 1. One large batch from a file: verification, decryption, parsing, re-keying, storage.
    let big = seal(&work, "big", &recipient, args.records, "2026-10", 1)?;
    enrol(&hub, &work, "big").await?;
    let t = Instant::now();
    hub.accept_upload(&big.ciphertext, Some(&big.signature), "bench")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let file_rate = big.records as f64 / t.elapsed().as_secs_f64();

    // 2. The same size over HTTPS on loopback (another month, so it is stored too).
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("https://127.0.0.1:{}", listener.local_addr()?.port());
    let tls =
        crate::server::tls_config(&hub_dir.join("tls/cert.pem"), &hub_dir.join("tls/key.pem"))?;
    let handle = axum_server::Handle::new();
    let server = tokio::spawn(crate::server::run_with_listener(
        Arc::clone(&hub),
        listener,
        Some(tls),
        handle.clone(),
    ));
    let big2 = seal(&work, "big", &recipient, args.records, "2026-11", 2)?;
    let ca = hub_dir.join("tls/ca.pem");
    let client = HubClient::new(&url, Some(&ca), None, Duration::from_secs(600))?;
    let sig: BatchSignature = BatchSignature::from_json(&big2.signature)?;
    let path = big2.path.clone();
    let t = Instant::now();
    let reply = tokio::task::spawn_blocking(move || client.upload(&path, &sig)).await??;
    anyhow::ensure!(
        reply.status == "accepted",
        "upload not accepted: {}",
        reply.message
    );
    let https_rate = big2.records as f64 / t.elapsed().as_secs_f64();

    // 3. Many operators at once over HTTPS.
    let mut batches = Vec::new();
    for o in 0..args.operators {
        let id = format!("op-{o:02}");
        batches.push(seal(
            &work,
            &id,
            &recipient,
            args.records_each,
            "2026-10",
            100 + o as u64,
        )?);
        enrol(&hub, &work, &id).await?;
    }
    let t = Instant::now();
    let uploads: Vec<_> = batches
        .into_iter()
        .map(|b| {
            let client = HubClient::new(&url, Some(&ca), None, Duration::from_secs(600));
            std::thread::spawn(move || -> Result<usize> {
                let sig = BatchSignature::from_json(&b.signature)?;
                let reply = client?.upload(&b.path, &sig)?;
                anyhow::ensure!(
                    reply.status == "accepted",
                    "upload not accepted: {}",
                    reply.message
                );
                Ok(b.records)
            })
        })
        .collect();
    let mut total = 0;
    for u in uploads {
        total += u
            .join()
            .map_err(|_| anyhow::anyhow!("upload thread panicked"))??;
    }
    let many_rate = total as f64 / t.elapsed().as_secs_f64();
    handle.graceful_shutdown(None);
    let _ = server.await;
    hub.store.close().await;
    Ok(Row {
        backend,
        file_rate,
        https_rate,
        many_rate,
    })
}

/// Runs the benchmark and prints the report.
pub async fn bench(args: &BenchArgs) -> Result<()> {
    let temp = tempfile::tempdir()?;
    let dir = temp.path();
    let mut rows = vec![measure(dir, "SQLite", None, None, args).await?];
    if let Some(admin) = &args.postgres_url {
        let name = format!("synchro_bench_{}", std::process::id());
        crate::store::admin_execute(admin, &format!("CREATE DATABASE {name}"))
            .await
            .map_err(anyhow::Error::msg)?;
        let (url, password) = match admin
            .split_once("://")
            .and_then(|(s, r)| r.split_once('@').map(|(u, h)| (s, u, h)))
        {
            Some((scheme, userinfo, host)) => {
                let (user, pw) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                let base = host.rsplit_once('/').map(|(b, _)| b).unwrap_or(host);
                (format!("{scheme}://{user}@{base}/{name}"), pw.to_string())
            }
            None => anyhow::bail!("--postgres-url must look like postgres://user:password@host/db"),
        };
        let pw_file = dir.join("pg-password");
        synchro_keys::secret_file::write_secret(&pw_file, &password)?;
        let result = measure(dir, "PostgreSQL", Some(url), Some(pw_file), args).await;
        let _ = crate::store::admin_execute(
            admin,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        )
        .await;
        rows.push(result?);
    }
    let mut report = format!(
        "# synchro-hub bench\n\nOne batch of {} records; {} operators × {} records at once. Records/s, one run, same machine.\n\n\
         | backend | file ingest | HTTPS upload (same size) | HTTPS overhead | {} operators at once |\n|---|---:|---:|---:|---:|\n",
        args.records, args.operators, args.records_each, args.operators
    );
    for r in &rows {
        report.push_str(&format!(
            "| {} | {:.0} | {:.0} | {:.2}x | {:.0} |\n",
            r.backend,
            r.file_rate,
            r.https_rate,
            r.file_rate / r.https_rate,
            r.many_rate
        ));
    }
    report.push_str("\nFile ingest and HTTPS upload both run every check (signature, decryption, versions, re-keying) and one storage transaction; the overhead column is file rate / HTTPS rate.\n");
    print!("{report}");
    if let Some(p) = &args.report {
        std::fs::write(p, &report)?;
    }
    Ok(())
}
