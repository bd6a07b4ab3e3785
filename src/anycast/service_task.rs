//! One task per service: run its checks on the machine's timer, step the state machine,
//! and publish the route it wants; a change of its oper-group's decision republishes at once.

use std::collections::BTreeMap;

use tokio::sync::{mpsc, watch};
use tracing::{debug, info};

use super::config::Service;
use super::handle::ProbeStatus;
use super::machine::{self, Desired, Input, State};
use super::probe;

pub(super) async fn probe_loop(
    slot: usize,
    svc: Service,
    desired_tx: mpsc::Sender<(usize, Desired)>,
    status: watch::Sender<ProbeStatus>,
    mut groups: watch::Receiver<BTreeMap<String, bool>>,
) {
    let group_of = |g: &BTreeMap<String, bool>| svc.group.as_ref().and_then(|name| g.get(name).copied());
    let mut state = State::INIT;
    let mut sent = Desired::Undecided;
    loop {
        let disabled = match &svc.disable_file {
            Some(p) => tokio::fs::try_exists(p).await.unwrap_or(false),
            None => false,
        };
        let input = if disabled {
            Input::Disabled
        } else {
            let report = probe::run_all(&svc.checks, svc.timeout).await;
            status.send_modify(|s| {
                s.checks_run += 1;
                s.checks_failed += u64::from(!report.healthy);
                s.last_check = Some(report.detail.clone());
            });
            if !report.healthy {
                debug!(service = %svc.name, detail = %report.detail, "check failed");
            }
            Input::Checked(report.healthy)
        };
        let group = group_of(&groups.borrow_and_update());
        let step = machine::step(state, input, &svc, group);
        if step.state.phase != state.phase {
            let detail = status.borrow().last_check.clone().unwrap_or_default();
            info!(service = %svc.name, from = state.phase.as_str(), to = step.state.phase.as_str(), %detail, "state change");
            status.send_modify(|s| s.transitions += 1);
        }
        state = step.state;
        publish(slot, &step.desired, &mut sent, &desired_tx, &status, state, group).await;

        let sleep = tokio::time::sleep(step.next_check);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => break,
                changed = groups.changed() => {
                    if changed.is_err() {
                        (&mut sleep).await;
                        break;
                    }
                    let group = group_of(&groups.borrow_and_update());
                    let desired = machine::desired(state, &svc, group);
                    publish(slot, &desired, &mut sent, &desired_tx, &status, state, group).await;
                }
            }
        }
    }
}

async fn publish(
    slot: usize,
    desired: &Desired,
    sent: &mut Desired,
    tx: &mpsc::Sender<(usize, Desired)>,
    status: &watch::Sender<ProbeStatus>,
    state: State,
    group: Option<bool>,
) {
    status.send_modify(|s| {
        s.state = state;
        s.desired = desired.clone();
        s.group_enabled = group;
    });
    if desired != sent {
        *sent = desired.clone();
        // The session loop outlives the probes; a closed channel means it is stopping.
        let _ = tx.send((slot, desired.clone())).await;
    }
}
