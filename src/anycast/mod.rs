//! Anycast through ExaBGP: `opergroupd exabgp` runs as an ExaBGP `process`, probes
//! services and announces or withdraws their prefixes. Everything of that mode is here:
//!
//! * `config` — the `services:` section (raw shapes, values, defaults, validation);
//! * `probe` — the health checks (tcp, http, exec) under a timeout;
//! * `machine` — the pure per-service state machine (init, rising, up, falling, down, disabled);
//! * `service_task` — one task per service: checks on its own timer, feeds the machine,
//!   publishes its status and the route it wants;
//! * `protocol` — ExaBGP's text API: the lines we write and the lines it writes back;
//! * `session` — the pure bookkeeping of what ExaBGP holds and which command is next;
//! * `actuator` — the session loop that owns stdout, plus a reader task that drains stdin
//!   continuously (so ACKs never fill the pipe);
//! * `handle` — status snapshots for /status and /metrics, and the oper-group input;
//! * `wiring` — what the CLI's `exabgp --config FILE` runs, with the observe-only
//!   controller that feeds the groups' decisions.
//!
//! Entry points:
//! * [`run`] — the `exabgp` subcommand for a loaded config;
//! * [`run_on_stdio`] — an [`Exabgp`] on this process's stdin/stdout and SIGTERM/SIGINT;
//! * [`Exabgp::new`] + [`Exabgp::handle`] + [`Exabgp::run`] — the same with any reader,
//!   writer and shutdown future, and a [`Handle`] for /status, /metrics and group input.

mod actuator;
pub mod config;
mod handle;
pub mod machine;
pub mod probe;
pub mod protocol;
mod service_task;
pub mod session;
mod wiring;

use std::path::Path;
use std::time::Duration;

use tracing::error;

pub use actuator::Exabgp;
use config::Service;
pub use handle::{Handle, ServiceSnapshot, SessionStatus};
pub use wiring::{group_decision, run};

/// Runtime options of the ExaBGP actuator.
#[derive(Clone, Debug)]
pub struct Options {
    /// ExaBGP acknowledges every command (`exabgp.api.ack`, on by default). When false,
    /// a written command counts as applied.
    pub ack: bool,
    /// How long an ACK may take before the session is reported unresponsive.
    pub ack_timeout: Duration,
    /// How long an ACK may take before it is given up as lost: what its command changed
    /// counts as unknown and is asserted again, so one lost ACK never stops the session.
    pub resend_after: Duration,
    /// Cap of the retry backoff after `error`.
    pub retry_max: Duration,
    /// On SIGTERM, how long to wait for the withdraws to be acknowledged.
    pub shutdown_grace: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ack: true,
            ack_timeout: Duration::from_secs(5),
            resend_after: Duration::from_secs(15),
            retry_max: Duration::from_secs(30),
            // ExaBGP kills its processes about 2 s after SIGTERM; the contract allows 5 s.
            shutdown_grace: Duration::from_secs(3),
        }
    }
}

/// Why the run ended. Every variant is a clean exit (code 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// ExaBGP said `shutdown`: it is stopping and tears the sessions down itself.
    Shutdown,
    /// stdin closed (or stdout broke): ExaBGP is gone.
    Eof,
    /// SIGTERM/SIGINT (the shutdown future): what we announced was withdrawn first.
    Terminated,
}

#[derive(Debug, thiserror::Error)]
pub enum ExabgpError {
    #[error("writing to ExaBGP: {0}")]
    Write(std::io::Error),
    #[error("reading from ExaBGP: {0}")]
    Read(std::io::Error),
}

/// Run `ex` on this process's stdin/stdout until SIGTERM/SIGINT, ExaBGP's `shutdown` or
/// EOF (on a signal, what was announced is withdrawn first).
pub async fn run_on_stdio(ex: Exabgp) -> Result<Exit, ExabgpError> {
    let shutdown = async {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                error!("cannot install signal handlers: {e}");
                std::future::pending::<()>().await
            }
        }
    };
    ex.run(tokio::io::stdin(), tokio::io::stdout(), shutdown).await
}

/// The services of a config file, validated by the one config loader.
pub fn load_services(path: &Path) -> Result<Vec<Service>, String> {
    let config = crate::config::load(path).map_err(|e| e.to_string())?;
    Ok(config.services.into_values().collect())
}

/// ExaBGP hands its environment to its processes, so `exabgp.api.ack=false` (or
/// `exabgp_api_ack=false`) set there is visible here. A setting made only in exabgp.env is
/// not: then ACKs are expected and their absence is reported as ACK timeouts.
pub fn acks_enabled(env: impl Fn(&str) -> Option<String>) -> bool {
    let value = env("exabgp.api.ack").or_else(|| env("exabgp_api_ack"));
    !matches!(value.as_deref().map(str::to_ascii_lowercase).as_deref(), Some("false" | "0" | "no" | "off"))
}

#[cfg(test)]
mod tests {
    use super::acks_enabled;

    #[test]
    fn ack_setting_is_read_from_exabgps_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        assert!(acks_enabled(env(&[])));
        assert!(acks_enabled(env(&[("exabgp.api.ack", "true")])));
        assert!(!acks_enabled(env(&[("exabgp.api.ack", "false")])));
        assert!(!acks_enabled(env(&[("exabgp_api_ack", "False")])));
        assert!(acks_enabled(env(&[("exabgp_api_ack", "1")])));
    }
}
