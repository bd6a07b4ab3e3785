//! From intents to Sets: at most one Set per target on the wire, a backoff after a
//! failure, and the answer written back into the state.

use std::time::Instant;

use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::actuate::DryRunLine;
use crate::gnmi::set::SetError;
use crate::model::{Scalar, SetIntent, SourceEvent};
use crate::status::SetResult;

use super::options::LoopEvent;
use super::runtime::Loop;

/// A Set task's answer to the loop.
pub(super) struct SetDone {
    pub(super) intent: SetIntent,
    pub(super) started: Instant,
    pub(super) result: Result<(), SetError>,
}

impl Loop {
    /// Hands `intent` to the actuator unless a Set is on the wire for its target or the
    /// target is backing off; a deferred intent is decided again when that ends.
    pub(super) fn dispatch(&mut self, intent: SetIntent, now: Instant, done_tx: &mpsc::UnboundedSender<SetDone>) {
        let Some(t) = self.targets.get_mut(intent.target.as_ref()) else { return };
        if t.in_flight || t.retry.not_before().is_some_and(|at| at > now) {
            debug!("set deferred: one already on the wire or backing off");
            return;
        }
        t.in_flight = true;
        let target = t.spec.clone();
        let actuator = self.opts.actuator.clone();
        let tx = done_tx.clone();
        info!(changes = ?intent.changes, reason = %intent.reason, "set");
        if let Some(board) = &self.opts.board {
            let line = DryRunLine::from_intent(&intent)
                .iter()
                .map(|l| serde_json::to_string(l).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n");
            board.set_started(&intent.group, line, now);
        }
        self.observe(LoopEvent::SetStarted { intent: intent.clone(), at: now });
        tokio::spawn(async move {
            let started = Instant::now();
            let result = actuator.apply(&target, &intent).await;
            let _ = tx.send(SetDone { intent, started, result });
        });
    }

    pub(super) fn finish(&mut self, done: SetDone) {
        let now = Instant::now();
        let SetDone { intent, started, result } = done;
        let Some(t) = self.targets.get_mut(intent.target.as_ref()) else { return };
        t.in_flight = false;
        let latency_ms = now.duration_since(started).as_secs_f64() * 1e3;
        let outcome = match &result {
            Ok(()) => {
                t.retry.succeeded();
                info!(target = %intent.target, group = %intent.group, latency_ms, "set acknowledged");
                if self.opts.actuator.is_dry_run() {
                    let printed = self.printed.entry(intent.target.to_string()).or_default();
                    printed.extend(intent.changes.iter().cloned());
                    SetResult::DryRun
                } else {
                    // The device accepted it: count it as observed until the stream says
                    // otherwise, so the next evaluation does not send it again.
                    self.state.apply(&SourceEvent::Notification {
                        target: intent.target.clone(),
                        received: now,
                        device_ns: 0,
                        updates: intent
                            .changes
                            .iter()
                            .map(|(p, v)| (p.clone(), Scalar::Str(v.as_str().into())))
                            .collect(),
                        deletes: Vec::new(),
                    });
                    SetResult::Ok
                }
            }
            Err(e) => {
                let wait = t.retry.failed(now);
                warn!(target = %intent.target, group = %intent.group, error = %e, retry_in_ms = wait.as_millis() as u64,
                      "set failed; will re-evaluate from fresh state before trying again");
                if let Some(board) = &self.opts.board {
                    board.set_retry(&intent.group);
                }
                SetResult::Failed(e.to_string())
            }
        };
        if let Some(board) = &self.opts.board {
            board.set_finished(&intent.group, outcome, now);
        }
        self.observe(LoopEvent::SetFinished { intent, result: result.map_err(|e| e.to_string()), started, at: now });
    }
}
