//! What `run` is given and what it tells an observer.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::actuate::Actuator;
use crate::gnmi::source::SourceOptions;
use crate::leader::Elector;
use crate::model::{AdminState, SetIntent, TargetName};
use crate::policy::Health;
use crate::status::Board;

/// Everything `run` needs besides the config.
#[derive(Clone)]
pub struct RunOptions {
    pub actuator: Actuator,
    pub source: SourceOptions,
    /// Backoff between re-evaluations after a failed Set.
    pub set_backoff_min: Duration,
    pub set_backoff_max: Duration,
    /// How long a group whose Set the device refused for good waits before the same Set
    /// is tried again (sooner when what it asks for changes or its target re-syncs).
    pub set_refused_retry: Duration,
    /// How long shutdown waits for Sets already on the wire.
    pub shutdown_grace: Duration,
    /// Optional tap on what the loop does (demo narration, tests waiting on conditions).
    pub observer: Option<mpsc::UnboundedSender<LoopEvent>>,
    /// Where the loop records what it sees and does, for /status and /metrics.
    pub board: Option<Board>,
    /// With leader election: Sets (and dry-run lines) only while this replica holds the
    /// Lease, checked at the moment of each Set. Without: always acts.
    pub leader: Option<Elector>,
}

impl RunOptions {
    pub fn new(actuator: Actuator) -> Self {
        RunOptions {
            actuator,
            source: SourceOptions::default(),
            set_backoff_min: Duration::from_millis(200),
            set_backoff_max: Duration::from_secs(10),
            set_refused_retry: Duration::from_secs(300),
            shutdown_grace: Duration::from_secs(3),
            observer: None,
            board: None,
            leader: None,
        }
    }
}

/// What the loop did, for people and tests. Sent only when an observer is attached.
#[derive(Clone, Debug)]
pub enum LoopEvent {
    /// A group's verdict changed (health, desired state or reason).
    Verdict {
        group: String,
        health: Health,
        desired: Option<AdminState>,
        reason: String,
        at: Instant,
    },
    /// A Set (or dry-run line) was handed to the actuator.
    SetStarted {
        intent: SetIntent,
        at: Instant,
    },
    /// The actuator answered.
    SetFinished {
        intent: SetIntent,
        result: Result<(), String>,
        started: Instant,
        at: Instant,
    },
    /// The safety stage held a group's disable back (`reason`), or released it (None).
    Held {
        group: String,
        reason: Option<String>,
        at: Instant,
    },
    /// A target's data became evidence, or stopped being.
    TargetSynced {
        target: TargetName,
        at: Instant,
    },
    TargetStale {
        target: TargetName,
        error: String,
        at: Instant,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the controller loop lost its event channel")]
    ChannelClosed,
}
