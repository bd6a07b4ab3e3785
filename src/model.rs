//! Types that cross module boundaries: what sources observe, what policy decides.
//!
//! Paths are carried as canonical strings (`/interface[name=ethernet-1/49]/oper-state`):
//! no origin, no module prefixes, keys sorted by name. `crate::srl_paths` builds the ones
//! the controller asks for; `crate::gnmi::path` turns wire paths into this form.

use std::sync::Arc;
use std::time::Instant;

/// A target's name as written in the config (`leaf1`).
pub type TargetName = Arc<str>;

/// A leaf value as decoded from a notification.
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    Str(String),
    Int(i64),
    Uint(u64),
    Bool(bool),
    Float(f64),
}

impl Scalar {
    /// An enumeration or identityref value without its module prefix
    /// (`srl_nokia-common:evpn` -> `evpn`).
    pub fn as_enum(&self) -> Option<&str> {
        match self {
            Scalar::Str(s) => Some(s.rsplit_once(':').map_or(s.as_str(), |(_, v)| v)),
            _ => None,
        }
    }

    /// A non-negative integer; counter64 arrives as a JSON string in JSON_IETF.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Scalar::Uint(v) => Some(*v),
            Scalar::Int(v) => u64::try_from(*v).ok(),
            Scalar::Str(s) => s.trim().parse().ok(),
            Scalar::Bool(_) | Scalar::Float(_) => None,
        }
    }
}

impl std::fmt::Display for Scalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scalar::Str(s) => f.write_str(s),
            Scalar::Int(v) => write!(f, "{v}"),
            Scalar::Uint(v) => write!(f, "{v}"),
            Scalar::Bool(v) => write!(f, "{v}"),
            Scalar::Float(v) => write!(f, "{v}"),
        }
    }
}

/// What a source task reports about its target. One direction: sources -> controller.
#[derive(Clone, Debug)]
pub enum SourceEvent {
    /// Values changed. `deletes` are canonical paths of removed nodes; a deleted
    /// container removes every leaf below it.
    Notification {
        target: TargetName,
        received: Instant,
        /// Device timestamp, nanoseconds since the Unix epoch (0 when absent).
        device_ns: i64,
        updates: Vec<(String, Scalar)>,
        deletes: Vec<String>,
    },
    /// The initial dump is complete: from now on the target's data is evidence.
    Synced { target: TargetName, at: Instant },
    /// The stream is gone or never synced in time: every value of this target is
    /// stale and must not be acted on until the next `Synced`.
    Stale { target: TargetName, at: Instant, error: String },
    /// A connection attempt starts (1 for the first, then one per reconnect). Facts for
    /// status only: it changes nothing about freshness.
    Connecting { target: TargetName, at: Instant, attempt: u64 },
    /// The target accepted the subscription, in the encoding chosen from its Capabilities.
    /// Facts for status only, like `Connecting`.
    Subscribed { target: TargetName, at: Instant, encoding: WireEncoding },
}

impl SourceEvent {
    /// The target the event is about.
    pub fn target(&self) -> &TargetName {
        match self {
            SourceEvent::Notification { target, .. }
            | SourceEvent::Synced { target, .. }
            | SourceEvent::Stale { target, .. }
            | SourceEvent::Connecting { target, .. }
            | SourceEvent::Subscribed { target, .. } => target,
        }
    }
}

/// The gNMI encoding of a session's values: JSON_IETF when the target offers it, else
/// PROTO (typed scalars). Sets on that target use the same encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WireEncoding {
    JsonIetf,
    Proto,
}

impl WireEncoding {
    /// The name gNMI gives it (`JSON_IETF`, `PROTO`), as status shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            WireEncoding::JsonIetf => "JSON_IETF",
            WireEncoding::Proto => "PROTO",
        }
    }
}

/// Downlink admin-state, the only thing the controller ever writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AdminState {
    Enable,
    Disable,
}

impl AdminState {
    pub fn as_str(self) -> &'static str {
        match self {
            AdminState::Enable => "enable",
            AdminState::Disable => "disable",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "enable" => Some(AdminState::Enable),
            "disable" => Some(AdminState::Disable),
            _ => None,
        }
    }
}

/// One Set the controller means to make: every change for one target from one decision.
#[derive(Clone, Debug, PartialEq)]
pub struct SetIntent {
    pub target: TargetName,
    pub group: String,
    /// (canonical admin-state path, value), in downlink order.
    pub changes: Vec<(String, AdminState)>,
    /// For people: "0/2 uplinks up, required 1".
    pub reason: String,
}
