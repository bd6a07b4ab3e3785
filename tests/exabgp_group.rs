//! `opergroupd exabgp` with oper-groups in the same file: the group is observed over gNMI
//! (fabric-sim, in-process) and a service with `group:` follows the group's decision (the
//! one its downlinks follow, after down-delay and up-delay): withdrawn once the group
//! decides "disable", announced again once it decides "enable". The mode never Sets.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use fabric_sim::{SimConfig, Timings};

const BIN: &str = env!("CARGO_BIN_EXE_opergroupd");
const WAIT: Duration = Duration::from_secs(15);

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The binary running as an ExaBGP process against one simulated leaf, with a probed
/// service that stays healthy; `delays` goes into the group (`down-delay: 2s` ...).
struct Anycast {
    fabric: fabric_sim::Fabric,
    lines: mpsc::Receiver<String>,
    stdin: std::process::ChildStdin,
    _child: Kill,
    _service: std::net::TcpListener,
    config: std::path::PathBuf,
}

impl Anycast {
    async fn start(tag: &str, delays: &str) -> Self {
        let fabric =
            fabric_sim::start(SimConfig { leaves: 1, base_port: 0, timings: Timings::fast(), ..SimConfig::default() })
                .await
                .unwrap();
        let leaf = fabric.leaf_addr("leaf1").unwrap();
        let service = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let service_addr = service.local_addr().unwrap();
        let config = std::env::temp_dir().join(format!("opergroupd-exabgp-{tag}-{}.yaml", std::process::id()));
        std::fs::write(
            &config,
            format!(
                "defaults: {{ username: admin, password: \"NokiaSrl1!\", tls: {{ insecure: true }} }}
targets:
  leaf1: {{ address: \"{leaf}\" }}
groups:
  leaf1-es1:
    target: leaf1
    uplinks: [\"ethernet-1/{{49..50}}\"]
    downlinks: [\"ethernet-1/1\"]
    {delays}
services:
  vip:
    prefix: 192.0.2.1/32
    med: 100
    group: leaf1-es1
    checks: [{{ tcp: \"{service_addr}\" }}]
    interval: 1s
    fast-interval: 50ms
    rise: 1
    fall: 1
"
            ),
        )
        .unwrap();
        let mut child = Kill(
            Command::new(BIN)
                .args(["exabgp", "--config"])
                .arg(&config)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let stdin = child.0.stdin.take().unwrap();
        let stdout = child.0.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line.unwrap_or_default()).is_err() {
                    return;
                }
            }
        });
        Anycast { fabric, lines, stdin, _child: child, _service: service, config }
    }

    /// The next command written to ExaBGP, acknowledged with `done`.
    fn next(&mut self, what: &str) -> String {
        let line = self.lines.recv_timeout(WAIT).unwrap_or_else(|_| panic!("no {what} within {WAIT:?}"));
        writeln!(self.stdin, "done").unwrap(); // ExaBGP's ACK
        line
    }

    /// Nothing is written to ExaBGP for `period`.
    fn quiet_for(&mut self, period: Duration) {
        if let Ok(line) = self.lines.recv_timeout(period) {
            panic!("unexpected command within {period:?}: {line}");
        }
    }

    fn uplinks(&self, up: bool) {
        for port in ["ethernet-1/49", "ethernet-1/50"] {
            self.fabric.control().link("leaf1", port, up).unwrap();
        }
    }

    async fn finish(self) {
        // Observe-only: the leaf never received a Set, although its group went unhealthy.
        let sets = self.fabric.control().sets();
        assert!(sets.is_empty(), "exabgp mode must never Set: {sets:?}");
        let Anycast { fabric, lines, stdin, _child, _service, config } = self;
        drop((_child, stdin, lines, _service));
        std::fs::remove_file(config).ok();
        fabric.shutdown().await;
    }
}

const ANNOUNCE: &str = "announce route 192.0.2.1/32 next-hop self med 100";
const WITHDRAW: &str = "withdraw route 192.0.2.1/32 next-hop self med 100";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_follows_its_oper_group_and_no_downlink_is_set() {
    let mut x = Anycast::start("group", "").await;
    assert_eq!(x.next("announce"), ANNOUNCE);
    x.uplinks(false);
    assert_eq!(x.next("withdraw"), WITHDRAW);
    x.fabric.control().link("leaf1", "ethernet-1/49", true).unwrap();
    assert_eq!(x.next("re-announce"), ANNOUNCE);
    x.finish().await;
}

/// Issue 10 item 6: the group's delays apply to the route exactly as to the downlinks. A
/// short uplink flap (shorter than down-delay) never withdraws; a lasting failure
/// withdraws only after down-delay; recovery re-announces only after up-delay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_follows_the_groups_delays_not_its_raw_health() {
    const DOWN: Duration = Duration::from_secs(2);
    const UP: Duration = Duration::from_secs(3);
    let mut x = Anycast::start("delays", "down-delay: 2s\n    up-delay: 3s").await;
    // At start the group is healthy and its up-delay runs: the decision is "hold" meanwhile,
    // so the service follows its checks, then the group's "enable".
    assert_eq!(x.next("announce"), ANNOUNCE);

    // A 100 ms flap of both uplinks: the group's down-delay is never exceeded.
    x.uplinks(false);
    std::thread::sleep(Duration::from_millis(100)); // the flap itself, not a wait
    x.uplinks(true);
    x.quiet_for(DOWN + Duration::from_secs(1));

    let down_at = std::time::Instant::now();
    x.uplinks(false);
    assert_eq!(x.next("withdraw after down-delay"), WITHDRAW);
    let waited = down_at.elapsed();
    assert!(waited >= DOWN, "withdrawn {waited:?} after the uplinks went down, before down-delay {DOWN:?}");

    let up_at = std::time::Instant::now();
    x.uplinks(true);
    assert_eq!(x.next("re-announce after up-delay"), ANNOUNCE);
    let waited = up_at.elapsed();
    assert!(waited >= UP, "re-announced {waited:?} after the uplinks came back, before up-delay {UP:?}");
    x.finish().await;
}
