//! `opergroupd exabgp --config FILE` as a process: stdout carries only commands, logs go
//! to stderr, SIGTERM withdraws before exiting 0, a bad config exits 1 naming the place.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_opergroupd");

fn temp(name: &str, text: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("opergroupd-bin-{}-{name}", std::process::id()));
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn stdout_is_commands_only_and_sigterm_withdraws() {
    let config = temp(
        "ok.yaml",
        "groups: {}\nservices:\n  vip:\n    prefix: 192.0.2.1/32\n    med: 100\n    checks: [{exec: 'true'}]\n    interval: 1s\n    fast-interval: 50ms\n    rise: 1\n",
    );
    let mut child = Command::new(BIN)
        .args(["exabgp", "--config"])
        .arg(&config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    let wait = Duration::from_secs(10);
    assert_eq!(rx.recv_timeout(wait).unwrap(), "announce route 192.0.2.1/32 next-hop self med 100");
    writeln!(stdin, "done").unwrap();
    // SAFETY: signalling the child we spawned, by its pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(rx.recv_timeout(wait).unwrap(), "withdraw route 192.0.2.1/32 next-hop self med 100");
    writeln!(stdin, "done").unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(rx.recv_timeout(wait).is_err(), "nothing else on stdout");
    let mut logs = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut logs).unwrap();
    assert!(logs.contains("exabgp actuator started"), "{logs}");
    std::fs::remove_file(config).ok();
}

#[test]
fn bad_config_exits_1_with_line_and_column() {
    let config = temp("bad.yaml", "services:\n  vip:\n    prefix: 192.0.2.1/33\n");
    let out = Command::new(BIN).args(["exabgp", "--config"]).arg(&config).stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("prefix length") && err.contains("bad.yaml:3:13: services.vip.prefix"), "{err}");
    std::fs::remove_file(config).ok();
}

#[test]
fn shipped_example_config_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/exabgp/services.yaml");
    let services = opergroupd::anycast::load_services(std::path::Path::new(path)).expect("example loads");
    assert_eq!(services.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["dns-vip", "web-vip"]);
}
