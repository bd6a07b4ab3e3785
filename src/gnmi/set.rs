//! gNMI Set of downlink admin-states: one SetRequest per call, one `update` per path, in
//! the encoding the target's Capabilities chose: JSON_IETF (`"disable"`, `false`) or PROTO
//! typed scalars (`string_val: "disable"`, `bool_val: false`).

use std::time::{Duration, Instant};

use gnmi_proto::typed_value::Value;
use gnmi_proto::{SetRequest, TypedValue, Update};

use crate::config::Target;
use crate::model::{AdminState, WireEncoding};

use super::capabilities;
use super::channels::Channels;
use super::connect::{self, ConnectOptions, ErrorKind, GnmiClient, GnmiError};
use super::path;

/// The target accepted the whole SetRequest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetAck {
    /// The target's timestamp from the SetResponse (ns since the Unix epoch, 0 if absent).
    pub timestamp_ns: i64,
    /// From sending the request to receiving the response.
    pub elapsed: Duration,
}

/// A Set that failed. `retryable` says whether trying again later may succeed
/// (unavailable, timeout, connection trouble) or not (invalid argument, refused auth).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{target} ({address}): Set of {} failed{}: {detail}", paths.join(", "), if *retryable { " (will retry)" } else { " (permanent)" })]
pub struct SetError {
    pub target: String,
    pub address: String,
    pub paths: Vec<String>,
    pub retryable: bool,
    /// Not sent, or given up on the wire, because the fencing deadline passed: this replica
    /// may no longer act. Neither retried nor parked; the next leader decides afresh.
    pub fenced: bool,
    pub detail: String,
}

impl SetError {
    /// A Set that was not (or no longer) allowed on the wire: the fencing deadline passed.
    pub fn fenced<'a>(target: &Target, changes: impl IntoIterator<Item = &'a (String, AdminState)>) -> SetError {
        SetError {
            target: target.name.clone(),
            address: target.address.clone(),
            paths: changes.into_iter().map(|(p, _)| p.clone()).collect(),
            retryable: false,
            fenced: true,
            detail: "abandoned: the fencing deadline (Lease act-until) passed before it could be on the wire".into(),
        }
    }
}

/// The SetRequest for `changes`: one update per path, the value in the path's profile form
/// (`"disable"` for SR Linux's admin-state, `false` for OpenConfig's config/enabled),
/// as json_ietf_val (quotes included) or as a typed scalar for PROTO.
pub fn set_request(changes: &[(String, AdminState)], encoding: WireEncoding) -> Result<SetRequest, path::PathError> {
    let update = changes
        .iter()
        .map(|(p, state)| {
            let profile = crate::profile::of_set_path(p).unwrap_or(&crate::profile::SRL);
            let value = match encoding {
                WireEncoding::JsonIetf => Value::JsonIetfVal(profile.admin_json(*state).to_string().into_bytes()),
                WireEncoding::Proto => super::value::encode(&profile.admin_scalar(*state)),
            };
            Ok(Update {
                path: Some(path::parse(p)?),
                val: Some(TypedValue { value: Some(value) }),
                ..Default::default()
            })
        })
        .collect::<Result<Vec<_>, path::PathError>>()?;
    Ok(SetRequest { update, ..Default::default() })
}

/// The JSON value for an admin-state path, in the form of the profile the path belongs to:
/// `"disable"` for SR Linux's admin-state, `false` for OpenConfig's config/enabled.
pub fn admin_json(path: &str, state: AdminState) -> serde_json::Value {
    crate::profile::of_set_path(path).unwrap_or(&crate::profile::SRL).admin_json(state)
}

