//! The Subscribe request and what a notification says, without I/O: the request for a
//! target's paths (STREAM, ON_CHANGE, heartbeats for liveness), the encoding a session asks
//! for, and notifications decoded into canonical paths and values. `source.rs` drives them.

use std::collections::HashSet;
use std::time::Duration;

use gnmi_proto::{
    Encoding, Notification, SubscribeRequest, Subscription, SubscriptionList, SubscriptionMode, subscribe_request,
    subscription_list,
};

use crate::model::{Scalar, WireEncoding};

use super::capabilities;
use super::path::{self, PathError};
use super::value::{self, ValueError};

/// The heartbeat asked for with a given liveness: three chances per period.
pub fn heartbeat_for(liveness: Duration) -> Duration {
    (liveness / 3).max(Duration::from_millis(100))
}

/// What one target's source subscribes to: every path the groups read, and the ones that
/// carry heartbeats when liveness is on (`crate::plan::subscriptions`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subscriptions {
    pub paths: Vec<String>,
    /// A subset of `paths`. A re-send on any one of them proves the stream alive; asking
    /// for it on every path would multiply the idle traffic by the number of paths.
    pub heartbeat: Vec<String>,
}

impl Subscriptions {
    /// Heartbeats on every path.
    pub fn every_path(paths: Vec<String>) -> Self {
        Subscriptions { heartbeat: paths.clone(), paths }
    }
}

/// The Subscribe request for `paths` (canonical strings): STREAM, ON_CHANGE each, JSON_IETF
/// (each session asks for the encoding the target's Capabilities offer, see
/// `capabilities::choose_encoding`); when `heartbeat` is given, the subscriptions for the
/// paths in `heartbeat_on` carry it as `heartbeat_interval` (the device re-sends their
/// unchanged values that often).
pub fn subscribe_request(
    paths: &[String],
    heartbeat_on: &HashSet<String>,
    heartbeat: Option<Duration>,
) -> Result<SubscribeRequest, PathError> {
    let heartbeat_interval = heartbeat.map_or(0, |h| u64::try_from(h.as_nanos()).unwrap_or(u64::MAX));
    let subscription = paths
        .iter()
        .map(|p| {
            Ok(Subscription {
                path: Some(path::parse(p)?),
                mode: SubscriptionMode::OnChange as i32,
                heartbeat_interval: if heartbeat_on.contains(p) { heartbeat_interval } else { 0 },
                ..Default::default()
            })
        })
        .collect::<Result<Vec<_>, PathError>>()?;
    Ok(SubscribeRequest {
        request: Some(subscribe_request::Request::Subscribe(SubscriptionList {
            subscription,
            mode: subscription_list::Mode::Stream as i32,
            encoding: Encoding::JsonIetf as i32,
            ..Default::default()
        })),
    })
}

/// `request` asking for `encoding` (the one chosen from the target's Capabilities).
pub(super) fn with_encoding(mut request: SubscribeRequest, encoding: WireEncoding) -> SubscribeRequest {
    if let Some(subscribe_request::Request::Subscribe(list)) = &mut request.request {
        list.encoding = capabilities::wire(encoding) as i32;
    }
    request
}

/// A notification in canonical form, plus what had to be skipped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decoded {
    pub updates: Vec<(String, Scalar)>,
    pub deletes: Vec<String>,
    /// One entry per update or delete that was skipped; the rest of the notification stands.
    pub skipped: Vec<String>,
}

/// Joins prefix and paths, decodes values; a bad update or delete is skipped, not the
/// whole notification.
pub fn decode_notification(n: &Notification) -> Decoded {
    let mut out = Decoded::default();
    for u in &n.update {
        let decoded = path::join_to_string(n.prefix.as_ref(), u.path.as_ref())
            .map_err(|e: PathError| e.to_string())
            .and_then(|p| match (&u.val, &u.value) {
                // Pre-0.3 peers: the deprecated `value` with a JSON encoding.
                (None, Some(old)) if old.r#type == Encoding::Json as i32 || old.r#type == Encoding::JsonIetf as i32 => {
                    value::decode_json(&p, &old.value).map_err(|e: ValueError| e.to_string())
                }
                (val, _) => value::decode(&p, val.as_ref()).map_err(|e| e.to_string()),
            });
        match decoded {
            Ok(leaves) => out.updates.extend(leaves),
            Err(e) => out.skipped.push(e),
        }
    }
    for d in &n.delete {
        match path::join_to_string(n.prefix.as_ref(), Some(d)) {
            Ok(p) => out.deletes.push(p),
            Err(e) => out.skipped.push(format!("delete: {e}")),
        }
    }
    out
}

