//! Helpers for Synchro's end-to-end tests: the workspace's binaries, a territory set up as an
//! operator would set it up, and the rule for tools that may be absent on a laptop.
#![forbid(unsafe_code)]

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The directory holding the workspace's binaries (`target/<profile>`).
pub fn bin_dir() -> PathBuf {
    // Unwrap safety: test executables live in target/<profile>/deps.
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target directory")
        .to_path_buf()
}

/// A workspace binary by name.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --workspace`, which builds every binary",
        path.display()
    );
    path
}

/// The longest any one step of a test (a binary's run, a store call) may take. A step stuck
/// past it fails the test with its name and what it printed, instead of holding the whole
/// run until CI's own limit stops it without a word; debug builds on two busy cores take
/// a few minutes at most for the longest step.
pub const STEP_LIMIT: Duration = Duration::from_secs(600);

/// How long `synchro-hub serve` may take to print its "listening" line.
const START_LIMIT: Duration = Duration::from_secs(120);

/// Runs a workspace binary and returns its output; fails the test at the caller's line if it
/// runs past [`STEP_LIMIT`].
#[track_caller]
pub fn run(name: &str, args: &[&str]) -> Output {
    let mut child = Command::new(bin(name))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    let stdout = read_to_end_in_background(child.stdout.take());
    let stderr = read_to_end_in_background(child.stderr.take());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for a child process") {
            break status;
        }
        if started.elapsed() > STEP_LIMIT {
            let _ = child.kill();
            let out = Output {
                status: child.wait().expect("killed child"),
                stdout: stdout.join().unwrap_or_default(),
                stderr: stderr.join().unwrap_or_default(),
            };
            panic!(
                "{name} {args:?} was still running after {STEP_LIMIT:?} and was killed; it printed:\n{}",
                text(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// Reads a child's pipe to its end on a thread of its own, so that the child never blocks on
/// a full pipe while the test waits for it.
fn read_to_end_in_background<R: Read + Send + 'static>(
    pipe: Option<R>,
) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut all = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut all);
        }
        all
    })
}

/// Standard output and error of a run, as text.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs a binary and asserts it succeeded.
pub fn ok(name: &str, args: &[&str]) -> String {
    let out = run(name, args);
    assert!(
        out.status.success(),
        "{name} {args:?} failed:\n{}",
        text(&out)
    );
    text(&out)
}

/// Whether CI asked for every test to run for real.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A tool on PATH, or a skip line (on a laptop) / a failure (under CI=true).
pub fn require_tool(tool: &str, install_hint: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(format!("{tool}{}", std::env::consts::EXE_SUFFIX)))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            !in_ci(),
            "{tool} is required under CI=true ({install_hint})"
        );
        println!("SKIP: {tool} not found ({install_hint}); this test did not run");
    }
    found
}

/// A territory as the custodian and the operators set it up, with real binaries.
pub struct Territory {
    /// Root temporary directory.
    pub dir: tempfile::TempDir,
}

impl Territory {
    /// Creates the hub keys and the linkage secret.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let t = Territory { dir };
        ok(
            "synchro-keys",
            &["hub-new", "--dir", t.path("hub").to_str().unwrap()],
        );
        ok(
            "synchro-keys",
            &[
                "linkage",
                "new",
                "--epoch",
                "1",
                "--out",
                t.path("custodian/linkage.key").to_str().unwrap(),
            ],
        );
        t
    }

    /// A path under the territory's directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A path as a string.
    pub fn p(&self, rel: &str) -> String {
        self.path(rel).to_string_lossy().into_owned()
    }

    /// Creates an operator workspace, wraps and installs the secret, and writes its profile.
    pub fn operator(&self, id: &str, profile: &str, extra_init: &[&str]) -> PathBuf {
        self.operator_in(
            id,
            id,
            &self.p("hub/hub-recipient.txt"),
            profile,
            extra_init,
        )
    }

    /// Like [`Territory::operator`], in folder `name`, for the hub whose recipient file is given.
    pub fn operator_in(
        &self,
        name: &str,
        id: &str,
        recipient: &str,
        profile: &str,
        extra_init: &[&str],
    ) -> PathBuf {
        let ws = self.path(name);
        let mut args = vec![
            "init",
            "--dir",
            ws.to_str().unwrap(),
            "--operator-id",
            id,
            "--hub-recipient",
            recipient,
        ];
        args.extend_from_slice(extra_init);
        ok("synchro-agent", &args);
        std::fs::write(ws.join("profile.toml"), profile).expect("write profile");
        let wrapped = self.p(&format!("wrapped-{name}.txt"));
        ok(
            "synchro-keys",
            &[
                "wrap",
                "--secret",
                &self.p("custodian/linkage.key"),
                "--to",
                ws.join(format!("keys/operator-{id}.pub.toml"))
                    .to_str()
                    .unwrap(),
                "--out",
                &wrapped,
            ],
        );
        ok(
            "synchro-agent",
            &[
                "install-secret",
                "--config",
                ws.join("agent.toml").to_str().unwrap(),
                "--wrapped",
                &wrapped,
            ],
        );
        ws
    }

    /// The hub identity.
    pub fn hub_identity(&self) -> age::x25519::Identity {
        synchro_keys::hub::load_identity(&self.path("hub/hub-identity.key")).expect("hub identity")
    }
}

