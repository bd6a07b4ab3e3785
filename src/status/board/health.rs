//! `/healthz` (the loop turns) and `/readyz` (config loaded, targets synced once).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::*;

impl Board {
    /// `/healthz`: Ok while the loop has called `heartbeat` recently (counting from the
    /// board's creation, so a starting process is not declared dead).
    pub fn liveness(&self, now: Instant) -> Result<(), String> {
        let last = Duration::from_micros(self.shared.heartbeat_us.load(Ordering::Relaxed));
        let age = now.saturating_duration_since(self.shared.started).saturating_sub(last);
        let limit = Duration::from_millis(self.shared.heartbeat_timeout_ms.load(Ordering::Relaxed));
        if age > limit {
            Err(format!("control loop silent for {} ms (limit {} ms)", age.as_millis(), limit.as_millis()))
        } else {
            Ok(())
        }
    }

    /// `/readyz`: Ok once the config is loaded and every target not allowed to be absent
    /// has synced at least once.
    pub fn readiness(&self) -> Result<(), String> {
        let st = self.state();
        if !st.config_loaded {
            return Err("configuration not loaded".to_string());
        }
        // Bounded, and only the names shown are formatted: probed every few milliseconds
        // while 10,000 targets sync, naming every one was a 100 KB body built under the
        // board's lock, which the control loop takes on every event.
        let mut waiting =
            st.targets.iter().filter(|(_, t)| !t.ever_synced && !t.allow_absent).map(|(n, t)| Waiting(n, t)).peekable();
        if waiting.peek().is_none() {
            return Ok(());
        }
        Err(format!("waiting for first sync of {}", crate::brief::list(waiting)))
    }
}

/// A target `/readyz` waits for, as it names it: `leaf2 (stale: connection refused)`.
struct Waiting<'a>(&'a str, &'a TargetEntry);

impl std::fmt::Display for Waiting<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Waiting(name, t) = self;
        match &t.last_error {
            Some((_, e)) => write!(f, "{name} ({}: {e})", t.state.as_str()),
            None => write!(f, "{name} ({})", t.state.as_str()),
        }
    }
}
