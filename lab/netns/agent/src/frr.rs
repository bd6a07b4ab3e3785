//! BGP state from FRR: `vtysh -c 'show bgp neighbors json'`, polled.
//!
//! FRR 8.4 in Debian has no gRPC northbound and BMP reports routes rather than session
//! states, so the agent polls vtysh every `--bgp-poll` (250 ms by default). One poll is a
//! vtysh process and one JSON dump from bgpd: a few ms of CPU, about 1-2 % of a core per
//! leaf at the default period. A change is seen at most one period late.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use opergroupd::srl_paths;
use serde_json::{Value, json};

use crate::store::Store;

/// SR Linux's session-state words for FRR's `bgpState`.
fn session_state(frr: &str) -> Option<&'static str> {
    Some(match frr {
        "Idle" | "Clearing" | "Deleted" => "idle",
        "Connect" => "connect",
        "Active" => "active",
        "OpenSent" => "opensent",
        "OpenConfirm" => "openconfirm",
        "Established" => "established",
        _ => return None,
    })
}

/// The paths and values of `show bgp neighbors json` for network-instance `default`.
/// Neighbors named by interface (BGP unnumbered) are skipped: SR Linux keys neighbors by
/// address, and the lab's readiness lists the iBGP neighbors' loopbacks.
pub fn neighbor_values(neighbors: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let Some(map) = neighbors.as_object() else { return out };
    for (peer, n) in map {
        if peer.parse::<std::net::IpAddr>().is_err() {
            continue;
        }
        let Some(state) = n.get("bgpState").and_then(Value::as_str).and_then(session_state) else { continue };
        out.insert(srl_paths::session_state("default", peer), json!(state));
        let evpn = n.pointer("/addressFamilyInfo/l2VpnEvpn");
        if let Some(af) = evpn {
            let received = if state == "established" {
                af.get("acceptedPrefixCounter").and_then(Value::as_u64).unwrap_or(0)
            } else {
                0
            };
            out.insert(srl_paths::evpn_received_routes("default", peer), json!(received));
        }
    }
    out
}

async fn poll_once(vty_dir: &Option<PathBuf>) -> Result<Value, String> {
    let mut cmd = tokio::process::Command::new("vtysh");
    if let Some(d) = vty_dir {
        cmd.arg("--vty_socket").arg(d);
    }
    cmd.args(["-c", "show bgp neighbors json"]);
    let out = cmd.output().await.map_err(|e| format!("cannot run vtysh: {e}"))?;
    if !out.status.success() {
        return Err(format!("vtysh failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("vtysh printed no JSON: {e}"))
}

/// Polls forever. While bgpd does not answer (down, restarting), the neighbors are
/// reported gone (deleted), as on a device whose BGP process is not running.
pub async fn poll(store: Arc<Store>, vty_dir: Option<PathBuf>, period: Duration) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_error = None;
    loop {
        tick.tick().await;
        match poll_once(&vty_dir).await {
            Ok(v) => {
                last_error = None;
                store.replace_owned("bgp", neighbor_values(&v));
            }
            Err(e) => {
                if last_error.as_ref() != Some(&e) {
                    tracing::warn!(error = %e, "BGP state unavailable");
                }
                last_error = Some(e);
                store.replace_owned("bgp", BTreeMap::new());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_frr_neighbors_to_srl_paths() {
        let v = json!({
            "10.0.1.1": {"bgpState": "Established", "addressFamilyInfo": {"l2VpnEvpn": {"acceptedPrefixCounter": 4}}},
            "10.0.1.2": {"bgpState": "Active", "addressFamilyInfo": {"l2VpnEvpn": {"acceptedPrefixCounter": 4}}},
            "e1-49": {"bgpState": "Established"},
        });
        let got = neighbor_values(&v);
        let ni = "/network-instance[name=default]/protocols/bgp/neighbor";
        let want: BTreeMap<String, Value> = [
            (format!("{ni}[peer-address=10.0.1.1]/session-state"), json!("established")),
            (format!("{ni}[peer-address=10.0.1.1]/afi-safi[afi-safi-name=evpn]/received-routes"), json!(4)),
            (format!("{ni}[peer-address=10.0.1.2]/session-state"), json!("active")),
            (format!("{ni}[peer-address=10.0.1.2]/afi-safi[afi-safi-name=evpn]/received-routes"), json!(0)),
        ]
        .into_iter()
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn unknown_states_and_non_objects_give_nothing() {
        assert!(neighbor_values(&json!([])).is_empty());
        assert!(neighbor_values(&json!({"10.0.1.1": {"bgpState": "Weird"}})).is_empty());
    }
}
