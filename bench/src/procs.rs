//! The two processes under test: fabric-sim and opergroupd, and what /proc says of them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::http::Conn;

pub const USERNAME: &str = "admin";
pub const PASSWORD: &str = "NokiaSrl1!";

/// A child process that gets SIGTERM (then SIGKILL) when the bench is done with it.
pub struct Proc {
    pub name: &'static str,
    pub child: Child,
    pub pid: u32,
}

impl Proc {
    /// SIGTERM, then SIGKILL if it has not exited within `grace`. Returns how it ended.
    pub async fn stop(mut self, grace: Duration) -> String {
        // SAFETY: kill(2) on our own child's pid, which has not been reaped yet.
        unsafe { libc::kill(self.pid as i32, libc::SIGTERM) };
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(Ok(st)) => format!("{} exited: {st}", self.name),
            Ok(Err(e)) => format!("{} wait failed: {e}", self.name),
            Err(_) => {
                let _ = self.child.kill().await;
                format!("{} did not exit within {grace:?} of SIGTERM; killed", self.name)
            }
        }
    }
}

/// fabric-sim's ready line.
#[derive(Debug, Deserialize)]
pub struct Ready {
    pub leaves: BTreeMap<String, u16>,
    pub control: String,
}

pub struct Sim {
    pub proc: Proc,
    pub ready: Ready,
    pub started_in: Duration,
}

