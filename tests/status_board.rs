//! The Board built from a resolved config, fed with source events as the loop sees them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use opergroupd::config::{Config, Group, Target, Tls};
use opergroupd::model::{Scalar, SourceEvent};
use opergroupd::status::{Board, ConnState, Enforcement, Health, ReplicaRole};

fn config() -> Config {
    let target = |name: &str| Target {
        name: name.to_string(),
        address: format!("{name}:57400"),
        username: None,
        password: None,
        tls: Tls::Insecure,
        liveness: None,
        reconnect_max: std::time::Duration::from_secs(2),
    };
    let group = |name: &str, target: &str, enforce: bool| Group {
        name: name.to_string(),
        target: target.to_string(),
        uplinks: vec!["ethernet-1/49".to_string(), "ethernet-1/50".to_string()],
        required_up: 1,
        downlinks: vec!["ethernet-1/1".to_string(), "ethernet-1/2".to_string()],
        readiness: None,
        down_delay: Duration::ZERO,
        up_delay: Duration::ZERO,
        enforce,
        profile: &opergroupd::profile::SRL,
    };
    Config {
        targets: BTreeMap::from([("leaf1".into(), target("leaf1")), ("leaf2".into(), target("leaf2"))]),
        groups: BTreeMap::from([
            ("leaf1-es1".into(), group("leaf1-es1", "leaf1", true)),
            ("leaf2-es1".into(), group("leaf2-es1", "leaf2", false)),
        ]),
        http: None,
        override_file: Some(PathBuf::from("/etc/opergroupd/maintenance")),
        leader_election: None,
        services: BTreeMap::new(),
        warnings: Vec::new(),
        segments: BTreeMap::new(),
        max_disabled: None,
        histograms: Default::default(),
    }
}

#[test]
fn from_config_declares_everything_and_is_loaded() {
    let board = Board::from_config(&config(), "1.2.3", true);
    let doc = board.document(Instant::now());
    assert_eq!(doc.controller.version, "1.2.3");
    assert_eq!(doc.controller.role, ReplicaRole::Single);
    assert!(doc.controller.config_loaded && doc.controller.dry_run);
    assert_eq!(doc.controller.maintenance.override_file.as_deref(), Some("/etc/opergroupd/maintenance"));
    assert_eq!(doc.controller.maintenance.suspends, "none");
    let names: Vec<_> = doc.targets.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["leaf1", "leaf2"]);
    let g1 = &doc.groups[0];
    assert_eq!((g1.name.as_str(), g1.target.as_str()), ("leaf1-es1", "leaf1"));
    assert_eq!((g1.oper_state, g1.enforcement), (Health::Unknown, Enforcement::Enforcing));
    let downlinks: Vec<_> = g1.downlinks.iter().map(|d| (d.name.as_str(), d.desired.clone())).collect();
    assert_eq!(downlinks, [("ethernet-1/1", None), ("ethernet-1/2", None)]);
    assert_eq!(doc.groups[1].enforcement, Enforcement::ObserveOnly);
    assert!(doc.services.is_empty());
    assert_eq!(board.readiness(), Err("waiting for first sync of leaf1 (connecting), leaf2 (connecting)".to_string()));
}

#[test]
fn source_events_move_target_state_and_counters() {
    let board = Board::from_config(&config(), "1.2.3", false);
    let leaf1: Arc<str> = Arc::from("leaf1");
    let t0 = Instant::now();
    board.target_connecting("leaf1", t0);
    board.source_event(&SourceEvent::Notification {
        target: leaf1.clone(),
        received: t0 + Duration::from_millis(1),
        device_ns: 0,
        updates: vec![
            ("/interface[name=ethernet-1/49]/oper-state".into(), Scalar::Str("up".into())),
            ("/interface[name=ethernet-1/50]/oper-state".into(), Scalar::Str("up".into())),
        ],
        deletes: vec!["/network-instance[name=default]/protocols/bgp/neighbor[peer-address=10.0.1.1]".into()],
    });
    board.source_event(&SourceEvent::Synced { target: leaf1.clone(), at: t0 + Duration::from_millis(2) });
    board.source_event(&SourceEvent::Synced { target: Arc::from("leaf2"), at: t0 });
    assert_eq!(board.readiness(), Ok(()));

    let doc = board.document(t0 + Duration::from_millis(3));
    let t = &doc.targets[0];
    assert_eq!((t.state, t.notifications, t.updates), (ConnState::Synced, 1, 3));

    board.source_event(&SourceEvent::Stale {
        target: leaf1,
        at: t0 + Duration::from_millis(4),
        error: "no sync_response within 10s".into(),
    });
    let doc = board.document(t0 + Duration::from_millis(5));
    let t = &doc.targets[0];
    assert_eq!(t.state, ConnState::Stale);
    assert_eq!(t.last_error.as_deref(), Some("no sync_response within 10s"));
    assert!(t.ever_synced && t.synced_since.is_none());
    assert_eq!(board.readiness(), Ok(()), "synced once is enough for readiness");
}

#[test]
fn readyz_at_fleet_size_names_ten_waiting_targets_and_counts_the_rest() {
    let mut c = config();
    let template = c.targets["leaf1"].clone();
    for i in 3..=300 {
        let name = format!("leaf{i}");
        c.targets.insert(name.clone(), Target { name, ..template.clone() });
    }
    let board = Board::from_config(&c, "1.2.3", false);
    let Err(waiting) = board.readiness() else { panic!("300 targets not synced: not ready") };
    assert!(waiting.starts_with("waiting for first sync of leaf1 (connecting), leaf10 (connecting),"), "{waiting}");
    assert!(waiting.ends_with(" and 290 more"), "{waiting}");
}
