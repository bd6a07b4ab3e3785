//! The `/status` document: what `opergroupd status` prints and what scripts read.
//!
//! Serialize and Deserialize both, so the CLI reads back exactly what the server wrote.
//! Times are RFC 3339 wall-clock strings (UTC, millisecond precision); durations are
//! milliseconds. New fields may be added; existing ones keep their names.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusDocument {
    /// When this document was built; ages in the human view are relative to it.
    pub generated_at: String,
    pub controller: ControllerStatus,
    pub targets: Vec<TargetStatus>,
    pub groups: Vec<GroupStatus>,
    /// Anycast services announced through ExaBGP (issue 7); absent when none are configured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceStatus>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ControllerStatus {
    pub version: String,
    pub role: ReplicaRole,
    /// With leader election: who this replica is, who holds the Lease, since when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_election: Option<LeaderElectionStatus>,
    pub started_at: String,
    pub uptime_ms: u64,
    /// Milliseconds since the control loop last reported that it turns.
    pub last_heartbeat_ms_ago: Option<u64>,
    pub config_loaded: bool,
    pub dry_run: bool,
    /// The runtime override file and what it currently suspends.
    pub maintenance: MaintenanceStatus,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LeaderElectionStatus {
    /// `namespace/name` of the Lease.
    pub lease: String,
    /// This replica's holder identity.
    pub identity: String,
    /// The holder the Lease named when last read; `None` when free or not read yet.
    pub holder: Option<String>,
    /// When this replica's current role began (RFC3339).
    pub role_since: String,
}

/// The role as status reports it: `crate::leader::Role` (what a replica may do), plus `single`
/// when there is no leader election at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplicaRole {
    /// Holds the lease: acts.
    Leader,
    /// Leader election configured, lease held elsewhere: observes, never Sets.
    Standby,
    /// No leader election: the only instance.
    Single,
}