/// The last notification a session took whole, so that a heartbeat re-sending it is known
/// from its bytes, before any decoding (protobuf into messages, paths joined and formatted,
/// values parsed, two hash lookups per update): at 10,000 targets heartbeats are the idle
/// load. Kept as the notification's fields as received, its timestamp left out (~100
/// bytes): equal bytes are an equal message. An equal message encoded differently (a path
/// key map iterated in another order, fields in another order) is merely decoded again.
#[derive(Debug, Default)]
pub(super) struct LastTaken {
    kept: Option<Vec<u8>>,
    /// The message being looked at, as it would be kept.
    scratch: Vec<u8>,
}

impl LastTaken {
    /// `raw` (an encoded SubscribeResponse) is a notification that says again what the last
    /// one taken said, its timestamp aside. Its values are already in the session's `seen`:
    /// nothing to pass on.
    pub(super) fn repeats(&mut self, raw: &[u8]) -> bool {
        self.scratch.clear();
        if !notification_sans_timestamp(raw, &mut self.scratch) {
            self.scratch.clear();
            return false;
        }
        self.kept.as_ref().is_some_and(|k| *k == self.scratch)
    }

    /// After the notification last given to `repeats` was handled: kept only when every
    /// update of it was taken and it deleted nothing; a skipped or unsubscribed update must
    /// be seen (and warned about) again.
    pub(super) fn handled(&mut self, taken_whole: bool) {
        if taken_whole && !self.scratch.is_empty() {
            let kept = self.kept.get_or_insert_with(Vec::new);
            std::mem::swap(kept, &mut self.scratch);
        } else {
            self.kept = None;
        }
    }
}

/// Protobuf field numbers (gnmi.proto): SubscribeResponse.update, Notification.timestamp
/// and Notification.delete.
const RESPONSE_UPDATE: u64 = 1;
const NOTIFICATION_TIMESTAMP: u64 = 1;
const NOTIFICATION_DELETE: u64 = 5;

/// Appends to `out` the fields of the notification that `raw`, an encoded SubscribeResponse,
/// carries, as they are on the wire but for the timestamp. False when `raw` is anything
/// else (a sync_response, an error, extensions), deletes something, or does not parse: that
/// is for the full decoding to judge.
fn notification_sans_timestamp(raw: &[u8], out: &mut Vec<u8>) -> bool {
    let mut response = Wire(raw);
    let Some((RESPONSE_UPDATE, WireValue::Bytes(notification))) = response.field() else { return false };
    if !response.0.is_empty() {
        return false;
    }
    let mut fields = Wire(notification);
    while !fields.0.is_empty() {
        let before = fields.0;
        match fields.field() {
            None | Some((NOTIFICATION_DELETE, _)) => return false,
            Some((NOTIFICATION_TIMESTAMP, WireValue::Varint)) => {}
            Some(_) => out.extend_from_slice(&before[..before.len() - fields.0.len()]),
        }
    }
    true
}

/// The rest of an encoded message, read one field at a time.
struct Wire<'a>(&'a [u8]);

enum WireValue<'a> {
    Varint,
    Bytes(&'a [u8]),
    Fixed,
}

impl<'a> Wire<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for (i, b) in self.0.iter().take(10).enumerate() {
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                self.0 = &self.0[i + 1..];
                return Some(value);
            }
        }
        None
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (taken, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(taken)
    }

    /// The next field's number and value; `None` at a malformed field or a group.
    fn field(&mut self) -> Option<(u64, WireValue<'a>)> {
        let key = self.varint()?;
        let value = match key & 7 {
            0 => self.varint().map(|_| WireValue::Varint)?,
            1 => self.take(8).map(|_| WireValue::Fixed)?,
            2 => {
                let len = usize::try_from(self.varint()?).ok()?;
                WireValue::Bytes(self.take(len)?)
            }
            5 => self.take(4).map(|_| WireValue::Fixed)?,
            _ => return None,
        };
        Some((key >> 3, value))
    }
}

