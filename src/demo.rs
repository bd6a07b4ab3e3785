//! `opergroupd demo`: the reference fabric in-process (fabric-sim, real gNMI on loopback),
//! the controller against it, and the tutorial's three scenarios and a fabric-wide fourth, narrated with
//! millisecond timings. Every step waits on a condition with a deadline; a step that does
//! not happen in time fails the demo (exit 2) instead of narrating something untrue.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fabric_sim::{Applied, Control, SimConfig, SimTls, Timings};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::actuate::Actuator;
use crate::controller::{self, LoopEvent, RunOptions};
use crate::gnmi::connect::ConnectOptions;
use crate::gnmi::set::Setter;
use crate::model::AdminState;
use crate::policy::Health;
use crate::srl_paths;

const LEAF: &str = "leaf1";
const GROUP: &str = "leaf1-es1";
const STEP_DEADLINE: Duration = Duration::from_secs(20);

/// The reference fabric's BGP sequence, shortened so the demo takes seconds: iBGP holds
/// 2 s (9 s on the real fabric) after the last uplink goes, and comes back 1 s after an
/// uplink returns, with EVPN routes 0.5 s later.
fn demo_timings() -> Timings {
    Timings {
        hold_time: Duration::from_secs(2),
        ebgp_up: Duration::from_millis(300),
        ibgp_up: Duration::from_secs(1),
        evpn_routes: Duration::from_millis(500),
    }
}

/// The controller's configuration for the fabric, in the same YAML a user writes.
pub fn demo_config_yaml(addrs: &[(String, std::net::SocketAddr)]) -> String {
    let mut y =
        String::from("defaults:\n  username: admin\n  password: \"NokiaSrl1!\"\n  tls: { insecure: true }\ntargets:\n");
    for (name, addr) in addrs {
        let _ = writeln!(y, "  {name}: {{ address: \"{addr}\" }}");
    }
    y.push_str("groups:\n");
    for (name, _) in addrs {
        let _ = writeln!(
            y,
            "  {name}-es1:\n    target: {name}\n    uplinks: [\"ethernet-1/{{49..50}}\"]\n    required-up: 1\n    downlinks: [\"ethernet-1/1\"]\n    readiness:\n      bgp-neighbors: [\"10.0.1.1\", \"10.0.1.2\"]\n      min-established: 1\n      evpn-min-received-routes: 1"
        );
    }
    // client1 is dual-homed to leaf1 and leaf2: one Ethernet Segment.
    if addrs.len() >= 2 {
        let _ = writeln!(y, "segments:\n  es1: [{0}-es1, {1}-es1]", addrs[0].0, addrs[1].0);
    }
    y
}

/// Run the demo, printing the narration on stdout.
pub async fn run() -> Result<(), String> {
    let sim = SimConfig { base_port: 0, tls: SimTls::Insecure, timings: demo_timings(), ..SimConfig::default() };
    let fabric = fabric_sim::start(sim).await.map_err(|e| format!("cannot start the simulated fabric: {e}"))?;
    let control = fabric.control();
    let addrs: Vec<(String, std::net::SocketAddr)> =
        fabric.leaf_names().into_iter().filter_map(|n| fabric.leaf_addr(&n).map(|a| (n, a))).collect();
    let yaml = demo_config_yaml(&addrs);
    let config = crate::config::parse(&yaml, "<demo>").map_err(|e| e.to_string())?;

    let (obs_tx, obs_rx) = mpsc::unbounded_channel();
    let setter = Setter::new(ConnectOptions::default(), crate::actuate::SET_TIMEOUT);
    let mut opts = RunOptions::new(Actuator::Gnmi(Arc::new(setter)));
    opts.observer = Some(obs_tx);
    let cancel = CancellationToken::new();
    let ctl = tokio::spawn(controller::run(config, opts, cancel.clone()));

    let mut n = Narrator { t0: Instant::now(), sim0: control.now(), events: obs_rx, control: control.clone() };
    println!("opergroupd demo: the reference fabric (fabric-sim, real gNMI on loopback) and the controller against it");
    for (name, addr) in &addrs {
        println!(
            "  {name}: gNMI at {addr}; group {name}-es1: uplinks ethernet-1/{{49..50}} (1 required), downlink ethernet-1/1"
        );
    }
    println!(
        "  BGP model scaled for the demo: iBGP hold {:?}, back {:?} after an uplink returns, EVPN routes {:?} later\n",
        demo_timings().hold_time,
        demo_timings().ibgp_up,
        demo_timings().evpn_routes
    );

    let result = n.scenarios().await;
    cancel.cancel();
    let _ = ctl.await;
    fabric.shutdown().await;
    result
}

struct Narrator {
    t0: Instant,
    sim0: Applied,
    events: mpsc::UnboundedReceiver<LoopEvent>,
    control: Control,
}

impl Narrator {
    fn say(&self, at: Instant, what: &str) {
        println!("[{:>9.3} s] {what}", at.duration_since(self.t0).as_secs_f64());
    }

