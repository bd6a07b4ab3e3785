//! The leaf's state as canonical gNMI paths -> JSON values, and a feed of its changes.
//!
//! Writers (netlink thread, FRR poller) replace whole sources at once; only what differs
//! goes out to subscribers, in one batch per write, so ON_CHANGE means "changed".

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::broadcast;

/// One write's differences: `(path, Some(new value))` or `(path, None)` for a delete.
pub type Batch = Arc<Vec<(String, Option<Value>)>>;

pub struct Store {
    inner: Mutex<Inner>,
    feed: broadcast::Sender<Batch>,
}

#[derive(Default)]
struct Inner {
    values: BTreeMap<String, Value>,
    /// Which paths each writer owns, so a writer's "replace all" deletes what it dropped.
    owned: BTreeMap<&'static str, Vec<String>>,
}

impl Store {
    pub fn new() -> Arc<Store> {
        Arc::new(Store { inner: Mutex::new(Inner::default()), feed: broadcast::channel(4096).0 })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets or deletes single paths (owner-less: link events).
    pub fn apply(&self, changes: Vec<(String, Option<Value>)>) {
        let mut st = self.lock();
        let mut batch = Vec::new();
        for (path, value) in changes {
            let old = match &value {
                Some(v) => st.values.insert(path.clone(), v.clone()),
                None => st.values.remove(&path),
            };
            if old != value {
                batch.push((path, value));
            }
        }
        self.publish(batch);
    }

    /// Replaces everything `owner` wrote before with `values`.
    pub fn replace_owned(&self, owner: &'static str, values: BTreeMap<String, Value>) {
        let mut st = self.lock();
        let before = st.owned.insert(owner, values.keys().cloned().collect()).unwrap_or_default();
        let mut batch: Vec<(String, Option<Value>)> = before
            .into_iter()
            .filter(|p| !values.contains_key(p))
            .filter_map(|p| st.values.remove(&p).map(|_| (p, None)))
            .collect();
        for (path, v) in values {
            if st.values.get(&path) != Some(&v) {
                st.values.insert(path.clone(), v.clone());
                batch.push((path, Some(v)));
            }
        }
        self.publish(batch);
    }

    // Called with the lock held, so a subscriber's snapshot and its feed never overlap or gap.
    fn publish(&self, batch: Vec<(String, Option<Value>)>) {
        if !batch.is_empty() {
            let _ = self.feed.send(Arc::new(batch));
        }
    }

    /// Every value whose path `matches`, and the feed of changes from that moment on.
    pub fn snapshot_and_follow(
        &self,
        matches: impl Fn(&str) -> bool,
    ) -> (Vec<(String, Value)>, broadcast::Receiver<Batch>) {
        let st = self.lock();
        let snap = st.values.iter().filter(|(p, _)| matches(p)).map(|(p, v)| (p.clone(), v.clone())).collect();
        (snap, self.feed.subscribe())
    }

    pub fn get(&self, matches: impl Fn(&str) -> bool) -> Vec<(String, Value)> {
        self.snapshot_and_follow(matches).0
    }
}

/// Whether the state path `leaf` is `pattern` or below it (exact paths, no wildcards).
pub fn under(pattern: &str, leaf: &str) -> bool {
    pattern == "/" || leaf == pattern || leaf.strip_prefix(pattern).is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_differences_are_published_and_dropped_paths_are_deleted() {
        let s = Store::new();
        let (_, mut rx) = s.snapshot_and_follow(|_| true);
        let vals = |pairs: &[(&str, Value)]| pairs.iter().map(|(p, v)| (p.to_string(), v.clone())).collect();
        s.replace_owned("bgp", vals(&[("/a", json!(1)), ("/b", json!(2))]));
        assert_eq!(rx.try_recv().unwrap().len(), 2);
        s.replace_owned("bgp", vals(&[("/a", json!(1)), ("/b", json!(2))]));
        assert!(rx.try_recv().is_err(), "an unchanged write publishes nothing");
        s.replace_owned("bgp", vals(&[("/a", json!(3))]));
        let b = rx.try_recv().unwrap();
        assert_eq!(*b, vec![("/b".to_string(), None), ("/a".to_string(), Some(json!(3)))]);
    }

    #[test]
    fn under_matches_whole_elements_only() {
        assert!(under("/interface[name=e]", "/interface[name=e]/oper-state"));
        assert!(under("/interface[name=e]/oper-state", "/interface[name=e]/oper-state"));
        assert!(!under("/interface[name=e]/oper", "/interface[name=e]/oper-state"));
        assert!(under("/", "/x"));
    }
}