impl Default for Territory {
    fn default() -> Self {
        Self::new()
    }
}

/// The documented variable naming the PostgreSQL server for tests (an admin URL with password,
/// e.g. `postgres://postgres:secret@127.0.0.1/synchro_test`); each test creates its own database.
pub const POSTGRES_VAR: &str = "SYNCHRO_TEST_POSTGRES_URL";

/// A database for one test: SQLite in a temporary file, or a fresh PostgreSQL database.
pub struct TestDatabase {
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// URL without password.
    pub url: String,
    /// File holding the password (PostgreSQL).
    pub password_file: Option<std::path::PathBuf>,
    admin_url: Option<String>,
    name: Option<String>,
}

impl TestDatabase {
    /// Runs one statement on this test database as the administrator of
    /// [`POSTGRES_VAR`], for a test that must set up what only the server itself writes
    /// (its statistics, say); `None` on SQLite.
    pub async fn execute_as_admin(&self, sql: &str) -> Option<Result<(), String>> {
        let (admin, name) = (self.admin_url.as_ref()?, self.name.as_ref()?);
        let server = admin.rsplit_once('/').map_or(admin.as_str(), |(s, _)| s);
        Some(synchro_hub::store::admin_execute(&format!("{server}/{name}"), sql).await)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let (Some(admin), Some(name)) = (&self.admin_url, &self.name) {
            let admin = admin.clone();
            let name = name.clone();
            // Best effort: a leftover test database is harmless and named as such.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(async {
                    use sqlx_free::drop_database;
                    drop_database(&admin, &name).await
                })
                .ok()
            })
            .join();
        }
    }
}

/// Minimal PostgreSQL administration through the hub's store dependency (sqlx via the hub crate).
mod sqlx_free {
    pub async fn create_database(admin: &str, name: &str) -> Result<(), String> {
        synchro_hub::store::admin_execute(admin, &format!("CREATE DATABASE {name}")).await
    }
    pub async fn drop_database(admin: &str, name: &str) -> Result<(), String> {
        synchro_hub::store::admin_execute(
            admin,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        )
        .await
    }
}

/// The backends to test on: SQLite always; PostgreSQL when [`POSTGRES_VAR`] is set (skip line on
/// a laptop without it, failure under `CI=true`).
pub fn test_databases(dir: &Path) -> Vec<TestDatabase> {
    let mut out = vec![TestDatabase {
        backend: "sqlite",
        url: format!("sqlite://{}", dir.join("hub-test.db").display()),
        password_file: None,
        admin_url: None,
        name: None,
    }];
    match std::env::var(POSTGRES_VAR) {
        Ok(admin) if !admin.is_empty() => {
            let name = format!("synchro_t_{}", hex::encode(rand_bytes()));
            block_on(sqlx_free::create_database(&admin, &name))
                .unwrap_or_else(|e| panic!("cannot create a test database on {POSTGRES_VAR}: {e}"));
            let (without_password, password) = split_password(&admin);
            let base = without_password
                .rsplit_once('/')
                .map(|(b, _)| b.to_string())
                .unwrap_or(without_password);
            let password_file = dir.join(format!("{name}.password"));
            synchro_keys::secret_file::write_secret(&password_file, &password)
                .expect("password file");
            out.push(TestDatabase {
                backend: "postgres",
                url: format!("{base}/{name}"),
                password_file: Some(password_file),
                admin_url: Some(admin),
                name: Some(name),
            });
        }
        _ => {
            assert!(
                !in_ci(),
                "{POSTGRES_VAR} must be set under CI=true (.ci/run starts PostgreSQL)"
            );
            println!("SKIP: {POSTGRES_VAR} not set; PostgreSQL half of this test did not run");
        }
    }
    out
}

fn rand_bytes() -> [u8; 6] {
    let mut b = [0u8; 6];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).expect("random");
    b
}

