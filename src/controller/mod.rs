//! The loop that wires sources -> state -> policy -> actuators.
//!
//! One task owns the state and every group's timers; sources and Set tasks only send
//! messages into it, so there are no locks and no shared mutable state. Every Set is
//! decided from synced, fresh data; a failed Set is never retried as such: the target is
//! re-evaluated after a backoff, from the state at that moment, so a retry can never
//! enforce a decision that stopped being right.
//!
//! Rooms: this file is the select loop and shutdown; `runtime` holds what the loop owns,
//! `evaluate` turns events into verdicts, `dispatch` turns verdicts into Sets and their
//! answers into state, `dry_run` is the as-if overlay of `--dry-run`, `report` maps all of
//! it to status and the observer.

mod dispatch;
mod dry_run;
mod evaluate;
mod holds;
mod options;
mod report;
mod runtime;
mod timers;

#[cfg(test)]
mod tests;

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::Config;
use crate::config::override_file::{self, Override};
use crate::gnmi::source::spawn_source;
use crate::leader::{Elector, Role};
use crate::model::SourceEvent;

pub use options::{LoopEvent, RunError, RunOptions};

use dispatch::SetDone;
use runtime::Loop;

/// Run until `cancel` fires. Returns after sources stopped and in-flight Sets finished
/// or the grace period passed.
pub async fn run(config: Config, opts: RunOptions, cancel: CancellationToken) -> Result<(), RunError> {
    let (events_tx, mut events_rx) = mpsc::channel::<SourceEvent>(4096);
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<SetDone>();
    let sources_cancel = cancel.child_token();

    // The override file is an operator's hand on the switch: its watcher reads it off the
    // event path, and a change re-decides every group at once, even on a quiet fabric.
    let mut override_rx = config
        .override_file
        .clone()
        .map(|p| override_file::watch_override(p, override_file::OVERRIDE_POLL, cancel.child_token()));
    let mut lp = Loop::new(&config, opts, override_rx.clone());
    let mut sources = Vec::new();
    for (name, t) in &lp.targets {
        let subs = crate::plan::subscriptions(&config, name);
        if subs.paths.is_empty() {
            continue;
        }
        let source =
            spawn_source(t.spec.clone(), subs, events_tx.clone(), lp.opts.source.clone(), sources_cancel.clone());
        sources.push(source);
    }
    drop(events_tx);

    let mut role = lp.opts.leader.as_ref().map(Elector::subscribe);
    lp.role_changed(role.as_ref().map(|r| *r.borrow()));
    let (mut dones, mut events) = (Vec::new(), Vec::with_capacity(ROUND_EVENTS));
    let mut heartbeat = tokio::time::interval(Duration::from_secs(1));
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let wake = lp.next_wake();
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            Some(done) = done_rx.recv() => {
                dones.push(done);
                queued(&mut done_rx, &mut events_rx, &mut dones, &mut events);
                lp.on_round(&mut dones, &mut events, &done_tx);
            }
            n = events_rx.recv_many(&mut events, ROUND_EVENTS) => {
                if n == 0 {
                    return Err(RunError::ChannelClosed);
                }
                queued(&mut done_rx, &mut events_rx, &mut dones, &mut events);
                lp.on_round(&mut dones, &mut events, &done_tx);
            }
            _ = crate::sleep::sleep_until(wake) => lp.on_timer(&done_tx),
            _ = heartbeat.tick() => lp.on_heartbeat(),
            Some(()) = override_changed(&mut override_rx) => lp.evaluate_all(&done_tx),
            Some(now_role) = role_change(&mut role) => {
                lp.role_changed(Some(now_role));
                // A new leader trusts nothing it did not see: re-decide everything from
                // the devices' current state, and act only on what is still wrong.
                if now_role == Role::Leader {
                    lp.evaluate_all(&done_tx);
                }
            }
        }
    }

    info!("shutting down: stopping subscriptions");
    sources_cancel.cancel();
    let grace = tokio::time::sleep(lp.opts.shutdown_grace);
    tokio::pin!(grace);
    while lp.targets.values().any(|t| t.in_flight) {
        tokio::select! {
            Some(done) = done_rx.recv() => lp.finish(done),
            _ = &mut grace => {
                warn!("shutdown: abandoning Sets still unanswered after the grace period");
                break;
            }
        }
    }
    for s in sources {
        let _ = tokio::time::timeout(Duration::from_secs(1), s).await;
    }
    Ok(())
}

/// Source events one round takes at most: a storm's queue is decided in rounds of this
/// many, so the first leaves' Sets do not wait for the whole queue to be read.
const ROUND_EVENTS: usize = 256;

/// Adds what is already queued, without waiting: every Set answer, and source events up to
/// `ROUND_EVENTS` in all.
fn queued(
    done_rx: &mut mpsc::UnboundedReceiver<SetDone>,
    events_rx: &mut mpsc::Receiver<SourceEvent>,
    dones: &mut Vec<SetDone>,
    events: &mut Vec<SourceEvent>,
) {
    while let Ok(done) = done_rx.try_recv() {
        dones.push(done);
    }
    while events.len() < ROUND_EVENTS {
        match events_rx.try_recv() {
            Ok(ev) => events.push(ev),
            Err(_) => break,
        }
    }
}

/// The next role change; pending forever without leader election (or once it has stopped).
async fn role_change(rx: &mut Option<tokio::sync::watch::Receiver<Role>>) -> Option<Role> {
    match rx {
        Some(r) => match r.changed().await {
            Ok(()) => Some(*r.borrow_and_update()),
            Err(_) => {
                *rx = None;
                None
            }
        },
        None => std::future::pending().await,
    }
}

/// The next change of the override file; pending forever without one (or once its watcher stopped).
async fn override_changed(rx: &mut Option<tokio::sync::watch::Receiver<Override>>) -> Option<()> {
    match rx {
        Some(r) => match r.changed().await {
            Ok(()) => Some(()),
            Err(_) => {
                *rx = None;
                None
            }
        },
        None => std::future::pending().await,
    }
}