    fn sim_instant(&self, a: Applied) -> Instant {
        self.t0 + Duration::from_nanos(a.mono_ns.saturating_sub(self.sim0.mono_ns))
    }

    /// The next loop event that satisfies `want`, narrating what passes by.
    async fn until(&mut self, what: &str, mut want: impl FnMut(&LoopEvent) -> bool) -> Result<LoopEvent, String> {
        let deadline = tokio::time::Instant::now() + STEP_DEADLINE;
        loop {
            let ev = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .map_err(|_| format!("demo: no {what} within {STEP_DEADLINE:?}"))?
                .ok_or("demo: the controller stopped")?;
            self.narrate(&ev);
            if want(&ev) {
                return Ok(ev);
            }
        }
    }

    fn narrate(&self, ev: &LoopEvent) {
        match ev {
            LoopEvent::TargetSynced { target, at } => self.say(*at, &format!("controller: {target} synced")),
            LoopEvent::TargetStale { target, error, at } => {
                self.say(*at, &format!("controller: {target} stale: {error}"))
            }
            LoopEvent::Verdict { group, health, desired, reason, at } if group == GROUP => {
                let want = desired.map_or("hold".to_string(), |d| format!("downlinks {}", d.as_str()));
                self.say(*at, &format!("controller: {group} {}: {reason} -> {want}", health.as_str()));
            }
            LoopEvent::SetStarted { intent, at } => self.say(
                *at,
                &format!(
                    "controller: Set {} on {}: {}",
                    intent.changes.iter().map(|(p, v)| format!("{p}={}", v.as_str())).collect::<Vec<_>>().join(", "),
                    intent.target,
                    intent.reason
                ),
            ),
            LoopEvent::SetFinished { intent, result, started, at } => self.say(
                *at,
                &format!(
                    "controller: Set on {} {} after {:.1} ms",
                    intent.target,
                    match result {
                        Ok(()) => "acknowledged".to_string(),
                        Err(e) => format!("failed ({e})"),
                    },
                    at.duration_since(*started).as_secs_f64() * 1e3
                ),
            ),
            LoopEvent::Held { group, reason: Some(reason), at } => {
                self.say(*at, &format!("controller: {group} held, no Set: {reason}"))
            }
            LoopEvent::Held { group, reason: None, at } => self.say(*at, &format!("controller: {group} hold released")),
            _ => {}
        }
    }

    fn link(&self, iface: &str, up: bool) -> Result<Instant, String> {
        self.link_on(LEAF, iface, up)
    }

    fn link_on(&self, leaf: &str, iface: &str, up: bool) -> Result<Instant, String> {
        let applied = self.control.link(leaf, iface, up).map_err(|e| e.to_string())?;
        let at = self.sim_instant(applied);
        self.say(at, &format!("fabric: {leaf} {iface} link {}", if up { "up" } else { "down" }));
        Ok(at)
    }

    /// The Set the leaf received for this scenario, with its receive time on the sim clock.
    fn last_set_received(&self) -> Option<Instant> {
        self.control.sets().last().map(|r| self.sim_instant(r.received))
    }

