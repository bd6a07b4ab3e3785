//! `opergroupd check --online`: connect to every target exactly as `run` would (TLS, auth,
//! Capabilities, the same Subscribe), wait for its initial dump, and report what `run`
//! would find — interfaces that do not exist (`misconfigured`), BGP neighbors that do not,
//! targets that cannot be reached — without ever sending a Set.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::gnmi::source::{SourceOptions, spawn_source};
use crate::model::{SourceEvent, WireEncoding};
use crate::policy::{self, GroupMemory, Health};
use crate::state::State;

/// What one target told us.
#[derive(Clone, Debug, PartialEq)]
pub enum TargetOutcome {
    /// Synced in `encoding`: each of its groups with the verdict on its first dump.
    Synced { encoding: Option<WireEncoding>, groups: Vec<GroupFinding> },
    /// The first session failed (unreachable, TLS, auth, no sync_response...).
    Failed(String),
    /// Nothing within the deadline.
    TimedOut(Duration),
}

#[derive(Clone, Debug, PartialEq)]
pub struct GroupFinding {
    pub group: String,
    pub health: Health,
    pub reason: String,
}

impl GroupFinding {
    /// Misconfigured, or a listed BGP neighbor that does not exist.
    pub fn is_problem(&self) -> bool {
        self.health == Health::Misconfigured || self.reason.contains("warning:")
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// By target name, in config order; targets no group uses are not contacted.
    pub targets: Vec<(String, TargetOutcome)>,
}

impl Report {
    /// Every target synced and no group has a problem.
    pub fn ok(&self) -> bool {
        self.targets.iter().all(|(_, o)| match o {
            TargetOutcome::Synced { groups, .. } => groups.iter().all(|g| !g.is_problem()),
            _ => false,
        })
    }

    pub fn render(&self, config: &Config) -> String {
        let mut out = String::from("online check (nothing is Set):\n");
        for (name, outcome) in &self.targets {
            let address = config.targets.get(name).map_or("", |t| t.address.as_str());
            match outcome {
                TargetOutcome::Synced { encoding, groups } => {
                    let enc = encoding.map_or(String::new(), |e| format!(" ({})", e.as_str()));
                    let _ = writeln!(out, "  {name} ({address}): synced{enc}");
                    for g in groups {
                        let word = if g.health == Health::Misconfigured {
                            "MISCONFIGURED"
                        } else if g.is_problem() {
                            "WARNING"
                        } else {
                            "ok"
                        };
                        let _ = writeln!(out, "    {}: {word} ({}): {}", g.group, g.health.as_str(), g.reason);
                    }
                }
                TargetOutcome::Failed(e) => {
                    let _ = writeln!(out, "  {name} ({address}): UNREACHABLE: {e}");
                }
                TargetOutcome::TimedOut(d) => {
                    let _ = writeln!(out, "  {name} ({address}): UNREACHABLE: no sync within {d:?}");
                }
            }
        }
        let _ = writeln!(out, "{}", if self.ok() { "result: ok" } else { "result: problems found" });
        out
    }
}

/// Contact every target that a group uses, concurrently; each gets `timeout` in all.
pub async fn check(config: &Config, timeout: Duration) -> Report {
    let (tx, mut rx) = mpsc::channel::<SourceEvent>(4096);
    let cancel = CancellationToken::new();
    let opts = SourceOptions { sync_timeout: timeout, connect_timeout: timeout, ..SourceOptions::default() };
    let mut pending: Vec<String> = Vec::new();
    let mut sources = Vec::new();
    for (name, t) in &config.targets {
        let subs = crate::plan::subscriptions(config, name);
        if subs.paths.is_empty() {
            continue;
        }
        pending.push(name.clone());
        sources.push(spawn_source(Arc::new(t.clone()), subs, tx.clone(), opts.clone(), cancel.clone()));
    }
    drop(tx);
    let mut state = State::new();
    let mut outcomes: Vec<(String, TargetOutcome)> = Vec::new();
    let mut encodings: std::collections::HashMap<String, WireEncoding> = std::collections::HashMap::new();
    let deadline = tokio::time::Instant::now() + timeout + Duration::from_secs(1);
    while !pending.is_empty() {
        let ev = match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(ev)) => ev,
            Ok(None) | Err(_) => break,
        };
        if let SourceEvent::Subscribed { target, encoding, .. } = &ev {
            encodings.insert(target.to_string(), *encoding);
        }
        let done = match &ev {
            SourceEvent::Synced { target, .. } | SourceEvent::Stale { target, .. } => Some(target.to_string()),
            SourceEvent::Notification { .. } | SourceEvent::Connecting { .. } | SourceEvent::Subscribed { .. } => None,
        };
        // Only the first outcome per target counts (the source would retry forever).
        if let Some(name) = done.filter(|n| pending.contains(n)) {
            state.apply(&ev);
            pending.retain(|p| *p != name);
            let outcome = match ev {
                SourceEvent::Stale { error, .. } => TargetOutcome::Failed(error),
                _ => TargetOutcome::Synced {
                    encoding: encodings.get(&name).copied(),
                    groups: findings(config, &state, &name),
                },
            };
            outcomes.push((name, outcome));
        } else if matches!(ev, SourceEvent::Notification { .. }) {
            state.apply(&ev);
        }
    }
    cancel.cancel();
    drop(rx);
    for s in sources {
        let _ = tokio::time::timeout(Duration::from_secs(1), s).await;
    }
    outcomes.extend(pending.into_iter().map(|n| (n, TargetOutcome::TimedOut(timeout))));
    let order: Vec<&String> = config.targets.keys().collect();
    outcomes.sort_by_key(|(n, _)| order.iter().position(|o| *o == n));
    Report { targets: outcomes }
}

fn findings(config: &Config, state: &State, target: &str) -> Vec<GroupFinding> {
    let view = state.target(target);
    let now = Instant::now();
    config
        .groups
        .values()
        .filter(|g| g.target == target)
        .map(|g| {
            let v = policy::evaluate(g, &view, &GroupMemory::default(), now);
            GroupFinding { group: g.name.clone(), health: v.health, reason: v.reason }
        })
        .collect()
}
