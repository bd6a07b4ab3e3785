//! The `/status` document, built from the board only when someone asks.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use super::*;

impl Board {
    /// The `/status` document as of `now`.
    pub fn document(&self, now: Instant) -> StatusDocument {
        let clock = Clock { started: self.shared.started, started_wall: self.shared.started_wall };
        let heartbeat = Duration::from_micros(self.shared.heartbeat_us.load(Ordering::Relaxed));
        let since_start = now.saturating_duration_since(self.shared.started);
        let st = self.state();
        let at = |i: Option<Instant>| i.map(|i| clock.rfc3339(i));
        let targets = st
            .targets
            .iter()
            .map(|(name, t)| TargetStatus {
                name: name.clone(),
                state: t.state,
                since: at(t.since),
                synced_since: at(t.synced_since),
                ever_synced: t.ever_synced,
                allow_absent: t.allow_absent,
                last_error: t.last_error.as_ref().map(|(_, e)| e.clone()),
                last_error_at: at(t.last_error.as_ref().map(|(i, _)| *i)),
                reconnects: t.connects.saturating_sub(1),
                encoding: t.encoding.map(|e| e.as_str().to_string()),
                notifications: t.notifications,
                updates: t.updates,
                last_notification_at: at(t.last_notification),
            })
            .collect();
        let groups = st
            .groups
            .iter()
            .map(|(name, g)| GroupStatus {
                name: name.clone(),
                target: g.target.clone(),
                oper_state: g.health,
                reason: g.reason.clone(),
                enforcement: g.enforcement,
                downlinks: g
                    .downlinks
                    .iter()
                    .map(|d| DownlinkStatus {
                        name: d.name.clone(),
                        desired: d.desired.map(|s| s.as_str().to_string()),
                        observed: d.observed.map(|s| s.as_str().to_string()),
                    })
                    .collect(),
                pending: g.pending.as_ref().map(|p| PendingStatus {
                    action: p.action.as_str().to_string(),
                    fires_at: clock.rfc3339(p.fires_at),
                    fires_in_ms: signed_ms(now, p.fires_at),
                }),
                last_input: g.evaluated_at.map(|evaluated| InputStatus {
                    evaluated_at: clock.rfc3339(evaluated),
                    values: g
                        .inputs
                        .iter()
                        .map(|v| InputValueStatus {
                            path: v.path.clone(),
                            value: v.value.clone(),
                            received_at: at(v.received),
                        })
                        .collect(),
                }),
                last_output: g.output.as_ref().map(|o| OutputStatus {
                    line: o.line.clone(),
                    started_at: clock.rfc3339(o.started),
                    result: o.finished.as_ref().map_or("in-flight", |(_, r)| r.as_str()).to_string(),
                    error: match &o.finished {
                        Some((_, SetResult::Failed(e) | SetResult::Refused(e))) => Some(e.clone()),
                        _ => None,
                    },
                    finished_at: at(o.finished.as_ref().map(|(i, _)| *i)),
                    latency_ms: o.finished.as_ref().map(|(i, _)| ms(i.saturating_duration_since(o.started))),
                }),
                statistics: GroupStatistics {
                    evaluations: g.stats.evaluations,
                    decisions: g.stats.decisions,
                    sets_sent: g.stats.sets_sent,
                    sets_failed: g.stats.sets_failed,
                    retries: g.stats.retries,
                    last_decision_at: at(g.stats.last_decision),
                    last_decision_to_set_ms: g.stats.last_decision_to_set.map(ms),
                },
            })
            .collect();
        let services = st
            .services
            .iter()
            .map(|(name, s)| ServiceStatus {
                name: name.clone(),
                state: s.state,
                last_check: at(s.last_check),
                detail: s.detail.clone(),
            })
            .collect();
        let suspends = st.override_now.as_str();
        let suspended_groups = match &st.override_now {
            Override::Groups(g) => g.iter().cloned().collect(),
            Override::None | Override::All => Vec::new(),
        };
        StatusDocument {
            generated_at: clock.rfc3339(now),
            controller: ControllerStatus {
                version: self.shared.version.clone(),
                role: st.role,
                leader_election: st.leader_election.clone(),
                started_at: clock.rfc3339(self.shared.started),
                uptime_ms: u64::try_from(since_start.as_millis()).unwrap_or(u64::MAX),
                last_heartbeat_ms_ago: (heartbeat > Duration::ZERO)
                    .then(|| u64::try_from(since_start.saturating_sub(heartbeat).as_millis()).unwrap_or(u64::MAX)),
                config_loaded: st.config_loaded,
                dry_run: st.dry_run,
                maintenance: MaintenanceStatus {
                    override_file: st.override_file.as_ref().map(|p| p.display().to_string()),
                    suspends: suspends.to_string(),
                    groups: suspended_groups,
                },
            },
            targets,
            groups,
            services,
        }
    }
}

/// Turns monotonic instants into wall-clock strings, anchored at the board's creation.
struct Clock {
    started: Instant,
    started_wall: SystemTime,
}

impl Clock {
    fn wall(&self, i: Instant) -> SystemTime {
        match i.checked_duration_since(self.started) {
            Some(after) => self.started_wall + after,
            None => self.started_wall - self.started.duration_since(i),
        }
    }

    fn rfc3339(&self, i: Instant) -> String {
        rfc3339(self.wall(i))
    }
}

/// RFC 3339 in UTC with millisecond precision: `2026-11-01T10:00:03.250Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let dt = time::OffsetDateTime::from(t);
    let dt = dt.replace_nanosecond(dt.nanosecond() / 1_000_000 * 1_000_000).unwrap_or(dt);
    dt.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| "invalid-time".to_string())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn signed_ms(now: Instant, at: Instant) -> i64 {
    match at.checked_duration_since(now) {
        Some(ahead) => i64::try_from(ahead.as_millis()).unwrap_or(i64::MAX),
        None => -i64::try_from(now.duration_since(at).as_millis()).unwrap_or(i64::MAX),
    }
}
