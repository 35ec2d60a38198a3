//! Helpers for Synchro's end-to-end tests: the workspace's binaries, a territory set up as an
//! operator would set it up, and the rule for tools that may be absent on a laptop.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

/// Runs a workspace binary and returns its output.
pub fn run(name: &str, args: &[&str]) -> Output {
    Command::new(bin(name))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"))
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
        let ws = self.path(id);
        let mut args = vec![
            "init",
            "--dir",
            ws.to_str().unwrap(),
            "--operator-id",
            id,
            "--hub-recipient",
        ];
        let recipient = self.p("hub/hub-recipient.txt");
        args.push(&recipient);
        args.extend_from_slice(extra_init);
        ok("synchro-agent", &args);
        std::fs::write(ws.join("profile.toml"), profile).expect("write profile");
        let wrapped = self.p(&format!("wrapped-{id}.txt"));
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
