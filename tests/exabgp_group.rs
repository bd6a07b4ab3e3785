//! `opergroupd exabgp` with oper-groups in the same file: the group is observed over gNMI
//! (fabric-sim, in-process) and a service with `group:` is withdrawn while its group is
//! unhealthy and announced again when it recovers. The mode never Sets a downlink.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_follows_its_oper_group_and_no_downlink_is_set() {
    let fabric =
        fabric_sim::start(SimConfig { leaves: 1, base_port: 0, timings: Timings::fast(), ..SimConfig::default() })
            .await
            .unwrap();
    let control = fabric.control();
    let leaf = fabric.leaf_addr("leaf1").unwrap();
    // The probed service: a listener that stays up for the whole test.
    let service = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let service_addr = service.local_addr().unwrap();

    let config = std::env::temp_dir().join(format!("opergroupd-exabgp-group-{}.yaml", std::process::id()));
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
    let mut stdin = child.0.stdin.take().unwrap();
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                return;
            }
        }
    });
    let mut next = |what: &str| {
        let line = rx.recv_timeout(WAIT).unwrap_or_else(|_| panic!("no {what} within {WAIT:?}"));
        writeln!(stdin, "done").unwrap(); // ExaBGP's ACK
        line
    };

    assert_eq!(next("announce"), "announce route 192.0.2.1/32 next-hop self med 100");

    control.link("leaf1", "ethernet-1/49", false).unwrap();
    control.link("leaf1", "ethernet-1/50", false).unwrap();
    assert_eq!(next("withdraw"), "withdraw route 192.0.2.1/32 next-hop self med 100");

    control.link("leaf1", "ethernet-1/49", true).unwrap();
    assert_eq!(next("re-announce"), "announce route 192.0.2.1/32 next-hop self med 100");

    // Observe-only: the leaf never received a Set, although its group went unhealthy.
    assert!(control.sets().is_empty(), "exabgp mode must never Set: {:?}", control.sets());
    drop(child);
    drop(service);
    std::fs::remove_file(config).ok();
    fabric.shutdown().await;
}
