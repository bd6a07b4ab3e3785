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
        let waiting: Vec<String> = st
            .targets
            .iter()
            .filter(|(_, t)| !t.ever_synced && !t.allow_absent)
            .map(|(name, t)| match &t.last_error {
                Some((_, e)) => format!("{name} ({}: {e})", t.state.as_str()),
                None => format!("{name} ({})", t.state.as_str()),
            })
            .collect();
        if waiting.is_empty() { Ok(()) } else { Err(format!("waiting for first sync of {}", waiting.join(", "))) }
    }
}