/// Splits `postgres://user:pw@host/db` into the URL without password and the password.
fn split_password(url: &str) -> (String, String) {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((userinfo, host)) = rest.split_once('@') {
            if let Some((user, pw)) = userinfo.split_once(':') {
                return (format!("{scheme}://{user}@{host}"), pw.to_string());
            }
        }
    }
    (url.to_string(), String::new())
}

/// A free loopback port (bound then released; the hub binds it right after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A hub created with `synchro-hub init` and run with `synchro-hub serve`, as a real process.
pub struct HubProcess {
    /// The hub's folder.
    pub dir: std::path::PathBuf,
    /// hub.toml.
    pub config: std::path::PathBuf,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// The CA certificate agents trust.
    pub ca: std::path::PathBuf,
    /// The web admin password printed once by `init`.
    pub admin_password: String,
    child: Option<std::process::Child>,
}

impl HubProcess {
    /// Initialises a hub in `dir` on `db` (not started).
    pub fn init(dir: &Path, db: &TestDatabase) -> Self {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut args = vec![
            "init".to_string(),
            "--dir".into(),
            dir.to_string_lossy().into_owned(),
            "--territory".into(),
            "test".into(),
            "--listen".into(),
            listen,
            "--database-url".into(),
            db.url.clone(),
        ];
        if let Some(pw) = &db.password_file {
            args.push("--database-password-file".into());
            args.push(pw.to_string_lossy().into_owned());
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = ok("synchro-hub", &refs);
        let admin_password = out
            .lines()
            .find_map(|l| l.strip_prefix("Web account: admin / "))
            .and_then(|rest| rest.split_whitespace().next())
            .expect("init prints the admin password")
            .to_string();
        HubProcess {
            dir: dir.to_path_buf(),
            config: dir.join("hub.toml"),
            url: format!("https://127.0.0.1:{port}"),
            ca: dir.join("tls/ca.pem"),
            admin_password,
            child: None,
        }
    }

    /// Starts `serve` and waits for its "listening" line (no sleeping). If the chosen port was
    /// taken in the meantime (another test's connection), moves to a new free port. The
    /// server's log is echoed on the test's standard error throughout.
    pub fn start(&mut self) {
        for _ in 0..5 {
            let mut child = Command::new(bin("synchro-hub"))
                .args(["serve", "--config", self.config.to_str().unwrap()])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start synchro-hub serve");
            // The first line of standard output comes back on a channel; the rest is drained
            // so that the server can never block on a full pipe.
            let (first_line, first_line_read) = std::sync::mpsc::channel();
            let stdout = child.stdout.take().expect("stdout");
            std::thread::spawn(move || {
                let mut reader = std::io::BufReader::new(stdout);
                let mut line = String::new();
                if reader.read_line(&mut line).is_ok() && !line.is_empty() {
                    let _ = first_line.send(line);
                }
                std::io::copy(&mut reader, &mut std::io::sink())
            });
            let stderr = child.stderr.take().expect("stderr");
            let log = std::thread::spawn(move || {
                let mut all = String::new();
                for line in std::io::BufReader::new(stderr)
                    .lines()
                    .map_while(Result::ok)
                {
                    eprintln!("{line}");
                    all.push_str(&line);
                    all.push('\n');
                }
                all
            });
            let line = first_line_read.recv_timeout(START_LIMIT);
            if line.as_deref().is_ok_and(|l| l.contains("listening on")) {
                self.child = Some(child);
                return;
            }
            // No listening line: the server stopped (its log says why), printed something
            // else, or hung; it is stopped either way before its log is read.
            let _ = child.kill();
            let _ = child.wait();
            let log = log.join().unwrap_or_default();
            assert!(
                log.contains("cannot listen"),
                "synchro-hub serve did not start (first line {line:?} within {START_LIMIT:?}): {log}"
            );
            let port = free_port();
            let old = self.url.rsplit(':').next().unwrap().to_string();
            let cfg = std::fs::read_to_string(&self.config)
                .unwrap()
                .replace(&format!("127.0.0.1:{old}"), &format!("127.0.0.1:{port}"));
            std::fs::write(&self.config, cfg).unwrap();
            self.url = format!("https://127.0.0.1:{port}");
        }
        panic!("synchro-hub serve could not find a free port");
    }

    /// Kills the server with SIGKILL (no chance to finish anything).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The hub's CLI with this configuration.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--config", self.config.to_str().unwrap()]);
        ok("synchro-hub", &all)
    }

    /// Enrols an operator workspace created by [`Territory::operator`].
    pub fn enrol(&self, ws: &Path, id: &str) {
        let public = ws.join(format!("keys/operator-{id}.pub.toml"));
        self.cli(&[
            "operator",
            "add",
            "--public",
            public.to_str().unwrap(),
            "--name",
            id,
        ]);
    }

