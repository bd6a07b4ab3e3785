//! Link events -> interface paths in the store.

use std::sync::Arc;
use std::time::Duration;

use opergroupd::srl_paths;
use serde_json::json;

use crate::names;
use crate::netlink::{self, LinkEvent};
use crate::store::Store;

fn changes(ev: LinkEvent) -> Vec<(String, Option<serde_json::Value>)> {
    let (name, link) = match ev {
        LinkEvent::Changed(l) => (l.name.clone(), Some(l)),
        LinkEvent::Removed(n) => (n, None),
    };
    let Some(srl) = names::to_srl(&name) else { return Vec::new() };
    let word = |up: bool, yes: &str, no: &str| json!(if up { yes } else { no });
    vec![
        (srl_paths::oper_state(&srl), link.as_ref().map(|l| word(l.oper_up, "up", "down"))),
        (srl_paths::admin_state(&srl), link.as_ref().map(|l| word(l.admin_up, "enable", "disable"))),
    ]
}

/// Follows link events on a thread of its own, forever; restarts with a fresh dump if the
/// kernel drops events (ENOBUFS) or the socket fails.
pub fn spawn_watcher(store: Arc<Store>) {
    std::thread::Builder::new()
        .name("netlink".into())
        .spawn(move || {
            loop {
                let err = netlink::watch_links(|ev| store.apply(changes(ev)));
                tracing::warn!(error = %err, "netlink link watch restarts");
                std::thread::sleep(Duration::from_millis(100));
            }
        })
        .expect("spawn the netlink thread");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::Link;

    #[test]
    fn a_link_event_sets_both_states_and_a_removal_deletes_them() {
        let up = changes(LinkEvent::Changed(Link { name: "e1-49".into(), admin_up: true, oper_up: false }));
        assert_eq!(
            up,
            vec![
                ("/interface[name=ethernet-1/49]/oper-state".into(), Some(json!("down"))),
                ("/interface[name=ethernet-1/49]/admin-state".into(), Some(json!("enable"))),
            ]
        );
        let gone = changes(LinkEvent::Removed("e1-49".into()));
        assert!(gone.iter().all(|(_, v)| v.is_none()));
        assert!(changes(LinkEvent::Removed("mgmt0".into())).is_empty());
    }
}