/// Sends one SetRequest carrying every change, bounded by `timeout`.
/// An empty `changes` sends nothing and succeeds.
pub async fn set_admin_states(
    client: &mut GnmiClient,
    target: &Target,
    changes: &[(String, AdminState)],
    encoding: WireEncoding,
    timeout: Duration,
) -> Result<SetAck, SetError> {
    let paths: Vec<String> = changes.iter().map(|(p, _)| p.clone()).collect();
    let fail = |retryable: bool, detail: String| SetError {
        target: target.name.clone(),
        address: target.address.clone(),
        paths: paths.clone(),
        retryable,
        fenced: false,
        detail,
    };
    if changes.is_empty() {
        return Ok(SetAck { timestamp_ns: 0, elapsed: Duration::ZERO });
    }
    let req = set_request(changes, encoding).map_err(|e| fail(false, e.to_string()))?;
    let mut req = tonic::Request::new(req);
    req.set_timeout(timeout);
    let started = Instant::now();
    let resp = match tokio::time::timeout(timeout, client.set(req)).await {
        Err(_) => return Err(fail(true, format!("no answer within {timeout:?}"))),
        Ok(Err(status)) => {
            return Err(fail(retryable_code(status.code()), GnmiError::from_status(target, &status).detail));
        }
        Ok(Ok(resp)) => resp.into_inner(),
    };
    // Deprecated in-band error (pre-0.7 targets).
    if let Some(e) = resp.message.filter(|e| e.code != 0) {
        let code = tonic::Code::from_i32(e.code as i32);
        return Err(fail(retryable_code(code), format!("target error {code:?}: {}", e.message)));
    }
    Ok(SetAck { timestamp_ns: resp.timestamp, elapsed: started.elapsed() })
}

/// Transient conditions are retried; a request the target judged wrong, or refused
/// credentials, will not get better by sending it again.
fn retryable_code(code: tonic::Code) -> bool {
    use tonic::Code::*;
    matches!(code, Unavailable | DeadlineExceeded | Aborted | ResourceExhausted | Internal | Unknown | Cancelled)
}

/// Sets admin-states on many targets, one channel per target: the one its subscription
/// published in `channels` when they are shared ([`Setter::sharing`]), else one it opens
/// lazily. A channel that failed with a retryable error is forgotten, so the next call
/// reconnects.
pub struct Setter {
    opts: ConnectOptions,
    timeout: Duration,
    /// Keyed by target name, with the settings the channel was made from: a target whose
    /// address, TLS or credentials changed gets a new channel.
    clients: Channels,
}

impl Setter {
    /// `timeout` bounds each Set RPC; connecting is bounded by `opts.connect_timeout`.
    pub fn new(opts: ConnectOptions, timeout: Duration) -> Self {
        Self::sharing(opts, timeout, Channels::default())
    }

    /// Like [`Setter::new`], sending on the channels the sources publish in `channels`
    /// (`SourceOptions::channels`): one HTTP/2 connection per target instead of two.
    pub fn sharing(opts: ConnectOptions, timeout: Duration, channels: Channels) -> Self {
        Setter { opts, timeout, clients: channels }
    }

    /// Sends `changes` in one SetRequest. With a `deadline` (fencing), connecting and the
    /// RPC are both bounded by it and the RPC carries it as its gRPC timeout, so a target
    /// that honours `grpc-timeout` drops a Set still queued when the deadline passes; past
    /// the deadline nothing is sent at all.
    pub async fn set(
        &self,
        target: &Target,
        changes: &[(String, AdminState)],
        deadline: Option<Instant>,
    ) -> Result<SetAck, SetError> {
        if changes.is_empty() {
            return Ok(SetAck { timestamp_ns: 0, elapsed: Duration::ZERO });
        }
        let left = |now: Instant| deadline.map(|d| d.saturating_duration_since(now));
        if left(Instant::now()).is_some_and(|l| l.is_zero()) {
            return Err(SetError::fenced(target, changes));
        }
        let connecting = self.client(target);
        let connected = match deadline {
            Some(d) => match tokio::time::timeout_at(d.into(), connecting).await {
                Ok(c) => c,
                Err(_) => return Err(SetError::fenced(target, changes)),
            },
            None => connecting.await,
        };
        let (mut client, encoding) = match connected {
            Ok(c) => c,
            Err(e) => {
                return Err(SetError {
                    target: target.name.clone(),
                    address: target.address.clone(),
                    paths: changes.iter().map(|(p, _)| p.clone()).collect(),
                    retryable: e.is_retryable() && e.kind != ErrorKind::Auth,
                    fenced: false,
                    detail: format!("{}: {}", e.kind, e.detail),
                });
            }
        };
        let timeout = match left(Instant::now()) {
            Some(l) if l.is_zero() => return Err(SetError::fenced(target, changes)),
            Some(l) => l.min(self.timeout),
            None => self.timeout,
        };
        let mut result = set_admin_states(&mut client, target, changes, encoding, timeout).await;
        if let Err(e) = &mut result {
            if e.retryable && left(Instant::now()).is_some_and(|l| l.is_zero()) {
                // Given up on the wire at the deadline: say so, do not retry.
                e.retryable = false;
                e.fenced = true;
                e.detail = format!("abandoned at the fencing deadline (Lease act-until): {}", e.detail);
            }
            if e.retryable || e.fenced {
                self.clients.forget(&target.name);
            }
        }
        result
    }

