//! Actuators turn a `SetIntent` into an effect: a gNMI Set, or a dry-run line.
//! The controller loop does not care which; it only learns whether it worked.

pub mod dry_run;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Target;
use crate::gnmi::set::{SetError, Setter};
use crate::model::SetIntent;

pub use dry_run::{DryRunLine, DryRunSink};

/// How long one Set may take before it counts as failed (and is retried).
pub const SET_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub enum Actuator {
    /// Send a gNMI SetRequest (JSON_IETF) to the target.
    Gnmi(Arc<Setter>),
    /// Print what would be set, one JSON line per path; never touch a device.
    DryRun(DryRunSink),
}

impl Actuator {
    /// Applies every intent of one target as one request: one SetRequest carrying all
    /// their changes, or one dry-run line per path. With a `deadline` (fencing: the instant
    /// this replica stops being allowed to act) nothing goes out after it.
    pub async fn apply(
        &self,
        target: &Arc<Target>,
        intents: &[SetIntent],
        deadline: Option<Instant>,
    ) -> Result<(), SetError> {
        match self {
            Actuator::Gnmi(setter) => {
                let changes: Vec<_> = intents.iter().flat_map(|i| i.changes.iter().cloned()).collect();
                setter.set(target, &changes, deadline).await.map(|_| ())
            }
            Actuator::DryRun(sink) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(SetError::fenced(target, intents.iter().flat_map(|i| i.changes.iter())));
                }
                for intent in intents {
                    sink.emit(intent);
                }
                Ok(())
            }
        }
    }

    /// Prepares to act on `target` (opens the gNMI Set channel) in the background.
    pub fn warm(&self, target: &Arc<Target>) {
        if let Actuator::Gnmi(setter) = self {
            let (setter, target) = (setter.clone(), target.clone());
            tokio::spawn(async move { setter.warm(&target).await });
        }
    }

    pub fn is_dry_run(&self) -> bool {
        matches!(self, Actuator::DryRun(_))
    }
}