    /// An operator workspace for this hub (its recipient; with `online`, its URL and CA),
    /// with the linkage secret installed, enrolled at the hub.
    pub fn operator(
        &self,
        t: &Territory,
        folder: &str,
        id: &str,
        profile: &str,
        online: bool,
    ) -> PathBuf {
        let recipient = self.dir.join("keys/hub-recipient.txt");
        let ca = self.ca.to_string_lossy().into_owned();
        let extra: Vec<&str> = if online {
            vec!["--hub-url", &self.url, "--ca-certificate", &ca]
        } else {
            Vec::new()
        };
        let ws = t.operator_in(folder, id, recipient.to_str().unwrap(), profile, &extra);
        self.enrol(&ws, id);
        ws
    }

    /// Opens the hub's store from the test (alongside the running server).
    pub fn store(&self, db: &TestDatabase) -> synchro_hub::store::Store {
        let password = db.password_file.as_ref().map(|p| {
            std::fs::read_to_string(p)
                .expect("password")
                .trim()
                .to_string()
        });
        let url = db.url.clone();
        block_on(synchro_hub::store::Store::connect(
            &url,
            password.as_deref(),
        ))
        .expect("store")
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs a future to completion (tests are synchronous) on one runtime shared by every call:
/// a store's pooled PostgreSQL connections belong to the runtime that opened them, so a fresh
/// runtime per call failed, now and then, on a connection left from a runtime already shut
/// down ("a Tokio 1.x context was found, but it is being shutdown").
/// A call still pending after [`STEP_LIMIT`] fails the test at the caller's line.
#[track_caller]
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    let done = RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime")
        })
        // The timer is made inside the runtime, which it needs.
        .block_on(async move { tokio::time::timeout(STEP_LIMIT, f).await });
    match done {
        Ok(output) => output,
        Err(_) => panic!("this call was still pending after {STEP_LIMIT:?}"),
    }
}

/// A rustls client configuration trusting only the CA in `ca` (PEM).
fn tls_trusting(ca: &Path) -> std::sync::Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(ca).expect("ca");
    for cert in rustls_pemfile::certs(&mut &pem[..]) {
        roots.add(cert.expect("cert")).expect("root");
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    std::sync::Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("tls")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// An HTTPS client trusting `ca` that does not follow redirects (to see cookies and 303s).
pub fn web_client(ca: &Path) -> ureq::Agent {
    ureq::AgentBuilder::new()
        .tls_config(tls_trusting(ca))
        .redirects(0)
        .build()
}

/// Posts raw bytes to the hub's batch endpoint, trusting `ca`; returns (status, JSON reply).
pub fn post_batch(
    url: &str,
    ca: &Path,
    body: &[u8],
    signature_json: Option<&str>,
) -> (u16, serde_json::Value) {
    use base64::Engine as _;
    let agent = ureq::AgentBuilder::new()
        .tls_config(tls_trusting(ca))
        .build();
    let mut req = agent.post(&format!("{url}/api/v1/batches"));
    if let Some(sig) = signature_json {
        req = req.set(
            "Synchro-Signature",
            &base64::engine::general_purpose::STANDARD.encode(sig),
        );
    }
    let (status, body) = match req.send_bytes(body) {
        Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(e) => panic!("cannot reach the hub: {e}"),
    };
    (
        status,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
    )
}

/// Runs `synchro-agent run` for a workspace, an export and a period; with `out`, writes the
/// sealed batch there instead of uploading. Returns the agent's output; fails the test if it fails.
pub fn agent_run(ws: &Path, input: &Path, period: &str, out: Option<&Path>) -> String {
    let config = ws.join("agent.toml");
    let mut args = vec![
        "run",
        "--config",
        config.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--period",
        period,
    ];
    if let Some(out) = out {
        args.extend(["--out", out.to_str().unwrap()]);
    }
    ok("synchro-agent", &args)
}

/// A small generated territory (default dirtiness and seed) and its exports under `dir`.
pub fn small_scenario(
    dir: &Path,
    operators: usize,
    months: u32,
    first_period: (i32, u32),
    persons: usize,
) -> (synchro_synth::Scenario, Vec<synchro_synth::ExportFile>) {
    let scenario = synchro_synth::Scenario::generate(synchro_synth::Config {
        operators,
        months,
        first_period,
        persons,
        ..synchro_synth::Config::default()
    });
    let files = scenario.write_exports(dir).expect("write exports");
    (scenario, files)
}