    async fn scenarios(&mut self) -> Result<(), String> {
        // Every leaf synced and leaf1's group healthy, in whichever order they come: the
        // group's verdict follows leaf1's own sync, often before the other leaves' syncs.
        let (mut synced, mut healthy) = (0, false);
        while synced < 4 || !healthy {
            let ev = self
                .until("sync of every leaf and a first verdict", |e| {
                    matches!(e, LoopEvent::TargetSynced { .. })
                        || matches!(e, LoopEvent::Verdict { group, health: Health::Healthy, .. } if group == GROUP)
                })
                .await?;
            match ev {
                LoopEvent::TargetSynced { .. } => synced += 1,
                _ => healthy = true,
            }
        }

        println!("\nScenario 1: leaf1 loses one uplink (ethernet-1/49). One is enough: nothing should change.");
        let t = self.link("ethernet-1/49", false)?;
        let ev = self.until("a verdict on 1/2 uplinks", |e| matches!(e, LoopEvent::Verdict { group, reason, .. } if group == GROUP && reason.starts_with("1/2"))).await?;
        if let LoopEvent::Verdict { at, .. } = ev {
            println!("  -> evaluated {:.1} ms after the link went down; no Set.", ms(t, at));
        }
        if !self.control.sets().is_empty() {
            return Err("demo: a Set was sent although one uplink is still up".into());
        }

        println!("\nScenario 2: leaf1 loses its second uplink (ethernet-1/50). The client's link must go down.");
        let t = self.link("ethernet-1/50", false)?;
        let decided = self
            .until("the disable Set", |e| matches!(e, LoopEvent::SetStarted { intent, .. } if intent.group == GROUP))
            .await?;
        let acked = self
            .until("the Set's answer", |e| matches!(e, LoopEvent::SetFinished { intent, .. } if intent.group == GROUP))
            .await?;
        let received = self.last_set_received().ok_or("demo: leaf1 received no Set")?;
        let (LoopEvent::SetStarted { at: d, .. }, LoopEvent::SetFinished { at: a, result, .. }) = (decided, acked)
        else {
            unreachable!()
        };
        result.map_err(|e| format!("demo: the disable Set failed: {e}"))?;
        println!(
            "  -> decided {:.1} ms, Set received by leaf1 {:.1} ms, acknowledged {:.1} ms after the link went down.",
            ms(t, d),
            ms(t, received),
            ms(t, a)
        );
        self.expect_admin("disable")?;

        println!("\nWaiting for leaf1's iBGP sessions to drop (hold time) ...");
        self.wait_sessions_down().await?;
        self.say(Instant::now(), "fabric: leaf1 iBGP sessions down");

        println!(
            "\nScenario 3: both uplinks return. The downlink comes back only once iBGP is established and EVPN routes are in."
        );
        let t = self.link("ethernet-1/49", true)?;
        self.link("ethernet-1/50", true)?;
        self.until(
            "not-ready while iBGP is down",
            |e| matches!(e, LoopEvent::Verdict { group, health: Health::NotReady, .. } if group == GROUP),
        )
        .await?;
        let decided = self
            .until("the enable Set", |e| matches!(e, LoopEvent::SetStarted { intent, .. } if intent.group == GROUP))
            .await?;
        let acked = self
            .until("the Set's answer", |e| matches!(e, LoopEvent::SetFinished { intent, .. } if intent.group == GROUP))
            .await?;
        let (LoopEvent::SetStarted { at: d, intent, .. }, LoopEvent::SetFinished { at: a, result, .. }) =
            (decided, acked)
        else {
            unreachable!()
        };
        result.map_err(|e| format!("demo: the enable Set failed: {e}"))?;
        if intent.changes.iter().any(|(_, v)| *v != AdminState::Enable) {
            return Err("demo: expected an enable Set".into());
        }
        println!(
            "  -> readiness met and enable decided {:.1} ms after the uplinks returned (iBGP and EVPN take their time), acknowledged at {:.1} ms.",
            ms(t, d),
            ms(t, a)
        );
        self.expect_admin("enable")?;

        println!(
            "\nScenario 4: leaf1 fails again and is disabled; then leaf2, the other leaf of client1's segment es1, fails too.\n  Disabling leaf2 as well would cut client1 off from every leaf: leaf2 must be held and keep its link."
        );
        self.link("ethernet-1/49", false)?;
        self.link("ethernet-1/50", false)?;
        self.until(
            "leaf1's disable",
            |e| matches!(e, LoopEvent::SetFinished { intent, result: Ok(()), .. } if intent.group == GROUP),
        )
        .await?;
        self.expect_admin("disable")?;
        let sets_before = self.control.sets().len();
        let t = self.link_on("leaf2", "ethernet-1/49", false)?;
        self.link_on("leaf2", "ethernet-1/50", false)?;
        let held = self
            .until(
                "leaf2 held",
                |e| matches!(e, LoopEvent::Held { group, reason: Some(_), .. } if group == "leaf2-es1"),
            )
            .await?;
        if let LoopEvent::Held { at, .. } = held {
            println!("  -> held {:.1} ms after leaf2's first uplink went down; no Set for leaf2.", ms(t, at));
        }
        let leaf2 = self.control.admin_state("leaf2", "ethernet-1/1").map_err(|e| e.to_string())?;
        if self.control.sets().len() != sets_before || leaf2.as_deref() != Some("enable") {
            return Err(format!("demo: leaf2 was Set (its downlink is {leaf2:?}) although it is client1's last link"));
        }
        self.say(Instant::now(), "fabric: leaf2 ethernet-1/1 admin-state enable: client1 keeps one link");
        println!("\nDone: {} Sets in all, each one decided from synced data.", self.control.sets().len());
        Ok(())
    }

    fn expect_admin(&self, want: &str) -> Result<(), String> {
        let got = self.control.admin_state(LEAF, "ethernet-1/1").map_err(|e| e.to_string())?;
        if got.as_deref() != Some(want) {
            return Err(format!("demo: leaf1 ethernet-1/1 admin-state is {got:?}, expected {want}"));
        }
        self.say(Instant::now(), &format!("fabric: leaf1 ethernet-1/1 admin-state {want}"));
        Ok(())
    }

    async fn wait_sessions_down(&self) -> Result<(), String> {
        for peer in fabric_sim::SPINE_LOOPBACKS {
            let path = srl_paths::session_state("default", peer);
            let down = serde_json::Value::from(fabric_sim::SessionState::Active.as_str());
            self.control.wait_for_value(LEAF, &path, &down, STEP_DEADLINE).await.map_err(|e| format!("demo: {e}"))?;
        }
        Ok(())
    }
}

fn ms(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64() * 1e3
}