/// Starts fabric-sim with `leaves` leaves on ephemeral ports, fast BGP timings and the
/// control API on an ephemeral port; waits (with a deadline) for its ready line.
pub async fn start_sim(bin: &Path, leaves: usize, logs: &Path, log_name: &str) -> Result<Sim, String> {
    let log = std::fs::File::create(logs.join(log_name)).map_err(|e| format!("fabric-sim log: {e}"))?;
    let t0 = Instant::now();
    let mut child = Command::new(bin)
        .args(["--leaves", &leaves.to_string(), "--base-port", "0", "--control", "127.0.0.1:0", "--insecure"])
        .args(["--username", USERNAME, "--password", PASSWORD, "--timings", "fast"])
        .env("RUST_LOG", std::env::var("SIM_LOG").unwrap_or_else(|_| "warn".into()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let pid = child.id().ok_or("fabric-sim exited at once")?;
    let stdout = child.stdout.take().ok_or("fabric-sim: no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Duration::from_secs(30 + leaves as u64 / 50);
    let line = tokio::time::timeout(deadline, lines.next_line())
        .await
        .map_err(|_| format!("fabric-sim printed no ready line within {deadline:?}"))?
        .map_err(|e| format!("fabric-sim stdout: {e}"))?
        .ok_or_else(|| format!("fabric-sim exited before its ready line (see {log_name})"))?;
    let started_in = t0.elapsed();
    let ready: Ready = serde_json::from_str(&line).map_err(|e| format!("fabric-sim ready line {line:?}: {e}"))?;
    if ready.leaves.len() != leaves {
        return Err(format!("fabric-sim reports {} leaves, asked for {leaves}", ready.leaves.len()));
    }
    // Nothing more is printed on stdout, but keep the pipe drained anyway.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Sim { proc: Proc { name: "fabric-sim", child, pid }, ready, started_in })
}

/// The config under test: one target per leaf, one group per leaf with readiness
/// (either spine up is enough; one iBGP neighbor established with at least one EVPN route),
/// no delays, so every measured millisecond is the controller's and the simulator's.
/// `liveness`: the `defaults.liveness` to write (a duration, `0s` = off); None: opergroupd's default.
/// `max_disabled`: `safety.max-disabled` to write (a count or a percentage); None: no cap.
/// `pairs`: an Ethernet Segment per two leaves in order (leaf1 with leaf2, ...), as every
/// client dual-homed to a leaf pair.
pub fn config_yaml(
    leaves: &[(String, u16)],
    liveness: Option<&str>,
    max_disabled: Option<&str>,
    pairs: bool,
) -> String {
    let mut y = String::new();
    y += &format!("defaults:\n  username: {USERNAME}\n  password: \"{PASSWORD}\"\n  tls:\n    insecure: true\n");
    if let Some(l) = liveness {
        y += &format!("  liveness: {l}\n");
    }
    if let Some(cap) = max_disabled {
        y += &format!("\nsafety:\n  max-disabled: {cap}\n");
    }
    if pairs {
        y += "\nsegments:\n";
        for (k, pair) in leaves.chunks_exact(2).enumerate() {
            y += &format!("  pair{}: [{}-es1, {}-es1]\n", k + 1, pair[0].0, pair[1].0);
        }
    }
    y += "\ntargets:\n";
    for (name, port) in leaves {
        y += &format!("  {name}: {{ address: \"127.0.0.1:{port}\" }}\n");
    }
    y += "\ngroups:\n";
    for (name, _) in leaves {
        y += &format!(
            "  {name}-es1:\n    target: {name}\n    uplinks: [\"ethernet-1/{{49..50}}\"]\n    required-up: 1\n    downlinks: [\"ethernet-1/1\"]\n    readiness:\n      network-instance: default\n      bgp-neighbors: [\"10.0.1.1\", \"10.0.1.2\"]\n      min-established: 1\n      evpn-min-received-routes: 1\n    down-delay: 0s\n    up-delay: 0s\n"
        );
    }
    y
}

/// `leaf17` -> 17 (names that do not follow the pattern sort last).
pub fn leaf_number(name: &str) -> usize {
    name.strip_prefix("leaf").and_then(|n| n.parse().ok()).unwrap_or(usize::MAX)
}

pub struct Controller {
    pub proc: Proc,
    /// From spawn to /readyz answering 200 (every target synced at least once).
    pub sync: Duration,
    /// opergroupd's status server (`None` for a peer).
    pub http: Option<String>,
}

/// A port that was free a moment ago (bind 0, read, release).
pub fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// Starts `opergroupd run` and waits until /readyz says every target has synced.
///
/// The status port is one that was free a moment before the spawn; at 10,000 leaves the
/// sims' 20,000 sockets can take it in between (seen once). Then opergroupd exits at once
/// saying so, and it is started again on another port.
pub async fn start_controller(
    bin: &Path,
    config: &Path,
    logs: &Path,
    deadline: Duration,
) -> Result<Controller, String> {
    let mut attempt = 1;
    loop {
        let http = format!("127.0.0.1:{}", free_port()?);
        match start_controller_once(bin, config, logs, deadline, http).await {
            Err(Start::PortTaken(e)) if attempt < 3 => {
                eprintln!("   {e}: starting opergroupd again on another port");
                attempt += 1;
            }
            Err(Start::PortTaken(e) | Start::Failed(e)) => return Err(e),
            Ok(c) => return Ok(c),
        }
    }
}

/// Why a start failed: the status port was taken (worth another try) or anything else.
#[derive(Debug)]
pub(crate) enum Start {
    PortTaken(String),
    Failed(String),
}

impl From<String> for Start {
    fn from(e: String) -> Start {
        Start::Failed(e)
    }
}

pub(crate) async fn start_controller_once(
    bin: &Path,
    config: &Path,
    logs: &Path,
    deadline: Duration,
    http: String,
) -> Result<Controller, Start> {
    let log = std::fs::File::create(logs.join("opergroupd.log")).map_err(|e| format!("opergroupd log: {e}"))?;
    let t0 = Instant::now();
    let child = Command::new(bin)
        .arg("run")
        .arg("--config")
        .arg(config)
        .args(["--http", &http])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let pid = child.id().ok_or_else(|| "opergroupd exited at once".to_string())?;
    let mut proc = Proc { name: "opergroupd", child, pid };
    let mut last;
    loop {
        if let Ok(Some(st)) = proc.child.try_wait() {
            let log = logs.join("opergroupd.log");
            let e = format!("opergroupd exited during start-up ({st}); see {}", log.display());
            let said = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(
                if said.contains(&format!("{http}: cannot listen")) && said.contains("Address already in use") {
                    Start::PortTaken(format!("status port {http} taken before opergroupd bound it"))
                } else {
                    Start::Failed(e)
                },
            );
        }
        // A fresh connection per probe: the server may not listen yet.
        match Conn::new(http.clone()).get("/readyz").await {
            Ok(r) if r.status == 200 => break,
            Ok(r) => last = String::from_utf8_lossy(&r.body).trim().chars().take(300).collect(),
            Err(e) => last = e,
        }
        if t0.elapsed() > deadline {
            let _ = proc.stop(Duration::from_secs(5)).await;
            return Err(Start::Failed(format!("opergroupd not ready within {deadline:?}: {last}")));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(Controller { proc, sync: t0.elapsed(), http: Some(http) })
}

/// CPU time (user + system, all threads) and memory of a process, from /proc.
///
/// The CPU time is the sum of each live thread's run time in nanoseconds
/// (`/proc/PID/task/TID/schedstat`), not `utime + stime` of `/proc/PID/stat`: those are in
/// clock ticks (10 ms here), and a 100-leaf storm costs opergroupd two of them, so a ratio
/// to the peer's CPU was ±50 % rounding. A thread that ended between two readings takes its
/// time with it; the controllers and sims measured keep their threads for the whole run.
/// Without schedstat (a kernel built without it) the ticks are used.
#[derive(Clone, Copy, Debug)]
pub struct Usage {
    pub cpu: Duration,
    pub rss_kib: u64,
    pub hwm_kib: u64,
    pub threads: u64,
}

pub fn usage(pid: u32) -> Result<Usage, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).ok_or("unreadable /proc/PID/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat(5); `rest` starts at field 3.
    let ticks = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<u64>().ok()).ok_or("unreadable utime/stime");
    let total = ticks(14)? + ticks(15)?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let cpu = threads_run_time(pid).unwrap_or(Duration::from_nanos(total * 1_000_000_000 / hz));
    Ok(Usage { cpu, rss_kib: field("VmRSS:"), hwm_kib: field("VmHWM:"), threads: field("Threads:") })
}

/// The summed run time of `pid`'s live threads (schedstat's first field, nanoseconds);
/// None when no thread's schedstat can be read.
fn threads_run_time(pid: u32) -> Option<Duration> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total: Option<u64> = None;
    for task in tasks.flatten() {
        // A thread may end between the listing and the read: it is simply not counted.
        let Ok(line) = std::fs::read_to_string(task.path().join("schedstat")) else { continue };
        if let Some(ns) = line.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()) {
            *total.get_or_insert(0) += ns;
        }
    }
    total.map(Duration::from_nanos)
}

/// The binary next to this one (same build profile), unless given.
pub fn sibling(given: Option<PathBuf>, name: &str) -> Result<PathBuf, String> {
    if let Some(p) = given {
        return Ok(p);
    }
    let me = std::env::current_exe().map_err(|e| format!("cannot locate this binary: {e}"))?;
    let p = me.with_file_name(name);
    if p.exists() {
        Ok(p)
    } else {
        Err(format!(
            "{} not found; build it (cargo build --release -p {}) or pass --{name} PATH",
            p.display(),
            if name == "opergroupd" { "opergroupd" } else { "fabric-sim" }
        ))
    }
}

/// The pygnmi baseline controller (bench/peers/pygnmi_baseline.py, run by the venv's Python).
pub fn peer_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/pygnmi_baseline.py")
}

