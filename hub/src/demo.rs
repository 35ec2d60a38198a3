//! `synchro-hub demo`: keys, a hub, several agents on synthetic data, real HTTPS uploads, and
//! the web interface — offline, in well under a minute.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use synchro_agent::command::init::{init as agent_init, InitArgs as AgentInitArgs};
use synchro_agent::command::run::{run as agent_run, RunArgs};
use synchro_agent::command::ExportArgs;
use synchro_agent::receipt::Delivery;
use synchro_synth::{Config, Dirtiness, Scenario};

use crate::command::{init, InitArgs};
use crate::service::Hub;

/// Options of `demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Directory for the demo (default: a new folder under the system's temp dir)
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Address to serve the web interface on (port 0: any free port)
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: String,
    /// People in the synthetic population
    #[arg(long, default_value_t = 600)]
    pub persons: usize,
    /// Months of exports
    #[arg(long, default_value_t = 3)]
    pub months: u32,
    /// Stop after the uploads instead of serving (for scripts and tests)
    #[arg(long)]
    pub no_serve: bool,
}

/// Runs the demo; serves until Ctrl-C unless `--no-serve`.
pub async fn demo(args: &DemoArgs) -> Result<()> {
    let started = std::time::Instant::now();
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => tempfile::Builder::new()
            .prefix("synchro-demo-")
            .tempdir()?
            .keep(),
    };
    std::fs::create_dir_all(&dir)?;
    let listener = match TcpListener::bind(&args.listen) {
        Ok(l) => l,
        // The usual port is taken (another demo?): any free port will do.
        Err(_) => TcpListener::bind("127.0.0.1:0").context("cannot listen on 127.0.0.1")?,
    };
    let addr = listener.local_addr()?;
    let url = format!("https://127.0.0.1:{}", addr.port());
    println!("Synchro demo in {}", dir.display());

    let hub_dir = dir.join("hub");
    let created = init(&InitArgs {
        dir: hub_dir.clone(),
        territory: "demo".into(),
        database_url: None,
        database_password_file: None,
        listen: addr.to_string(),
        host: Vec::new(),
    })
    .await?;
    let linkage_path = dir.join("custodian/linkage-secret.key");
    let secret = synchro_keys::linkage::create(&linkage_path, 1)?;
    let hub = Arc::new(crate::command::open(&created.config).await?);
    println!(
        "  hub created; linkage secret epoch 1 ({}) held by the custodian and operators only",
        secret.fingerprint()
    );

    let tls =
        crate::server::tls_config(&hub_dir.join("tls/cert.pem"), &hub_dir.join("tls/key.pem"))?;
    let handle = axum_server::Handle::new();
    let server = tokio::spawn(crate::server::run_with_listener(
        Arc::clone(&hub),
        listener,
        Some(tls),
        handle.clone(),
    ));

    let scenario = Scenario::generate(Config {
        seed: 2026,
        persons: args.persons,
        operators: 4,
        months: args.months,
        first_period: (2026, 8),
        dirtiness: Dirtiness::Moderate,
    });
    let exports = scenario.write_exports(&dir.join("exports"))?;
    let mut uploaded = 0u64;
    for (i, op) in scenario.operators.iter().enumerate() {
        let ws = dir.join("operators").join(&op.id);
        enrol_operator(
            &hub,
            &ws,
            &op.id,
            &op.name,
            &scenario.profile(i),
            &url,
            &created.ca_certificate,
            &linkage_path,
        )
        .await?;
        for file in exports.iter().filter(|f| f.operator_id == op.id) {
            let args = RunArgs {
                export: ExportArgs {
                    input: file.path.clone(),
                    period: file.period.parse()?,
                    config: ws.join("agent.toml"),
                    lang: None,
                    quiet: true,
                },
                out: None,
            };
            let summary = tokio::task::spawn_blocking(move || agent_run(&args))
                .await??
                .with_context(|| format!("the demo export {} was refused", file.path.display()))?;
            match &summary.receipt.delivery {
                Delivery::Uploaded { reply, .. } => {
                    uploaded += summary.receipt.rows_sent;
                    println!("  {:<11} {} → {}", op.id, file.period, reply.message);
                }
                other => anyhow::bail!("demo upload failed: {other:?}"),
            }
        }
    }
    // The monthly processing that exists today: retention (audited) and a signed checkpoint.
    let purged = hub.purge(crate::service::now()).await?;
    println!(
        "  monthly processing: retention applied ({} records past 24 months after last contact), audit checkpoint signed",
        purged.records
    );
    let submissions = hub.store.submissions().await?;
    // Each accepted batch was already processed; this run files the month's summary.
    let run = hub.process(None, false, "demo").await?;
    use crate::processing::protected;
    let persons = protected(run.persons);
    println!(
        "  linkage: {} records → {persons} persons, {} households; {} persons known by 2 or more operators",
        run.records,
        protected(run.households),
        protected(
            run.persons_by_operators
                .iter()
                .filter(|(n, _)| **n >= 2)
                .map(|(_, c)| c)
                .sum::<usize>()
        )
    );
    println!(
        "\n{} batches, {uploaded} pseudonymised records received over HTTPS from {} operators in {:.1} s: {persons} distinct persons found by linkage (the synthetic population has {}).",
        submissions.len(),
        scenario.operators.len(),
        started.elapsed().as_secs_f64(),
        scenario.persons_seen()
    );
    println!("Audit checkpoint:\n{}", hub.checkpoint().await?);
    if args.no_serve {
        handle.graceful_shutdown(None);
        let _ = server.await;
        return Ok(());
    }
    println!(
        "Web interface: {url}/  (account: admin, password: {})",
        created.admin_password
    );
    println!(
        "The certificate is self-signed by {} (trust it in the browser or accept the warning).",
        created.ca_certificate.display()
    );
    println!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c().await?;
    handle.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
    let _ = server.await;
    Ok(())
}

/// An operator's whole set-up: agent workspace, profile, wrapped secret, enrolment.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn enrol_operator(
    hub: &Hub,
    ws: &std::path::Path,
    id: &str,
    name: &str,
    profile: &str,
    url: &str,
    ca: &std::path::Path,
    linkage: &std::path::Path,
) -> Result<()> {
    agent_init(&AgentInitArgs {
        dir: ws.to_path_buf(),
        operator_id: id.to_string(),
        hub_recipient: hub
            .cfg
            .resolve(&hub.cfg.config.keys.identity)
            .with_file_name("hub-recipient.txt")
            .to_string_lossy()
            .into_owned(),
        hub_url: Some(url.to_string()),
        ca_certificate: Some(ca.to_path_buf()),
        quiet: true,
    })?;
    std::fs::write(ws.join("profile.toml"), profile)?;
    let public =
        synchro_keys::operator::load_public(&ws.join(format!("keys/operator-{id}.pub.toml")))?;
    let wrapped = linkage.with_file_name(format!("wrapped-for-{id}.txt"));
    synchro_keys::linkage::wrap(linkage, &public, &wrapped)?;
    let identity = synchro_keys::operator::load_identity(&ws.join("keys/operator-identity.key"))?;
    synchro_keys::linkage::unwrap(&wrapped, &identity, &ws.join("keys/linkage-secret.key"))?;
    hub.enrol(&public, name).await?;
    Ok(())
}
