//! opergroupd-bench: starts fabric-sim and opergroupd as separate processes over loopback
//! and measures reaction, recovery with readiness, a storm, initial sync and idle cost, for
//! each fabric size asked. Prints a markdown table (and JSON with `--json`). Exits 1 when
//! a correctness condition failed (a missing or duplicate Set, an enable before
//! readiness); timings are reported, never asserted.
//!
//! With `--peer pygnmi` every size is also run against a baseline controller written the
//! way a network engineer would today (bench/peers/pygnmi_baseline.py: Python, pygnmi, a
//! thread and a subscription per leaf, no readiness), on a fresh fabric-sim of the same
//! binary, and a second table gives both side by side with the ratios.

mod fleet;
mod http;
mod procs;
mod scenarios;
mod watch;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use serde::Serialize;

use scenarios::Problems;

#[derive(Parser)]
#[command(name = "opergroupd-bench", about = "End-to-end benchmark of opergroupd against fabric-sim")]
struct Cli {
    /// Fabric sizes, one run each (fresh processes), side by side in one table.
    #[arg(long, value_delimiter = ',', default_value = "1,100,1000")]
    leaves: Vec<usize>,
    /// Reaction events per run (both uplinks of a leaf down, spread over the leaves).
    #[arg(long, default_value_t = 200)]
    events: usize,
    /// Recovery-with-readiness events per run (each waits out the sim's BGP delays).
    #[arg(long, default_value_t = 50)]
    recovery_events: usize,
    /// Idle window for CPU and RSS, seconds.
    #[arg(long, default_value_t = 10)]
    idle_secs: u64,
    /// Leaves per fabric-sim process: larger fabrics run on several sims, because one sim
    /// holds a listener and a connection per leaf and the open-file limit may be 20,000.
    #[arg(long, default_value_t = 5000)]
    leaves_per_sim: usize,
    /// opergroupd's `defaults.liveness` in the generated config (`0s`: off; default: opergroupd's,
    /// 10s). Liveness asks every subscription for heartbeats, the idle cost at large N.
    #[arg(long, value_name = "DURATION")]
    liveness: Option<String>,
    /// opergroupd's `safety.max-disabled` in the generated config (`100%` caps nothing yet
    /// makes the safety stage judge every group on each evaluation; default: no cap).
    #[arg(long, value_name = "CAP")]
    max_disabled: Option<String>,
    /// An Ethernet Segment per two leaves in the generated config (leaf1 with leaf2, ...), as
    /// when every client is dual-homed to a leaf pair. In the storm both members of a pair
    /// fail, so one of each pair keeps its downlinks: expect half the Sets.
    #[arg(long)]
    segment_pairs: bool,
    /// During the reaction events, GET opergroupd's /status back to back (one connection),
    /// as a dashboard or a script polling it would: reaction must not wait for a scrape.
    #[arg(long)]
    scrape_status: bool,
    /// Parallel keep-alive connections that inject the storm.
    #[arg(long, default_value_t = 8)]
    storm_conns: usize,
    /// Leaves whose uplinks go down per storm request (`POST /v1/links`): the default is a
    /// burst, every leaf at once as when a spine pair fails; 1 spreads the storm over the
    /// injection's round trips, as the bench did until round nine.
    #[arg(long, default_value_t = 50)]
    storm_batch: usize,
    /// Small and short: 1 and 100 leaves, 50 events, 10 recoveries, 3 s idle (unless given).
    #[arg(long)]
    quick: bool,
    #[arg(long, value_name = "BIN")]
    opergroupd: Option<PathBuf>,
    #[arg(long = "fabric-sim", value_name = "BIN")]
    fabric_sim: Option<PathBuf>,
    /// Keep every run's config and process logs (kept anyway when a run had problems).
    #[arg(long)]
    keep_logs: bool,
    /// Also run every size against this baseline controller (fresh fabric-sim, same binary)
    /// and print the comparison. It has no readiness, so it skips the recovery scenario.
    #[arg(long, value_enum)]
    peer: Option<Peer>,
    /// Python for the peer (default: the project's .venv, as scripts/test builds it).
    #[arg(long, value_name = "BIN")]
    python: Option<PathBuf>,
    /// Record the storm of each run with `perf record --call-graph dwarf` (both the
    /// controller and fabric-sim) into DIR/perf-<controller>-<leaves>.data.
    #[arg(long, value_name = "DIR")]
    perf_storm: Option<PathBuf>,
    /// Also write the results as JSON here.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
enum Peer {
    /// bench/peers/pygnmi_baseline.py
    Pygnmi,
}

/// Which controller a run measures.
#[derive(Clone, Copy, PartialEq)]
enum Under {
    Opergroupd,
    Peer(Peer),
}

impl Under {
    fn label(self) -> &'static str {
        match self {
            Under::Opergroupd => "opergroupd",
            Under::Peer(Peer::Pygnmi) => "pygnmi baseline",
        }
    }
}

