//! The `opergroupd run --dry-run` binary against fabric-sim started in the test: stdout
//! carries only the contract's JSON lines, logs go to stderr, SIGTERM exits 0 within 5 s,
//! and the configured password appears in no log line even at debug level; a stderr
//! nobody reads does not stop decisions.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fabric_sim::{SimConfig, Timings};

const BIN: &str = env!("CARGO_BIN_EXE_opergroupd");
const DEADLINE: Duration = Duration::from_secs(20);
/// Distinctive, so any occurrence in the logs is a leak and nothing else.
const PASSWORD: &str = "Quartz-Zebra-7719";

/// Lines of a child's pipe, read on a thread so neither pipe can fill and block the child.
struct Lines {
    rx: mpsc::Receiver<String>,
    all: Vec<String>,
    /// `next` returns lines from here on.
    cursor: usize,
}

impl Lines {
    fn read(pipe: impl std::io::Read + Send + 'static) -> Lines {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines { rx, all: Vec::new(), cursor: 0 }
    }

    /// Polls until every line so far satisfies `done`, with a deadline.
    async fn wait_for(&mut self, what: &str, done: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            while let Ok(l) = self.rx.try_recv() {
                self.all.push(l);
            }
            if done(&self.all) {
                return;
            }
            assert!(Instant::now() < deadline, "no {what} within {DEADLINE:?}; lines:\n{}", self.all.join("\n"));
            // Not a blocking wait: the fabric runs on this runtime.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The next line not returned before.
    async fn next(&mut self, what: &str) -> String {
        let want = self.cursor + 1;
        self.wait_for(what, |all| all.len() >= want).await;
        self.cursor = want;
        self.all[want - 1].clone()
    }

    /// Everything, once the writer has closed the pipe.
    fn rest(mut self) -> Vec<String> {
        while let Ok(l) = self.rx.recv_timeout(Duration::from_secs(5)) {
            self.all.push(l);
        }
        self.all
    }
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A fabric of `leaves` and a config for it, written to a temporary file.
async fn fabric_and_config(leaves: usize) -> (fabric_sim::Fabric, std::path::PathBuf) {
    let sim =
        SimConfig { leaves, base_port: 0, timings: Timings::fast(), password: PASSWORD.into(), ..SimConfig::default() };
    let fabric = fabric_sim::start(sim).await.expect("fabric-sim starts");
    let names: Vec<String> = (1..=leaves).map(|i| format!("leaf{i}")).collect();
    let mut yaml =
        format!("defaults:\n  username: admin\n  password: \"{PASSWORD}\"\n  tls: {{ insecure: true }}\ntargets:\n");
    for leaf in &names {
        yaml += &format!("  {leaf}: {{ address: \"{}\" }}\n", fabric.leaf_addr(leaf).unwrap());
    }
    yaml += "groups:\n";
    for leaf in &names {
        yaml += &format!(
            "  {leaf}-es1:\n    target: {leaf}\n    uplinks: [\"ethernet-1/{{49..50}}\"]\n    downlinks: [\"ethernet-1/1\"]\n    readiness:\n      bgp-neighbors: [\"10.0.1.1\", \"10.0.1.2\"]\n      min-established: 1\n"
        );
    }
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let file = std::env::temp_dir().join(format!("opergroupd-scenario-{}-{nanos}.yaml", std::process::id()));
    std::fs::write(&file, &yaml).unwrap();
    (fabric, file)
}

/// `opergroupd run --dry-run` on `config` at debug level, stdout piped, stderr to `stderr`.
fn spawn_dry_run(config: &std::path::Path, stderr: impl Into<Stdio>) -> Killed {
    Killed(
        Command::new(BIN)
            .args(["run", "--dry-run", "--http", "127.0.0.1:0", "--config"])
            .arg(config)
            .env("RUST_LOG", "debug")
            .env_remove("GNMI_PASSWORD")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("the binary starts"),
    )
}

/// SIGTERM, then the exit status, which must come within 5 s.
async fn sigterm_exit(child: &mut Killed) -> std::process::ExitStatus {
    let pid = libc::pid_t::try_from(child.0.id()).unwrap();
    let sent = Instant::now();
    // SAFETY: kill(2) on our own child's pid with a valid signal number.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            return s;
        }
        assert!(sent.elapsed() < Duration::from_secs(5), "still running 5 s after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A paused terminal or a log shipper that stopped reading: stderr's pipe is full and
/// stays full. Sixteen leaves' start-up at debug level fill a one-page pipe; the loop must
/// still decide (a dry-run line on stdout), not wait in a `write` to stderr, and SIGTERM
/// must still end the process.
#[tokio::test]
async fn a_stderr_nobody_reads_does_not_stop_the_loop() {
    let (fabric, file) = fabric_and_config(16).await;
    let control = fabric.control();
    let (_stderr_read, stderr_write) = std::io::pipe().unwrap();
    // SAFETY: fcntl(2) on a pipe descriptor we own; F_SETPIPE_SZ takes an int.
    let size = unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&stderr_write), libc::F_SETPIPE_SZ, 4096) };
    assert!(size >= 4096, "cannot shrink the pipe: {}", std::io::Error::last_os_error());
    let mut child = spawn_dry_run(&file, stderr_write);
    let mut out = Lines::read(child.0.stdout.take().unwrap());
    // Full: one of the child's threads waits in a write to a pipe (stdout is read all along).
    let pid = child.0.id();
    let blocked_in_write = || {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten();
        tasks
            .into_iter()
            .any(|t| std::fs::read_to_string(t.path().join("wchan")).is_ok_and(|w| w.contains("pipe_write")))
    };
    let deadline = Instant::now() + DEADLINE;
    while !blocked_in_write() {
        assert!(Instant::now() < deadline, "no thread of the child ever waited on the full stderr pipe");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    control.link("leaf1", "ethernet-1/49", false).unwrap();
    control.link("leaf1", "ethernet-1/50", false).unwrap();
    let line = out.next("the disable line while stderr is full").await;
    assert!(line.contains(r#""value":"disable""#) && line.contains("leaf1-es1"), "{line}");
    // Nor does it hold the exit: SIGTERM still exits 0 within 5 s (the queued lines are
    // given up after a second).
    let status = sigterm_exit(&mut child).await;
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM: {status:?}");
    drop(child);
    let _ = std::fs::remove_file(&file);
    fabric.shutdown().await;
}

#[tokio::test]
async fn dry_run_binary_prints_json_lines_logs_to_stderr_exits_on_sigterm_and_never_logs_the_password() {
    let (fabric, file) = fabric_and_config(2).await;
    let control = fabric.control();

    let mut child = spawn_dry_run(&file, Stdio::piped());
    let mut out = Lines::read(child.0.stdout.take().unwrap());
    let mut err = Lines::read(child.0.stderr.take().unwrap());

    let synced =
        |all: &[String], leaf: &str| all.iter().any(|l| l.contains("synced: data is evidence") && l.contains(leaf));
    err.wait_for("both leaves synced in the logs", |all| synced(all, "target=leaf1") && synced(all, "target=leaf2"))
        .await;
    control.link("leaf1", "ethernet-1/49", false).unwrap();
    control.link("leaf1", "ethernet-1/50", false).unwrap();
    let line = out.next("the disable line").await;
    let v: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
    assert_eq!(v["target"], "leaf1", "{line}");
    assert_eq!(v["group"], "leaf1-es1", "{line}");
    assert_eq!(v["path"], "/interface[name=ethernet-1/1]/admin-state", "{line}");
    assert_eq!(v["value"], "disable", "{line}");
    assert!(v["reason"].as_str().is_some_and(|r| r.contains("0/2 uplinks up")), "{line}");

    control.link("leaf1", "ethernet-1/49", true).unwrap();
    let line = out.next("the enable line").await;
    assert!(line.contains(r#""value":"enable""#), "{line}");
    // Dry-run: the leaf itself was never touched.
    assert!(control.sets().is_empty(), "{:?}", control.sets());
    assert_eq!(control.admin_state("leaf1", "ethernet-1/1").unwrap().as_deref(), Some("enable"));

    // SIGTERM: exit 0 within 5 s.
    let status = sigterm_exit(&mut child).await;
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM: {status:?}");

    let stdout = out.rest();
    let stderr = err.rest();
    assert_eq!(stdout.len(), 2, "stdout: exactly the two intended Sets:\n{}", stdout.join("\n"));
    for l in &stdout {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}"));
        for key in ["target", "group", "path", "value"] {
            assert!(v[key].is_string(), "stdout line without {key}: {l}");
        }
    }
    assert!(stderr.iter().any(|l| l.contains("DEBUG")), "debug logging was on");
    assert!(stderr.iter().any(|l| l.contains("SIGTERM")), "the shutdown is logged:\n{}", stderr.join("\n"));
    let leaks: Vec<&String> = stderr.iter().filter(|l| l.contains(PASSWORD)).collect();
    assert!(leaks.is_empty(), "the password is in the logs:\n{leaks:#?}");

    let _ = std::fs::remove_file(&file);
    fabric.shutdown().await;
}
