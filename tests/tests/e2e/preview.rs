//! `preview --out` into something that is not a regular file: a named pipe (or `/dev/null`)
//! is written in place, never replaced by a file of the same name.

#![cfg(target_os = "linux")]

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::process::{Command, Stdio};
use std::time::Duration;

use synchro_shared::batch::PayloadReader;
use synchro_synth::Config;
use synchro_tests::{bin, small_scenario, Territory};

/// Linux's `O_NONBLOCK`: the test opens the pipe's reading end without waiting for a writer,
/// so a regression (the pipe replaced, never opened) fails instead of hanging.
const O_NONBLOCK: i32 = 0o4000;

#[test]
fn preview_writes_into_a_named_pipe_without_replacing_it() {
    let t = Territory::new();
    let (scenario, files) =
        small_scenario(&t.path("data"), 1, 1, (2026, 10), Config::default().persons);
    let op = &scenario.operators[0];
    let ws = t.operator(&op.id, &scenario.profile(0), &[]);
    let pipe = t.path("preview.pipe");
    let made = Command::new("mkfifo").arg(&pipe).status().unwrap();
    assert!(made.success(), "mkfifo failed");

    let mut reading = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(O_NONBLOCK)
        .open(&pipe)
        .unwrap();
    let mut child = Command::new(bin("synchro-agent"))
        .args(["preview", "--quiet", "--period", "2026-10", "--config"])
        .arg(ws.join("agent.toml"))
        .arg("--input")
        .arg(&files[0].path)
        .arg("--out")
        .arg(&pipe)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut received = Vec::new();
    let mut chunk = [0u8; 65536];
    let status = loop {
        match reading.read(&mut chunk) {
            Ok(0) | Err(_) => {
                // No data now: either the agent has not written yet, or it is done.
                if let Some(status) = child.try_wait().unwrap() {
                    // Whatever is left in the pipe after the writer closed it.
                    while let Ok(n) = reading.read(&mut chunk) {
                        if n == 0 {
                            break;
                        }
                        received.extend_from_slice(&chunk[..n]);
                    }
                    break status;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(n) => received.extend_from_slice(&chunk[..n]),
        }
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "preview failed: {stderr}");
    let kind = std::fs::symlink_metadata(&pipe).unwrap().file_type();
    assert!(kind.is_fifo(), "the named pipe was replaced by a {kind:?}");

    let mut reader = PayloadReader::new(&received[..]).unwrap();
    assert_eq!(reader.header().operator_id, op.id);
    let mut records = 0u64;
    while reader.next_record().unwrap().is_some() {
        records += 1;
    }
    assert!(records > 0, "no record came through the pipe");
    assert!(
        stderr.contains(&format!("{records} records")),
        "the summary should count what went through the pipe: {stderr}"
    );
}