impl ReplicaRole {
    pub const ALL: [ReplicaRole; 3] = [ReplicaRole::Leader, ReplicaRole::Standby, ReplicaRole::Single];
    pub fn as_str(self) -> &'static str {
        match self {
            ReplicaRole::Leader => "leader",
            ReplicaRole::Standby => "standby",
            ReplicaRole::Single => "single",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MaintenanceStatus {
    /// The configured `override-file:`, if any.
    pub override_file: Option<String>,
    /// `none`, `all`, or `groups` (then `groups` lists them).
    pub suspends: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConnState {
    /// Dialing, or subscribed and waiting for `sync_response`.
    Connecting,
    /// Subscription live and synced: its data is evidence.
    Synced,
    /// Stream gone or never synced in time: its data must not be acted on.
    Stale,
}

impl ConnState {
    pub const ALL: [ConnState; 3] = [ConnState::Connecting, ConnState::Synced, ConnState::Stale];
    pub fn as_str(self) -> &'static str {
        match self {
            ConnState::Connecting => "connecting",
            ConnState::Synced => "synced",
            ConnState::Stale => "stale",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetStatus {
    pub name: String,
    pub state: ConnState,
    /// When the target entered its current state.
    pub since: Option<String>,
    /// Set while synced: when the current subscription delivered `sync_response`.
    pub synced_since: Option<String>,
    pub ever_synced: bool,
    /// Readiness does not wait for this target.
    pub allow_absent: bool,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    /// Connection attempts after the first.
    pub reconnects: u64,
    /// The gNMI encoding of the current (or last) subscription, chosen from the target's
    /// Capabilities: `JSON_IETF` when offered, else `PROTO`. Sets use the same.
    pub encoding: Option<String>,
    /// Notifications received, and the updates and deletes they carried.
    pub notifications: u64,
    pub updates: u64,
    pub last_notification_at: Option<String>,
}

/// A group's health: the policy core's type, serialized kebab-case ("not-ready").
pub use crate::policy::Health;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Enforcement {
    /// Decisions are sent as Sets (or printed in dry-run).
    Enforcing,
    /// `admin-state: disable` in config: evaluate and report, never Set.
    ObserveOnly,
    /// The override file names this group (or is empty): evaluate and report, never Set.
    Suspended,
    /// A segment or the blast-radius cap holds a disable back (`reason` says which).
    Held,
    /// The device refused the group's Set with a permanent error (`reason` carries its
    /// message); parked until what it asks for changes, its target re-syncs, or a long wait.
    SetRefused,
}

impl Enforcement {
    pub const ALL: [Enforcement; 5] = [
        Enforcement::Enforcing,
        Enforcement::ObserveOnly,
        Enforcement::Suspended,
        Enforcement::Held,
        Enforcement::SetRefused,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Enforcement::Enforcing => "enforcing",
            Enforcement::ObserveOnly => "observe-only",
            Enforcement::Suspended => "suspended",
            Enforcement::Held => "held",
            Enforcement::SetRefused => "set-refused",
        }
    }
    /// Words for people: why the group is (not) enforcing.
    pub fn describe(self) -> &'static str {
        match self {
            Enforcement::Enforcing => "enforcing",
            Enforcement::ObserveOnly => "observe-only (admin-state disable)",
            Enforcement::Suspended => "suspended by override file",
            Enforcement::Held => "held back by a segment or the blast-radius cap",
            Enforcement::SetRefused => "Set refused by the device",
        }
    }
    /// Config `admin-state` wins over the override file: a group that never Sets is
    /// reported as observe-only whatever the file says.
    pub fn of(admin_enabled: bool, suspended_by_override: bool) -> Enforcement {
        match (admin_enabled, suspended_by_override) {
            (false, _) => Enforcement::ObserveOnly,
            (true, true) => Enforcement::Suspended,
            (true, false) => Enforcement::Enforcing,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupStatus {
    pub name: String,
    pub target: String,
    pub oper_state: Health,
    /// In words: "0/2 uplinks up, required 1".
    pub reason: String,
    pub enforcement: Enforcement,
    pub downlinks: Vec<DownlinkStatus>,
    pub pending: Option<PendingStatus>,
    pub last_input: Option<InputStatus>,
    pub last_output: Option<OutputStatus>,
    pub statistics: GroupStatistics,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DownlinkStatus {
    pub name: String,
    /// `enable` / `disable`, or null when the controller has no opinion yet.
    pub desired: Option<String>,
    /// As last reported by the device, or null when unknown.
    pub observed: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingStatus {
    /// What happens when the timer fires: `disable` (down-delay) or `enable` (up-delay).
    pub action: String,
    pub fires_at: String,
    /// Negative when overdue.
    pub fires_in_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputStatus {
    pub evaluated_at: String,
    pub values: Vec<InputValueStatus>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputValueStatus {
    pub path: String,
    /// Null when the path has no value (never reported, or deleted).
    pub value: Option<String>,
    pub received_at: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutputStatus {
    /// The Set in words, or the dry-run line.
    pub line: String,
    pub started_at: String,
    /// `in-flight`, `ok`, `failed` or `dry-run`.
    pub result: String,
    pub error: Option<String>,
    pub finished_at: Option<String>,
    /// Set sent to Set answered.
    pub latency_ms: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupStatistics {
    pub evaluations: u64,
    /// Evaluations that asked for a change of downlink admin-state.
    pub decisions: u64,
    pub sets_sent: u64,
    pub sets_failed: u64,
    pub retries: u64,
    pub last_decision_at: Option<String>,
    /// Decision to Set answered, for the last Set that succeeded (or was printed in dry-run).
    pub last_decision_to_set_ms: Option<f64>,
}

/// An anycast service's state: the service state machine's type, serialized lowercase.
pub use crate::anycast::machine::Phase as ServiceState;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub name: String,
    pub state: ServiceState,
    pub last_check: Option<String>,
    /// The last check's outcome in words.
    pub detail: Option<String>,
}