    /// Opens the channel to `target` now, unless one is open: the first Set after a
    /// failure should not pay a TCP connect and an HTTP/2 (and TLS) handshake on top of
    /// its own round trip. Failing here is harmless; the Set connects again itself.
    pub async fn warm(&self, target: &Target) {
        if let Err(e) = self.client(target).await {
            tracing::debug!(target_name = %target.name, error = %e, "could not open the Set channel ahead of time");
        }
    }

    async fn client(&self, target: &Target) -> Result<(GnmiClient, WireEncoding), GnmiError> {
        if let Some(c) = self.clients.get(target) {
            return Ok(c);
        }
        // Connect without holding the lock, so one slow target does not block the others.
        // A channel of our own asks Capabilities too: the encoding to Set in is the target's.
        let mut client = connect::connect(target, &self.opts).await?;
        let encoding = capabilities::check_capabilities(&mut client, target, self.opts.connect_timeout).await?;
        self.clients.publish(target, &client, encoding);
        Ok((client, encoding))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_has_one_update_per_path_with_quoted_json() {
        let changes = vec![
            (crate::srl_paths::admin_state("ethernet-1/1"), AdminState::Disable),
            (crate::srl_paths::admin_state("ethernet-1/2"), AdminState::Enable),
        ];
        let req = set_request(&changes, WireEncoding::JsonIetf).unwrap();
        assert!(req.replace.is_empty() && req.delete.is_empty());
        assert_eq!(req.update.len(), 2);
        let vals: Vec<&[u8]> = req
            .update
            .iter()
            .map(|u| match u.val.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::JsonIetfVal(b)) => b.as_slice(),
                other => panic!("unexpected value {other:?}"),
            })
            .collect();
        assert_eq!(vals, vec![&b"\"disable\""[..], &b"\"enable\""[..]]);
        assert_eq!(
            path::to_string(req.update[1].path.as_ref().unwrap()).unwrap(),
            "/interface[name=ethernet-1/2]/admin-state"
        );
    }

    #[test]
    fn proto_requests_carry_typed_scalars_in_each_profile_form() {
        let changes = vec![
            (crate::srl_paths::admin_state("ethernet-1/1"), AdminState::Disable),
            (crate::profile::OPENCONFIG.admin_set("Ethernet1"), AdminState::Disable),
            (crate::profile::OPENCONFIG.admin_set("Ethernet2"), AdminState::Enable),
        ];
        let req = set_request(&changes, WireEncoding::Proto).unwrap();
        let vals: Vec<Option<Value>> =
            req.update.iter().map(|u| u.val.as_ref().and_then(|v| v.value.clone())).collect();
        assert_eq!(
            vals,
            vec![Some(Value::StringVal("disable".into())), Some(Value::BoolVal(false)), Some(Value::BoolVal(true))]
        );
    }

    #[test]
    fn codes_split_into_retryable_and_permanent() {
        assert!(retryable_code(tonic::Code::Unavailable));
        assert!(retryable_code(tonic::Code::DeadlineExceeded));
        assert!(!retryable_code(tonic::Code::InvalidArgument));
        assert!(!retryable_code(tonic::Code::Unauthenticated));
        assert!(!retryable_code(tonic::Code::PermissionDenied));
    }
}
