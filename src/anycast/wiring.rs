//! What the CLI's `opergroupd exabgp --config FILE` runs: the actuator on stdin/stdout,
//! the status board, and, when the file also holds oper-groups, an observe-only controller
//! whose group decisions gate the services with `group:`.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use super::{Exabgp, Options, acks_enabled, run_on_stdio};
use crate::actuate::{Actuator, DryRunSink};
use crate::config::Config;
use crate::controller::{self, LoopEvent, RunOptions};
use crate::model::AdminState;
use crate::status::{self, Board};

/// A group's decision as the services follow it: the one its downlinks follow, after
/// down-delay and up-delay. `Some(true)`: downlinks enabled (announce as up);
/// `Some(false)`: disabled (the down treatment); `None`: holding (timers running,
/// not ready, target stale), so the last decision stands.
pub fn group_decision(desired: Option<AdminState>) -> Option<bool> {
    desired.map(|d| d == AdminState::Enable)
}

/// `opergroupd exabgp`: run as an ExaBGP `process`. Services are probed and announced
/// through ExaBGP's text API on stdout. When the config also has oper-groups, their targets
/// are subscribed and evaluated (observe only: this mode never Sets) so services with
/// `group:` announce as up only while their group's decision is "enable". With `http:`
/// configured, /status and /metrics show the services (and groups).
pub async fn run(config: Config) -> Result<(), String> {
    if config.services.is_empty() {
        return Err("no services configured: `opergroupd exabgp` needs a `services:` section".into());
    }
    let cancel = CancellationToken::new();
    let services: Vec<_> = config.services.values().cloned().collect();
    let opts = Options { ack: acks_enabled(|k| std::env::var(k).ok()), ..Options::default() };
    let ex = Exabgp::new(services, opts);
    let handle = ex.handle();

    let board = Board::from_config(&config, env!("CARGO_PKG_VERSION"), false);
    let mut tasks = Vec::new();
    if let Some(addr) = config.http {
        let (bound, server) =
            status::serve(addr, board.clone(), cancel.clone()).map_err(|e| format!("status server on {addr}: {e}"))?;
        info!(%bound, "status: /status /metrics /healthz /readyz");
        tasks.push(tokio::spawn(async move {
            let _ = server.await;
        }));
    }

    // Services into the status board, a few times a second (cheap: one snapshot).
    let (h, b, c) = (handle.clone(), board.clone(), cancel.clone());
    tasks.push(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        while c.run_until_cancelled(tick.tick()).await.is_some() {
            b.heartbeat(std::time::Instant::now());
            for s in h.snapshot() {
                b.service(&s.name, s.state, None, s.last_check);
            }
        }
    }));

    if !config.groups.is_empty() {
        let mut observed = config.clone();
        for g in observed.groups.values_mut() {
            g.enforce = false;
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        // Never reached (no group enforces); a sink that cannot touch a device.
        let mut opts = RunOptions::new(Actuator::DryRun(DryRunSink::Channel(tokio::sync::mpsc::unbounded_channel().0)));
        opts.observer = Some(tx);
        opts.board = Some(board.clone());
        let h = handle.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                if let LoopEvent::Verdict { group, desired, .. } = ev
                    && let Some(enabled) = group_decision(desired)
                {
                    h.set_group_decision(&group, enabled);
                }
            }
        }));
        let c = cancel.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = controller::run(observed, opts, c).await {
                error!(error = %e, "oper-group observation stopped");
            }
        }));
    }

    let result = run_on_stdio(ex).await;
    cancel.cancel();
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
    }
    result.map(|_| ()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_follow_the_groups_decision_not_its_health() {
        assert_eq!(group_decision(Some(AdminState::Enable)), Some(true));
        assert_eq!(group_decision(Some(AdminState::Disable)), Some(false));
        // Unhealthy within down-delay, healthy within up-delay, not ready, unknown: hold.
        assert_eq!(group_decision(None), None);
    }
}