#[derive(Serialize, Default, Clone, Copy)]
struct Dist {
    n: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

impl Dist {
    fn of(mut ns: Vec<u64>) -> Dist {
        if ns.is_empty() {
            return Dist::default();
        }
        ns.sort_unstable();
        // Nearest rank: the smallest value with at least q of the samples at or below it.
        let rank = |q: f64| ns[((q * ns.len() as f64).ceil() as usize).clamp(1, ns.len()) - 1] as f64 / 1e6;
        Dist { n: ns.len(), p50_ms: rank(0.50), p99_ms: rank(0.99), max_ms: *ns.last().unwrap_or(&0) as f64 / 1e6 }
    }
    fn cell(&self) -> String {
        if self.n == 0 {
            "–".into()
        } else {
            format!("{:.2} / {:.2} / {:.2} ({})", self.p50_ms, self.p99_ms, self.max_ms, self.n)
        }
    }
}

#[derive(Serialize)]
struct RunResult {
    controller: &'static str,
    leaves: usize,
    sim_ready_ms: f64,
    sync_ms: f64,
    idle_rss_mib: f64,
    idle_cpu_pct: f64,
    threads: u64,
    reaction: Dist,
    recovery: Dist,
    storm_injected_ms: f64,
    storm_all_sets_ms: Option<f64>,
    storm_per_leaf: Dist,
    storm_sets: usize,
    /// CPU time (opergroupd, fabric-sim) from the storm's start through its quiet window.
    storm_cpu_ms: (f64, f64),
    /// opergroupd's group evaluations in the storm, per leaf (from /metrics; None for a peer).
    storm_evaluations_per_leaf: Option<f64>,
    /// The notifications opergroupd's sources passed on in the storm, per leaf (idem).
    storm_notifications_per_leaf: Option<f64>,
    /// The machine's 1-minute load average before the idle window and after the storm:
    /// how much other work shared the cores with this run.
    loadavg: (f64, f64),
    peak_rss_mib: f64,
    shutdown: String,
    problems: Problems,
    /// Where the run's config and process logs are, when they were kept.
    logs: Option<String>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let mut cli = Cli::parse();
    if cli.quick {
        let given = |name: &str| std::env::args().any(|a| a == name || a.starts_with(&format!("{name}=")));
        if !given("--leaves") {
            cli.leaves = vec![1, 100];
        }
        if !given("--events") {
            cli.events = 50;
        }
        if !given("--recovery-events") {
            cli.recovery_events = 10;
        }
        if !given("--idle-secs") {
            cli.idle_secs = 3;
        }
    }
    match run(cli).await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(e) => {
            eprintln!("opergroupd-bench: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> Result<bool, String> {
    if cli.leaves.contains(&0) || cli.events == 0 || cli.storm_conns == 0 || cli.storm_batch == 0 {
        return Err("--leaves, --events, --storm-conns and --storm-batch must be at least 1".into());
    }
    if cli.segment_pairs && (cli.peer.is_some() || cli.leaves.iter().any(|n| n % 2 == 1)) {
        return Err(
            "--segment-pairs needs an even number of leaves in every run, and no --peer (it has no segments)".into()
        );
    }
    let og = procs::sibling(cli.opergroupd.clone(), "opergroupd")?;
    let sim = procs::sibling(cli.fabric_sim.clone(), "fabric-sim")?;
    // perf cannot write into a directory that is not there, and said so only as "exit status 255".
    if let Some(dir) = &cli.perf_storm {
        std::fs::create_dir_all(dir).map_err(|e| format!("--perf-storm {}: cannot create it: {e}", dir.display()))?;
    }
    eprintln!("opergroupd: {}\nfabric-sim: {}", og.display(), sim.display());
    // The bench holds few descriptors itself, but its children inherit its limits: raising
    // the hard limit here (when allowed) lets fabric-sim and opergroupd raise their soft
    // ones to what 10,000 leaves need (a listener and connections per leaf).
    let most = cli.leaves.iter().copied().max().unwrap_or(1) as u64;
    match opergroupd::fdlimit::raise(3 * most + 1024) {
        Ok(limit) if limit < 3 * most + 1024 => eprintln!("open-file limit {limit}: may be too low for {most} leaves"),
        Ok(_) => {}
        Err(e) => eprintln!("cannot raise the open-file limit: {e}"),
    }
    let mut unders = vec![Under::Opergroupd];
    unders.extend(cli.peer.map(Under::Peer));
    let mut results = Vec::new();
    let mut failed = Vec::new();
    for &n in &cli.leaves {
        for &under in &unders {
            eprintln!("== {n} leaves, {}", under.label());
            let r = match (one_run(&cli, under, &og, &sim, n).await, under) {
                (Ok(r), _) => r,
                // The peer may not make it at some size: say how, and go on.
                (Err(e), Under::Peer(_)) => {
                    eprintln!("   FAILED: {e}");
                    failed.push(Failed { controller: under.label(), leaves: n, error: e });
                    continue;
                }
                (Err(e), Under::Opergroupd) => return Err(e),
            };
            for (kind, (count, example)) in &r.problems.0 {
                eprintln!("   PROBLEM {kind}: {count}× (e.g. {example})");
            }
            results.push(r);
        }
    }
    print!("{}", table(&results));
    if cli.peer.is_some() {
        print!("{}", compare(&results, &failed));
    }
    if let Some(path) = &cli.json {
        let all = serde_json::json!({"runs": results, "failed": failed});
        let text = serde_json::to_string_pretty(&all).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(failed.is_empty() && results.iter().all(|r| r.problems.is_empty()))
}

/// A run that could not be measured (the peer did not sync, for instance).
#[derive(Serialize)]
struct Failed {
    controller: &'static str,
    leaves: usize,
    error: String,
}

async fn one_run(
    cli: &Cli,
    under: Under,
    og: &std::path::Path,
    sim_bin: &std::path::Path,
    n: usize,
) -> Result<RunResult, String> {
    let tag = if under == Under::Opergroupd { "" } else { "-peer" };
    let logs = std::env::temp_dir().join(format!("opergroupd-bench-{}-{n}{tag}", std::process::id()));
    std::fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
    let sim = fleet::Fleet::start(sim_bin, n, cli.leaves_per_sim, &logs).await?;
    eprintln!("   {} fabric-sim ready in {:?}, control {}", sim.sims.len(), sim.started_in(), sim.controls());
    let leaves = sim.leaves();
    let config = logs.join("opergroupd.yaml");
    std::fs::write(
        &config,
        procs::config_yaml(&leaves, cli.liveness.as_deref(), cli.max_disabled.as_deref(), cli.segment_pairs),
    )
    .map_err(|e| format!("{}: {e}", config.display()))?;
    let deadline = Duration::from_secs(60) + Duration::from_millis(20 * n as u64);
    let started = match under {
        Under::Opergroupd => procs::start_controller(og, &config, &logs, deadline).await.map(|c| (c, None)),
        Under::Peer(Peer::Pygnmi) => {
            let python = cli.python.clone().unwrap_or_else(procs::venv_python);
            procs::start_peer(&python, &leaves, &logs, deadline).await.map(|(c, f)| (c, Some(f)))
        }
    };
    let (ctl, peer_failures) = match started {
        Ok(c) => c,
        Err(e) => {
            sim.stop().await;
            return Err(format!("{e}; logs: {}", logs.display()));
        }
    };
    eprintln!("   {} synced {n} targets in {:?}", under.label(), ctl.sync);
    let result = measure(cli, under, &sim, &ctl, n).await;
    let shutdown = ctl.proc.stop(Duration::from_secs(6)).await;
    sim.stop().await;
    let (mut r, mut problems) = result?;
    // The contract's clean exit is opergroupd's; the baseline makes no such promise (with
    // a thousand threads its signal handler may wait seconds for the GIL).
    if under == Under::Opergroupd && !shutdown.ends_with("exit status: 0") {
        problems.add("opergroupd did not exit 0 on SIGTERM", shutdown.clone());
    }
    for line in peer_failures.map(|f| f.lock().unwrap_or_else(|p| p.into_inner()).clone()).unwrap_or_default() {
        problems.add("peer: a leaf's thread gave up", line);
    }
    r.shutdown = shutdown;
    // The logs (config, both processes' stderr) are kept only when something went wrong.
    if problems.is_empty() && !cli.keep_logs {
        let _ = std::fs::remove_dir_all(&logs);
    } else {
        eprintln!("   logs: {}", logs.display());
        r.logs = Some(logs.display().to_string());
    }
    r.problems = problems;
    r.sync_ms = ms(ctl.sync);
    Ok(r)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn measure(
    cli: &Cli,
    under: Under,
    sim: &fleet::Fleet,
    ctl: &procs::Controller,
    n: usize,
) -> Result<(RunResult, Problems), String> {
    let mut problems = Problems::default();
    let pid = ctl.proc.pid;
    let load_before = loadavg();
    // Idle: after the initial Sets (none are expected: every downlink starts enabled) and
    // the start-up work have settled.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let a = procs::usage(pid)?;
    let t = Instant::now();
    tokio::time::sleep(Duration::from_secs(cli.idle_secs)).await;
    let b = procs::usage(pid)?;
    let idle_cpu_pct = (b.cpu.saturating_sub(a.cpu)).as_secs_f64() / t.elapsed().as_secs_f64() * 100.0;
    eprintln!(
        "   idle: RSS {:.1} MiB, CPU {idle_cpu_pct:.2} % of one core over {:?}",
        b.rss_kib as f64 / 1024.0,
        t.elapsed()
    );

    let reaction_leaves = scenarios::spread(n, cli.events);
    let recovery_leaves = scenarios::spread(n, cli.recovery_events);
    let mut watched: Vec<(String, u16)> =
        reaction_leaves.iter().chain(&recovery_leaves).map(|l| (l.clone(), sim.port(l).unwrap_or(0))).collect();
    watched.sort();
    watched.dedup();
    let w = watch::Watch::start(&watched, Duration::from_secs(30)).await?;
    let mut c = sim.client();

    let scraper = match (&ctl.http, cli.scrape_status) {
        (Some(addr), true) => Some(scenarios::Scraper::start(addr, "/status")),
        _ => None,
    };
    let t = Instant::now();
    let reaction = scenarios::reaction(&mut c, &w, &reaction_leaves, &mut problems).await;
    let scraped = match scraper {
        Some(s) => format!(", {}", s.stop().await?),
        None => String::new(),
    };
    let reaction = Dist::of(reaction?);
    eprintln!("   reaction: {} in {:?}{scraped}", reaction.cell(), t.elapsed());
    let t = Instant::now();
    // The peer has no readiness: it would enable before it, by design.
    let recovery = if cli.recovery_events == 0 || under != Under::Opergroupd {
        Dist::default()
    } else {
        Dist::of(scenarios::recovery(&mut c, &w, &recovery_leaves, &mut problems).await?)
    };
    eprintln!("   recovery: {} in {:?}", recovery.cell(), t.elapsed());
    w.stop();

    let all: Vec<String> = sim.leaves().into_iter().map(|(l, _)| l).collect();
    let perf = match &cli.perf_storm {
        Some(dir) => {
            let name = if under == Under::Opergroupd { "opergroupd" } else { "peer" };
            let out = dir.join(format!("perf-{name}-{n}.data"));
            let mut pids = vec![pid];
            pids.extend(sim.pids());
            let p = procs::Perf::start(&out, &pids)?;
            // perf needs a moment to attach to every thread before the storm starts.
            tokio::time::sleep(Duration::from_millis(500)).await;
            eprintln!("   perf: recording the storm into {}", out.display());
            Some(p)
        }
        None => None,
    };
    let sims_cpu =
        || -> Result<Duration, String> { sim.pids().into_iter().map(|p| procs::usage(p).map(|u| u.cpu)).sum() };
    // Scraped outside the CPU window: at 10,000 groups /metrics is ~46 MB.
    let counts0 = match &ctl.http {
        Some(addr) => Some(scenarios::counts(addr).await?),
        None => None,
    };
    let expect = if cli.segment_pairs { scenarios::Expect::OnePerPair } else { scenarios::Expect::EveryLeaf };
    let (og0, sim0) = (procs::usage(pid)?, sims_cpu()?);
    let storm =
        scenarios::storm(sim, &all, (cli.storm_conns, cli.storm_batch), expect, Duration::from_secs(1), &mut problems)
            .await;
    if let Some(p) = perf {
        eprintln!("   {}", p.stop().await);
    }
    let storm = storm?;
    let per_leaf = Dist::of(storm.per_leaf_ns.clone());
    let (end, sim1) = (procs::usage(pid)?, sims_cpu()?);
    // Includes the 1 s quiet window, where both should be idle.
    let storm_cpu_ms = (ms(end.cpu.saturating_sub(og0.cpu)), ms(sim1.saturating_sub(sim0)));
    let storm_counts = match (&ctl.http, counts0) {
        (Some(addr), Some(c0)) => Some((scenarios::counts(addr).await?, c0)),
        _ => None,
    };
    let per_leaf_of = |count: fn(&scenarios::Counts) -> u64| {
        storm_counts.map(|(c1, c0)| count(&c1).saturating_sub(count(&c0)) as f64 / n as f64)
    };
    let storm_evaluations_per_leaf = per_leaf_of(|c| c.evaluations);
    let storm_notifications_per_leaf = per_leaf_of(|c| c.notifications);
    eprintln!(
        "   storm: injected in {:?}, all Sets in {:?}, per leaf {}; CPU opergroupd {:.0} ms, fabric-sim {:.0} ms{}",
        storm.injected_in,
        storm.all_sets_in,
        per_leaf.cell(),
        storm_cpu_ms.0,
        storm_cpu_ms.1,
        storm_notifications_per_leaf
            .zip(storm_evaluations_per_leaf)
            .map_or(String::new(), |(m, e)| format!("; {m:.2} notifications and {e:.2} evaluations per leaf"))
    );
    Ok((
        RunResult {
            controller: under.label(),
            leaves: n,
            sim_ready_ms: ms(sim.started_in()),
            sync_ms: 0.0,
            idle_rss_mib: b.rss_kib as f64 / 1024.0,
            idle_cpu_pct,
            threads: b.threads,
            reaction,
            recovery,
            storm_injected_ms: ms(storm.injected_in),
            storm_all_sets_ms: storm.all_sets_in.map(ms),
            storm_per_leaf: per_leaf,
            storm_sets: storm.sets,
            storm_cpu_ms,
            storm_evaluations_per_leaf,
            storm_notifications_per_leaf,
            loadavg: (load_before, loadavg()),
            peak_rss_mib: end.hwm_kib as f64 / 1024.0,
            shutdown: String::new(),
            problems: Problems::default(),
            logs: None,
        },
        problems,
    ))
}

fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

fn table(rs: &[RunResult]) -> String {
    let mut t = String::new();
    t += "\n| controller | leaves | initial sync | idle RSS (peak) | idle CPU | reaction p50 / p99 / max (n), ms | recovery p50 / p99 / max (n), ms | storm injected in | storm: all Sets in | storm per leaf p50 / p99 / max, ms | one Set per leaf | load avg |\n";
    t += "|---|---:|---:|---:|---:|---|---|---:|---:|---|---|---|\n";
    for r in rs {
        let one = if r.problems.0.keys().any(|k| k.starts_with("storm")) {
            format!("NO ({} Sets)", r.storm_sets)
        } else {
            format!("yes ({} Sets)", r.storm_sets)
        };
        t += &format!(
            "| {} | {} | {:.0} ms | {:.1} MiB ({:.1}) | {:.2} % | {} | {} | {:.0} ms | {} | {} | {} | {:.1}–{:.1} |\n",
            r.controller,
            r.leaves,
            r.sync_ms,
            r.idle_rss_mib,
            r.peak_rss_mib,
            r.idle_cpu_pct,
            r.reaction.cell(),
            r.recovery.cell(),
            r.storm_injected_ms,
            r.storm_all_sets_ms.map_or("incomplete".into(), |v| format!("{v:.0} ms")),
            r.storm_per_leaf.cell(),
            one,
            r.loadavg.0,
            r.loadavg.1
        );
    }
    t
}

/// opergroupd and the peer side by side per size; ratio = peer / opergroupd (higher is
/// opergroupd's lead). CPU per failing leaf = the controller's CPU over the storm and its
/// quiet window, divided by the leaves.
fn compare(rs: &[RunResult], failed: &[Failed]) -> String {
    let mut t = String::new();
    t += "\n| leaves | figure | opergroupd | peer | peer / opergroupd |\n|---:|---|---:|---:|---:|\n";
    let sizes: std::collections::BTreeSet<usize> =
        rs.iter().map(|r| r.leaves).chain(failed.iter().map(|f| f.leaves)).collect();
    for n in sizes {
        let og = rs.iter().find(|r| r.leaves == n && r.controller == Under::Opergroupd.label());
        let peer = rs.iter().find(|r| r.leaves == n && r.controller != Under::Opergroupd.label());
        if let Some(f) = failed.iter().find(|f| f.leaves == n) {
            t += &format!("| {n} | {} | – | FAILED: {} | – |\n", f.controller, f.error.replace('|', "/"));
        }
        let (Some(og), Some(peer)) = (og, peer) else { continue };
        let d = |x: &Dist, v: f64| (x.n > 0).then_some(v);
        let per_leaf = |r: &RunResult| r.storm_all_sets_ms.map(|_| r.storm_cpu_ms.0 / n as f64);
        let rows: [(&str, Option<f64>, Option<f64>); 7] = [
            ("initial sync, ms", Some(og.sync_ms), Some(peer.sync_ms)),
            ("reaction p50, ms", d(&og.reaction, og.reaction.p50_ms), d(&peer.reaction, peer.reaction.p50_ms)),
            ("reaction p99, ms", d(&og.reaction, og.reaction.p99_ms), d(&peer.reaction, peer.reaction.p99_ms)),
            ("storm: all Sets in, ms", og.storm_all_sets_ms, peer.storm_all_sets_ms),
            (
                "storm per leaf p50, ms",
                d(&og.storm_per_leaf, og.storm_per_leaf.p50_ms),
                d(&peer.storm_per_leaf, peer.storm_per_leaf.p50_ms),
            ),
            ("controller CPU per failing leaf, ms", per_leaf(og), per_leaf(peer)),
            ("idle RSS, MiB", Some(og.idle_rss_mib), Some(peer.idle_rss_mib)),
        ];
        let cell = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.3}"));
        for (name, a, b) in rows {
            let ratio = match (a, b) {
                (Some(a), Some(b)) if a > 0.0 => format!("{:.1}×", b / a),
                _ => "–".into(),
            };
            t += &format!("| {n} | {name} | {} | {} | {ratio} |\n", cell(a), cell(b));
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let d = Dist::of((1..=100).rev().map(|ms| ms * 1_000_000).collect());
        assert_eq!((d.n, d.p50_ms, d.p99_ms, d.max_ms), (100, 50.0, 99.0, 100.0));
        let one = Dist::of(vec![2_500_000]);
        assert_eq!((one.p50_ms, one.p99_ms, one.max_ms), (2.5, 2.5, 2.5));
        assert_eq!(Dist::of(Vec::new()).n, 0);
    }

    #[test]
    fn events_spread_evenly_and_repeat_on_small_fabrics() {
        let s = scenarios::spread(1000, 200);
        assert_eq!(s.len(), 200);
        assert_eq!((s[0].as_str(), s[1].as_str(), s[199].as_str()), ("leaf1", "leaf6", "leaf996"));
        let distinct: std::collections::BTreeSet<&String> = s.iter().collect();
        assert_eq!(distinct.len(), 200);
        assert_eq!(scenarios::spread(2, 3), vec!["leaf1", "leaf2", "leaf1"]);
    }

    #[test]
    fn counts_sum_every_label_set_of_their_own_family_only() {
        let text = "# TYPE opergroupd_group_evaluations counter\n\
                    opergroupd_group_evaluations_total{group=\"leaf1-es1\"} 3\n\
                    opergroupd_group_decisions_total{group=\"leaf1-es1\"} 9\n\
                    opergroupd_group_evaluations_total{group=\"leaf2-es1\"} 4\n\
                    opergroupd_notifications_total{target=\"leaf1\"} 5\n\
                    opergroupd_notification_updates_total{target=\"leaf1\"} 50\n\
                    opergroupd_notifications_total{target=\"leaf2\"} 6\n# EOF\n";
        assert_eq!(scenarios::counts_in(text), Ok(scenarios::Counts { evaluations: 7, notifications: 11 }));
        let bad = "opergroupd_group_evaluations_total{group=\"leaf1-es1\"} many\n";
        assert!(scenarios::counts_in(bad).unwrap_err().contains("many"));
    }

    #[test]
    fn generated_config_is_valid_and_has_readiness_per_leaf() {
        let leaves: Vec<(String, u16)> = [("leaf1", 40001), ("leaf2", 40002), ("leaf10", 40010)]
            .into_iter()
            .map(|(n, p)| (n.to_string(), p))
            .collect();
        let config = opergroupd::config::parse(&procs::config_yaml(&leaves, None, None, false), "generated")
            .expect("the generated config loads");
        assert_eq!(config.targets.len(), 3);
        assert_eq!(config.targets["leaf10"].address, "127.0.0.1:40010");
        let g = &config.groups["leaf10-es1"];
        assert_eq!(g.uplinks, vec!["ethernet-1/49", "ethernet-1/50"]);
        let r = g.readiness.as_ref().expect("readiness");
        assert_eq!((r.min_established, r.evpn_min_received_routes), (1, Some(1)));
        assert!(g.down_delay.is_zero() && g.up_delay.is_zero() && g.enforce);
        let off = procs::config_yaml(&leaves, Some("0s"), None, false);
        let off = opergroupd::config::parse(&off, "generated").expect("loads with liveness");
        assert_eq!(off.targets["leaf1"].liveness, None, "liveness 0s is off");
        assert_eq!(config.targets["leaf1"].liveness, Some(Duration::from_secs(10)), "the default");
        assert_eq!(config.max_disabled, None, "no cap unless asked for");
        let capped = procs::config_yaml(&leaves, None, Some("100%"), false);
        let capped = opergroupd::config::parse(&capped, "generated").expect("loads with a cap");
        assert_eq!(capped.max_disabled, Some(opergroupd::config::safety::Cap::Percent(100.0)));
        let paired = procs::config_yaml(&leaves[..2], None, None, true);
        let paired = opergroupd::config::parse(&paired, "generated").expect("loads with segments");
        assert_eq!(paired.segments["pair1"], vec!["leaf1-es1", "leaf2-es1"]);
    }

    #[tokio::test]
    async fn a_status_port_taken_before_opergroupd_binds_it_is_told_apart() {
        // The workspace's opergroupd, built beside this test binary (target/<profile>/).
        let exe = std::env::current_exe().expect("this test's path");
        let bin = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>").join("opergroupd");
        assert!(bin.exists(), "{} not built (cargo build --workspace first)", bin.display());
        let dir = std::env::temp_dir().join(format!("og-bench-port-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let config = dir.join("opergroupd.yaml");
        std::fs::write(&config, procs::config_yaml(&[("leaf1".to_string(), 9)], None, None, false)).expect("config");
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let http = taken.local_addr().expect("addr").to_string();
        let r = procs::start_controller_once(&bin, &config, &dir, Duration::from_secs(20), http).await;
        let _ = std::fs::remove_dir_all(&dir);
        match r {
            Err(procs::Start::PortTaken(e)) => assert!(e.contains("taken"), "{e}"),
            Err(procs::Start::Failed(e)) => panic!("told as another failure: {e}"),
            Ok(_) => panic!("opergroupd started on a port already taken"),
        }
    }

    #[test]
    fn proc_usage_counts_cpu_finer_than_a_clock_tick() {
        // Spin until the reading moves: with clock ticks it moves by 10 ms at once.
        let pid = std::process::id();
        let before = procs::usage(pid).expect("/proc readable").cpu;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let moved = loop {
            let now = procs::usage(pid).expect("/proc readable").cpu;
            if now > before {
                break now - before;
            }
            assert!(std::time::Instant::now() < deadline, "CPU time did not move in 5 s of spinning");
        };
        assert!(moved < Duration::from_millis(5), "the first step was {moved:?}: clock-tick resolution");
    }

    #[tokio::test]
    async fn a_zero_count_is_refused_before_anything_starts() {
        for zero in ["--storm-batch", "--storm-conns", "--events"] {
            let cli = Cli::try_parse_from(["opergroupd-bench", zero, "0"]).expect("parses");
            let e = run(cli).await.expect_err("refused");
            assert!(e.contains("must be at least 1"), "{zero}: {e}");
        }
        for odd in [&["--segment-pairs", "--leaves", "3"][..], &["--segment-pairs", "--peer", "pygnmi"][..]] {
            let cli = Cli::try_parse_from(["opergroupd-bench"].iter().chain(odd)).expect("parses");
            let e = run(cli).await.expect_err("refused");
            assert!(e.contains("--segment-pairs needs"), "{odd:?}: {e}");
        }
    }

    #[test]
    fn proc_usage_reads_this_process() {
        let u = procs::usage(std::process::id()).expect("/proc readable");
        assert!(u.rss_kib > 0 && u.hwm_kib >= u.rss_kib && u.threads >= 1, "{u:?}");
    }
}
