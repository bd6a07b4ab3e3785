//! The loop's rounds, driven directly: events handed to `on_round` as the select loop
//! hands them over when they were already queued.

use std::time::Instant;

use tokio::sync::mpsc;

use crate::actuate::{Actuator, DryRunLine, DryRunSink};
use crate::model::{Scalar, SourceEvent, TargetName};
use crate::srl_paths::{admin_state, oper_state};

use super::{Loop, LoopEvent, RunOptions};

const CONFIG: &str = r#"
defaults: { tls: { insecure: true } }
targets:
  leaf1: { address: "127.0.0.1:57401" }
groups:
  leaf1-es1:
    target: leaf1
    uplinks: ["ethernet-1/{49..50}"]
    required-up: 1
    downlinks: ["ethernet-1/1"]
    down-delay: 0s
    up-delay: 0s
"#;

fn note(updates: &[(String, &str)]) -> SourceEvent {
    SourceEvent::Notification {
        target: TargetName::from("leaf1"),
        received: Instant::now(),
        device_ns: 0,
        updates: updates.iter().map(|(p, v)| (p.clone(), Scalar::Str(v.to_string()))).collect(),
        deletes: Vec::new(),
    }
}

fn verdicts(rx: &mut mpsc::UnboundedReceiver<LoopEvent>) -> Vec<String> {
    std::iter::from_fn(|| rx.try_recv().ok())
        .filter_map(|ev| match ev {
            LoopEvent::Verdict { reason, .. } => Some(reason),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn notifications_queued_together_are_decided_once_from_all_of_them() {
    let config = crate::config::parse(CONFIG, "test").expect("config");
    let (lines_tx, mut lines) = mpsc::unbounded_channel::<DryRunLine>();
    let (observer, mut seen) = mpsc::unbounded_channel();
    let mut opts = RunOptions::new(Actuator::DryRun(DryRunSink::Channel(lines_tx)));
    opts.observer = Some(observer);
    let mut lp = Loop::new(&config, opts, None);
    let (done_tx, _done_rx) = mpsc::unbounded_channel();

    let dump = note(&[
        (oper_state("ethernet-1/49"), "up"),
        (oper_state("ethernet-1/50"), "up"),
        (admin_state("ethernet-1/1"), "enable"),
    ]);
    let synced = SourceEvent::Synced { target: TargetName::from("leaf1"), at: Instant::now() };
    lp.on_round(&mut Vec::new(), &mut vec![dump, synced], &done_tx);
    assert_eq!(verdicts(&mut seen).len(), 1, "one decision once synced");

    // Both uplinks go down in two notifications that were queued together: one decision,
    // from both, and one Set. Taken one at a time they made two ("1/2 up", then "0/2 up").
    let mut burst =
        vec![note(&[(oper_state("ethernet-1/49"), "down")]), note(&[(oper_state("ethernet-1/50"), "down")])];
    lp.on_round(&mut Vec::new(), &mut burst, &done_tx);
    let decided = verdicts(&mut seen);
    assert_eq!(decided.len(), 1, "{decided:?}");
    assert!(decided[0].contains("0/2"), "{decided:?}");
    let line = lines.recv().await.expect("the disable is printed");
    assert_eq!((line.path.as_str(), line.value.as_str()), ("/interface[name=ethernet-1/1]/admin-state", "disable"));
    assert!(lines.try_recv().is_err(), "one line, one Set");
}
