//! The key ceremony's command line: files, permissions, fingerprints, and no secret printed.

use std::process::Command;

fn keys(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_synchro-keys"))
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn ceremony_prints_fingerprints_never_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    let (ok, out) = keys(&["linkage", "new", "--epoch", "1", "--out", &p("linkage.key")]);
    assert!(ok, "{out}");
    let (ok, _) = keys(&["operator-new", "--id", "siao-69", "--dir", &p("op")]);
    assert!(ok);
    let (ok, _) = keys(&["hub-new", "--dir", &p("hub")]);
    assert!(ok);
    let (ok, out) = keys(&[
        "wrap",
        "--secret",
        &p("linkage.key"),
        "--to",
        &p("op/operator-siao-69.pub.toml"),
        "--out",
        &p("wrapped.txt"),
    ]);
    assert!(ok, "{out}");
    let (ok, all) = keys(&[
        "fingerprint",
        &p("linkage.key"),
        &p("op/operator-identity.key"),
        &p("op/operator-signing.key"),
        &p("op/operator-siao-69.pub.toml"),
        &p("hub/hub-identity.key"),
        &p("hub/hub-recipient.txt"),
        &p("wrapped.txt"),
    ]);
    assert!(ok, "{all}");
    let secret_line = std::fs::read_to_string(p("linkage.key")).unwrap();
    let secret = secret_line
        .lines()
        .last()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    assert!(!all.contains(&secret) && !out.contains(&secret));
    assert!(!all.contains("AGE-SECRET-KEY"));
    assert!(all.contains("linkage secret, epoch 1"));
    // Rotation makes the next epoch, dry runs write nothing.
    let (ok, out) = keys(&[
        "linkage",
        "rotate",
        "--current",
        &p("linkage.key"),
        "--out",
        &p("l2.key"),
        "--dry-run",
    ]);
    assert!(ok && out.contains("epoch 2"), "{out}");
    assert!(!dir.path().join("l2.key").exists());
    let (ok, out) = keys(&[
        "linkage",
        "rotate",
        "--current",
        &p("linkage.key"),
        "--out",
        &p("l2.key"),
    ]);
    assert!(ok && out.contains("epoch 2"), "{out}");
}

#[cfg(unix)]
#[test]
fn exposed_secret_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("linkage.key");
    let (ok, _) = keys(&["linkage", "new", "--out", key.to_str().unwrap()]);
    assert!(ok);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, out) = keys(&["fingerprint", key.to_str().unwrap()]);
    assert!(!ok);
    assert!(out.contains("chmod 600"), "{out}");
}