/// The project's venv (scripts/test and bench/smoke.sh create it).
pub fn venv_python() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python")
}

/// Starts the baseline peer against every leaf and waits (with a deadline) for its
/// `{"synced": N}` line. A leaf thread that gives up later prints `{"failed": ...}`;
/// those are collected in the returned list for the run's problems.
pub async fn start_peer(
    python: &Path,
    leaves: &[(String, u16)],
    logs: &Path,
    deadline: Duration,
) -> Result<(Controller, std::sync::Arc<std::sync::Mutex<Vec<String>>>), String> {
    if !python.exists() {
        return Err(format!(
            "{} not found: create the venv (python3 -m venv .venv && .venv/bin/pip install -r tests/python/requirements.txt) or pass --python",
            python.display()
        ));
    }
    let targets: BTreeMap<&String, String> =
        leaves.iter().map(|(name, port)| (name, format!("127.0.0.1:{port}"))).collect();
    let file = logs.join("peer-targets.json");
    let text = serde_json::to_string(&targets).map_err(|e| e.to_string())?;
    std::fs::write(&file, text).map_err(|e| format!("{}: {e}", file.display()))?;
    let log = std::fs::File::create(logs.join("peer.log")).map_err(|e| format!("peer log: {e}"))?;
    let t0 = Instant::now();
    let mut child = Command::new(python)
        .arg(peer_script())
        .arg("--targets")
        .arg(&file)
        .args(["--username", USERNAME, "--password", PASSWORD])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", python.display()))?;
    let pid = child.id().ok_or("the peer exited at once")?;
    let stdout = child.stdout.take().ok_or("peer: no stdout")?;
    let proc = Proc { name: "pygnmi baseline", child, pid };
    let mut lines = BufReader::new(stdout).lines();
    let failures = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let waited = tokio::time::timeout(deadline, async {
        loop {
            let line = lines.next_line().await.map_err(|e| format!("peer stdout: {e}"))?;
            let line = line
                .ok_or_else(|| format!("the peer exited before syncing (see {})", logs.join("peer.log").display()))?;
            let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| format!("peer line {line:?}: {e}"))?;
            if v.get("synced").is_some() {
                return Ok(());
            }
            if let Some(leaf) = v.get("failed") {
                return Err(format!("the peer's thread for {leaf} gave up before sync: {}", v["error"]));
            }
        }
    })
    .await;
    let sync = t0.elapsed();
    let fail = match waited {
        Err(_) => Some(format!("the peer did not sync every leaf within {deadline:?}")),
        Ok(Err(e)) => Some(e),
        Ok(Ok(())) => None,
    };
    if let Some(e) = fail {
        let how = proc.stop(Duration::from_secs(5)).await;
        return Err(format!("{e} ({how})"));
    }
    let seen = failures.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("\"failed\"") {
                seen.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        }
    });
    Ok((Controller { proc, sync, http: None }, failures))
}