/// `path` is a subscribed path or lies below one (a container or a whole list subscribed).
pub(super) fn is_subscribed(subscribed: &HashSet<String>, path: &str) -> bool {
    subscribed.contains(path)
        || subscribed.iter().any(|s| {
            path.strip_prefix(s.trim_end_matches('/'))
                .is_some_and(|rest| rest.starts_with('/') || rest.starts_with('['))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gnmi_proto::{Path, TypedValue, Update, typed_value::Value};

    fn p(s: &str) -> Path {
        crate::gnmi::path::parse(s).unwrap()
    }

    fn json(s: &str) -> Option<TypedValue> {
        Some(TypedValue { value: Some(Value::JsonIetfVal(s.as_bytes().to_vec())) })
    }

    #[test]
    fn notification_with_prefix_updates_deletes_and_a_bad_value() {
        let n = Notification {
            timestamp: 7,
            prefix: Some(p("/srl_nokia-network-instance:network-instance[name=default]/protocols/bgp")),
            update: vec![
                Update {
                    path: Some(p("/neighbor[peer-address=10.0.1.1]/session-state")),
                    val: json(r#""established""#),
                    ..Default::default()
                },
                Update {
                    path: Some(p("/neighbor[peer-address=10.0.1.2]/session-state")),
                    val: json("{broken"),
                    ..Default::default()
                },
                Update {
                    path: Some(p("/neighbor[peer-address=10.0.1.1]/afi-safi[afi-safi-name=evpn]/received-routes")),
                    val: json("12"),
                    ..Default::default()
                },
            ],
            delete: vec![p("/neighbor[peer-address=10.0.1.3]")],
            ..Default::default()
        };
        let d = decode_notification(&n);
        let base = "/network-instance[name=default]/protocols/bgp";
        assert_eq!(
            d.updates,
            vec![
                (format!("{base}/neighbor[peer-address=10.0.1.1]/session-state"), Scalar::Str("established".into())),
                (
                    format!("{base}/neighbor[peer-address=10.0.1.1]/afi-safi[afi-safi-name=evpn]/received-routes"),
                    Scalar::Uint(12)
                ),
            ]
        );
        assert_eq!(d.deletes, vec![format!("{base}/neighbor[peer-address=10.0.1.3]")]);
        assert_eq!(d.skipped.len(), 1);
        assert!(d.skipped[0].contains("neighbor[peer-address=10.0.1.2]/session-state"), "{}", d.skipped[0]);
    }

    #[test]
    fn updates_count_only_at_or_below_a_subscribed_path() {
        let subscribed: HashSet<String> =
            ["/interface[name=ethernet-1/49]/oper-state", "/network-instance[name=default]/protocols/bgp/neighbor"]
                .into_iter()
                .map(String::from)
                .collect();
        assert!(is_subscribed(&subscribed, "/interface[name=ethernet-1/49]/oper-state"));
        assert!(is_subscribed(
            &subscribed,
            "/network-instance[name=default]/protocols/bgp/neighbor[peer-address=10.0.1.1]/session-state"
        ));
        assert!(!is_subscribed(&subscribed, "/interface[name=ethernet-1/49]/oper-state-extra"));
        assert!(!is_subscribed(&subscribed, "/interface[name=ethernet-1/49]/fabric-sim-unknown/leaf"));
        assert!(!is_subscribed(&subscribed, "/interface[name=ethernet-1/50]/oper-state"));
    }

    #[test]
    fn subscribe_request_is_stream_on_change_json_ietf() {
        let paths = [crate::srl_paths::oper_state("ethernet-1/49")];
        let req = subscribe_request(&paths, &paths.iter().cloned().collect(), None).unwrap();
        let Some(subscribe_request::Request::Subscribe(list)) = req.request else { panic!("not a subscription list") };
        assert_eq!(list.mode, subscription_list::Mode::Stream as i32);
        assert_eq!(list.encoding, Encoding::JsonIetf as i32);
        assert_eq!(list.subscription.len(), 1);
        assert_eq!(list.subscription[0].mode, SubscriptionMode::OnChange as i32);
        let path = list.subscription[0].path.as_ref().unwrap();
        assert_eq!(path::to_string(path).unwrap(), "/interface[name=ethernet-1/49]/oper-state");
        assert_eq!(list.subscription[0].heartbeat_interval, 0, "no liveness, no heartbeat asked for");
        assert!(subscribe_request(&["no-slash".to_string()], &HashSet::new(), None).is_err());
    }

    #[test]
    fn liveness_asks_for_a_heartbeat_on_the_chosen_subscriptions_only() {
        let paths = [crate::srl_paths::oper_state("ethernet-1/49"), crate::srl_paths::admin_state("ethernet-1/1")];
        let on = HashSet::from([paths[0].clone()]);
        let req = subscribe_request(&paths, &on, Some(heartbeat_for(Duration::from_secs(9)))).unwrap();
        let Some(subscribe_request::Request::Subscribe(list)) = req.request else { panic!("not a subscription list") };
        assert!(list.subscription.iter().all(|s| s.mode == SubscriptionMode::OnChange as i32));
        let intervals: Vec<u64> = list.subscription.iter().map(|s| s.heartbeat_interval).collect();
        assert_eq!(intervals, [3_000_000_000, 0]);
    }

    fn oper_state(ts: i64, state: &str) -> Notification {
        Notification {
            timestamp: ts,
            prefix: Some(p("/interface[name=ethernet-1/49]")),
            update: vec![Update {
                path: Some(p("/oper-state")),
                val: json(&format!("\"{state}\"")),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    /// `n` as the SubscribeResponse bytes a target sends.
    fn wire(n: &Notification) -> Vec<u8> {
        let response = gnmi_proto::SubscribeResponse {
            response: Some(gnmi_proto::subscribe_response::Response::Update(n.clone())),
        };
        prost::Message::encode_to_vec(&response)
    }

    #[test]
    fn a_heartbeat_re_send_of_the_last_notification_taken_is_known_as_a_repeat() {
        let mut last = LastTaken::default();
        assert!(!last.repeats(&wire(&oper_state(1, "up"))), "nothing taken yet");
        last.handled(true);
        assert!(last.repeats(&wire(&oper_state(2, "up"))), "same content, later timestamp");
        last.handled(true);
        assert!(last.repeats(&wire(&oper_state(300_000_000_000, "up"))), "a timestamp of another length");
        last.handled(true);
        assert!(!last.repeats(&wire(&oper_state(4, "down"))), "a changed value is news");
        let mut other_path = oper_state(5, "up");
        other_path.prefix = Some(p("/interface[name=ethernet-1/50]"));
        assert!(!last.repeats(&wire(&other_path)));
    }

    #[test]
    fn a_notification_not_taken_whole_is_never_a_repeat() {
        let mut last = LastTaken::default();
        assert!(!last.repeats(&wire(&oper_state(1, "up"))));
        last.handled(false);
        assert!(!last.repeats(&wire(&oper_state(2, "up"))), "its skipped updates must be seen again");
        let mut with_delete = oper_state(3, "up");
        with_delete.delete = vec![p("/description")];
        assert!(!last.repeats(&wire(&with_delete)));
        last.handled(true);
        assert!(!last.repeats(&wire(&with_delete)), "a delete is always handled");
        last.handled(true);
        assert!(!last.repeats(&wire(&oper_state(4, "up"))));
        last.handled(true);
        assert!(!last.repeats(&wire(&oper_state(5, "down"))));
        last.handled(false);
        assert!(!last.repeats(&wire(&oper_state(6, "up"))), "the last notification replaces the one before");
    }

    #[test]
    fn only_a_lone_notification_that_parses_is_compared() {
        let mut last = LastTaken::default();
        let heartbeat = wire(&oper_state(1, "up"));
        assert!(!last.repeats(&heartbeat));
        last.handled(true);
        // The same notification with a sync_response beside it, truncated, or followed by a
        // group (wire type 3): decoded in full, never taken for a repeat.
        let mut with_sync = heartbeat.clone();
        with_sync.extend_from_slice(&[3 << 3, 1]);
        assert!(!last.repeats(&with_sync));
        assert!(!last.repeats(&heartbeat[..heartbeat.len() - 1]));
        let mut with_group = heartbeat.clone();
        with_group.push((9 << 3) | 3);
        assert!(!last.repeats(&with_group));
        let sync = prost::Message::encode_to_vec(&gnmi_proto::SubscribeResponse {
            response: Some(gnmi_proto::subscribe_response::Response::SyncResponse(true)),
        });
        assert!(!last.repeats(&sync));
        assert!(last.repeats(&heartbeat), "what was kept is still kept");
    }

    #[test]
    fn fields_after_the_timestamp_or_before_it_are_compared_alike() {
        // A device may put the timestamp last: the fields compared are the same.
        let n = oper_state(7, "up");
        let mut sans = n.clone();
        sans.timestamp = 0;
        let mut body = prost::Message::encode_to_vec(&sans);
        body.extend_from_slice(&[NOTIFICATION_TIMESTAMP as u8 * 8, 42]);
        let mut reordered = vec![((RESPONSE_UPDATE as u8) << 3) | 2, body.len() as u8];
        reordered.extend_from_slice(&body);
        let mut last = LastTaken::default();
        assert!(!last.repeats(&wire(&n)));
        last.handled(true);
        assert!(last.repeats(&reordered));
    }
}
