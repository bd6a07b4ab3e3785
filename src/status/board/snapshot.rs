//! The `/status` document, built from the board only when someone asks.
//!
//! The loop records every evaluation under the board lock, so a scrape must not hold it
//! for the whole document (26 ms at 10,000 groups, `cargo bench --bench status`): targets
//! and groups are read `CHUNK` entries per hold. Each entry is read whole under one hold;
//! two entries may be from moments a scrape apart, as they would be on a busier board.

use std::ops::Bound;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use super::*;

/// Entries read per hold of the board lock (~0.3 ms of work).
const CHUNK: usize = 128;

impl Board {
    /// The `/status` document as of `now`.
    pub fn document(&self, now: Instant) -> StatusDocument {
        let clock = Clock { started: self.shared.started, started_wall: self.shared.started_wall };
        let heartbeat = Duration::from_micros(self.shared.heartbeat_us.load(Ordering::Relaxed));
        let since_start = now.saturating_duration_since(self.shared.started);
        let at = |i: Option<Instant>| i.map(|i| clock.rfc3339(i));
        let targets = in_chunks(
            || self.state(),
            |st| &st.targets,
            |name, t| TargetStatus {
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
            },
        );
        let groups = in_chunks(
            || self.state(),
            |st| &st.groups,
            |name, g| GroupStatus {
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
                            path: v.path.to_string(),
                            value: v.value.as_ref().map(ToString::to_string),
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
            },
        );
        let st = self.state();
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

/// `f` of every entry of the map `pick` chooses, in key order, taking the lock once per
/// `CHUNK` entries. An entry added meanwhile is included if it sorts after the chunk read
/// last; one removed meanwhile is left out if not read yet.
fn in_chunks<'a, S: 'a, V, T>(
    lock: impl Fn() -> MutexGuard<'a, S>,
    pick: impl Fn(&S) -> &BTreeMap<String, V>,
    mut f: impl FnMut(&String, &V) -> T,
) -> Vec<T> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let st = lock();
        let map = pick(&st);
        let from = after.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        let mut read = 0;
        let mut last = None;
        for (k, v) in map.range::<str, _>((from, Bound::Unbounded)).take(CHUNK) {
            out.push(f(k, v));
            read += 1;
            last = Some(k);
        }
        match last {
            Some(k) if read == CHUNK => after = Some(k.clone()),
            _ => return out,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every entry once, in order, and the lock free again between chunks: the loop's
    /// recordings get their turn during a scrape.
    #[test]
    fn entries_are_read_in_chunks_with_the_lock_released_between_them() {
        for n in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + 7] {
            let m = Mutex::new((0..n).map(|i| (format!("g{i:05}"), i)).collect::<BTreeMap<String, usize>>());
            let holds = std::cell::Cell::new(0);
            let lock = || {
                assert!(m.try_lock().is_ok(), "the lock was still held when the next chunk began");
                holds.set(holds.get() + 1);
                m.lock().unwrap()
            };
            let read = in_chunks(lock, |map| map, |k, v| (k.clone(), *v));
            assert_eq!(read, (0..n).map(|i| (format!("g{i:05}"), i)).collect::<Vec<_>>(), "{n} entries");
            assert_eq!(holds.get(), n / CHUNK + 1, "{n} entries");
        }
    }
}
