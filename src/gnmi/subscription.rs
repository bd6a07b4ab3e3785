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
/// without decoding it (paths joined and formatted, values parsed, two hash lookups per
/// update): at 10,000 targets heartbeats are the idle load. Kept as its encoding without
/// the timestamp (~100 bytes; the decoded message was ~2.5 KiB per target): equal bytes
/// are an equal message. An equal message encoded differently (a path key map iterated in
/// another order) is merely decoded again.
#[derive(Debug, Default)]
pub(super) struct LastTaken {
    kept: Option<Vec<u8>>,
    /// The encoding of the notification being looked at.
    scratch: Vec<u8>,
}

impl LastTaken {
    /// `n` says again what the last notification taken said (its timestamp aside). Its
    /// values are already in the session's `seen`: nothing to pass on.
    pub(super) fn repeats(&mut self, n: &mut Notification) -> bool {
        self.scratch.clear();
        if !n.delete.is_empty() {
            return false;
        }
        let timestamp = std::mem::take(&mut n.timestamp);
        let encoded = prost::Message::encode(&*n, &mut self.scratch).is_ok();
        n.timestamp = timestamp;
        if !encoded {
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

    #[test]
    fn a_heartbeat_re_send_of_the_last_notification_taken_is_known_as_a_repeat() {
        let mut last = LastTaken::default();
        let mut first = oper_state(1, "up");
        assert!(!last.repeats(&mut first), "nothing taken yet");
        last.handled(true);
        assert_eq!(first, oper_state(1, "up"), "looking does not change the notification");
        assert!(last.repeats(&mut oper_state(2, "up")), "same content, later timestamp");
        last.handled(true);
        assert!(last.repeats(&mut oper_state(3, "up")));
        last.handled(true);
        assert!(!last.repeats(&mut oper_state(4, "down")), "a changed value is news");
        let mut other_path = oper_state(5, "up");
        other_path.prefix = Some(p("/interface[name=ethernet-1/50]"));
        assert!(!last.repeats(&mut other_path));
    }

    #[test]
    fn a_notification_not_taken_whole_is_never_a_repeat() {
        let mut last = LastTaken::default();
        assert!(!last.repeats(&mut oper_state(1, "up")));
        last.handled(false);
        assert!(!last.repeats(&mut oper_state(2, "up")), "its skipped updates must be seen again");
        let mut with_delete = oper_state(3, "up");
        with_delete.delete = vec![p("/description")];
        assert!(!last.repeats(&mut with_delete.clone()));
        last.handled(true);
        assert!(!last.repeats(&mut with_delete), "a delete is always handled");
        last.handled(true);
        assert!(!last.repeats(&mut oper_state(4, "up")));
        last.handled(true);
        assert!(!last.repeats(&mut oper_state(5, "down")));
        last.handled(false);
        assert!(!last.repeats(&mut oper_state(6, "up")), "the last notification replaces the one before");
    }
}