/// `perf record --call-graph dwarf` on the given processes until [`Perf::stop`] (SIGINT,
/// so perf writes its file). For `--perf-storm`: where the storm's CPU goes.
pub struct Perf(Proc);

impl Perf {
    pub fn start(out: &Path, pids: &[u32]) -> Result<Perf, String> {
        let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
        let child = Command::new("perf")
            .args(["record", "--call-graph", "dwarf", "-F", "2999", "-o"])
            .arg(out)
            .args(["-p", &pids.join(",")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start perf (apt-get install linux-perf): {e}"))?;
        let pid = child.id().ok_or("perf exited at once")?;
        Ok(Perf(Proc { name: "perf", child, pid }))
    }

    pub async fn stop(mut self) -> String {
        // SAFETY: kill(2) on our own child's pid, which has not been reaped yet.
        unsafe { libc::kill(self.0.pid as i32, libc::SIGINT) };
        match tokio::time::timeout(Duration::from_secs(60), self.0.child.wait()).await {
            Ok(Ok(st)) => format!("perf exited: {st}"),
            _ => self.0.stop(Duration::from_secs(1)).await,
        }
    }
}

/// A sim record without a simulator behind it (a `sleep` child stands in for the process),
/// for tests of the bench's own bookkeeping.
#[cfg(test)]
pub fn fake_sim(leaves: BTreeMap<String, u16>) -> Sim {
    let child = Command::new("sleep").arg("60").kill_on_drop(true).spawn().expect("spawn sleep");
    let pid = child.id().unwrap_or(0);
    Sim {
        proc: Proc { name: "fake", child, pid },
        ready: Ready { leaves, control: String::new() },
        started_in: Duration::ZERO,
    }
}
