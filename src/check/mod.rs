//! `opergroupd check`: the config's resolved plan rendered for people (targets, groups,
//! the exact paths subscribed and set); with `--online`, what the targets say (`online`).

pub mod online;

use std::fmt::Write as _;

use crate::config::{Config, Tls, duration};
use crate::plan::{set_paths, subscriptions};

/// `check`'s output: targets, groups and the exact paths, for people.
pub fn render(config: &Config) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "targets:");
    for t in config.targets.values() {
        let tls = match &t.tls {
            Tls::Verify { ca_file: Some(ca), .. } => format!("tls verify with {}", ca.display()),
            Tls::Verify { ca_file: None, .. } => "tls verify with system roots".to_string(),
            Tls::SkipVerify { .. } => "tls skip-verify".to_string(),
            Tls::Insecure => "insecure (plaintext)".to_string(),
        };
        let client = match &t.tls {
            Tls::Verify { client: Some(c), .. } | Tls::SkipVerify { client: Some(c), .. } => {
                format!(", client cert {}", c.cert_file.display())
            }
            _ => String::new(),
        };
        let server_name = match &t.tls {
            Tls::Verify { server_name: Some(n), .. } | Tls::SkipVerify { server_name: Some(n), .. } => {
                format!(", server-name {n}")
            }
            _ => String::new(),
        };
        let user = t.username.as_deref().unwrap_or("(none)");
        let password = if t.password.is_some() { "set" } else { "none" };
        let _ =
            writeln!(out, "  {}: {} {tls}{client}{server_name}, user {user}, password {password}", t.name, t.address);
        let _ = match t.liveness {
            Some(l) => writeln!(
                out,
                "    liveness {} (heartbeat_interval {} on one uplink's oper-state), reconnect-max {}",
                duration::format(l),
                duration::format(crate::gnmi::subscription::heartbeat_for(l)),
                duration::format(t.reconnect_max)
            ),
            None => writeln!(out, "    liveness off, reconnect-max {}", duration::format(t.reconnect_max)),
        };
        if let Some(g) = config.groups.values().find(|g| g.target == t.name) {
            let _ = writeln!(out, "    profile: {}", g.profile.name);
        }
        let subs = subscriptions(config, &t.name);
        if subs.paths.is_empty() {
            let _ = writeln!(out, "    subscribe: nothing (no group uses this target)");
        } else {
            let _ = writeln!(out, "    subscribe ({} paths, STREAM ON_CHANGE):", subs.paths.len());
            for p in &subs.paths {
                // The source asks on the first uplink the device has; the others stand by.
                let mark = match subs.heartbeat.iter().position(|h| h == p) {
                    _ if t.liveness.is_none() => "",
                    Some(0) => "  (heartbeat)",
                    Some(_) => "  (heartbeat if the ones above are missing)",
                    None => "",
                };
                let _ = writeln!(out, "      {p}{mark}");
            }
        }
    }
    let _ = writeln!(out, "groups:");
    for g in config.groups.values() {
        let mode = if g.enforce { "enforce" } else { "observe only (admin-state disable, never Set)" };
        let _ = writeln!(out, "  {}: target {}, {mode}", g.name, g.target);
        let _ = writeln!(out, "    uplinks: {} (required-up {})", g.uplinks.join(", "), g.required_up);
        let _ = writeln!(out, "    downlinks: {}", g.downlinks.join(", "));
        let _ = writeln!(
            out,
            "    down-delay: {}, up-delay: {}",
            duration::format(g.down_delay),
            duration::format(g.up_delay)
        );
        match &g.readiness {
            None => {
                let _ = writeln!(out, "    readiness: none (re-enable as soon as healthy for up-delay)");
            }
            Some(r) => {
                let floor =
                    r.evpn_min_received_routes.map_or(String::new(), |n| format!(", evpn received-routes >= {n}"));
                let when = match r.when_not_ready {
                    crate::config::WhenNotReady::Hold => "when-not-ready hold".to_string(),
                    crate::config::WhenNotReady::Disable => {
                        format!("when-not-ready disable after {}", duration::format(r.not_ready_delay))
                    }
                };
                let _ = writeln!(
                    out,
                    "    readiness: network-instance {}, {} of {} established{floor}, {when}",
                    r.network_instance,
                    r.min_established,
                    r.bgp_neighbors.join(", ")
                );
            }
        }
        let _ = writeln!(out, "    sets:");
        let text = |s| match g.profile.admin_json(s) {
            serde_json::Value::String(s) => s,
            v => v.to_string(),
        };
        let (off, on) = (text(crate::model::AdminState::Disable), text(crate::model::AdminState::Enable));
        for p in set_paths(g) {
            let _ = writeln!(out, "      {p} = {off} | {on}");
        }
    }
    if !config.segments.is_empty() {
        let _ = writeln!(out, "segments (a member is disabled only while another can forward):");
        for (name, members) in &config.segments {
            let _ = writeln!(out, "  {name}: {}", members.join(", "));
        }
    }
    if let Some(cap) = config.max_disabled {
        let enforcing = config.groups.values().filter(|g| g.enforce).count();
        let _ = writeln!(
            out,
            "safety: max-disabled {cap} = at most {} of {enforcing} enforcing groups disabled at once",
            cap.limit(enforcing)
        );
    }
    if let Some(http) = config.http {
        let _ = writeln!(out, "http: {http}");
    }
    if let Some(path) = &config.override_file {
        let _ = writeln!(out, "override-file: {}", path.display());
    }
    if let Some(le) = &config.leader_election {
        let _ = writeln!(
            out,
            "leader-election: lease {}/{}, lease-duration {}, renew-period {}",
            le.namespace,
            le.lease,
            duration::format(le.lease_duration),
            duration::format(le.renew_period)
        );
    }
    if !config.services.is_empty() {
        let names: Vec<&str> = config.services.keys().map(String::as_str).collect();
        let _ = writeln!(out, "services: {}", names.join(", "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;
    // The plan's test config: two groups on leaf1, one with readiness, one observe-only.
    use crate::plan::tests::CFG;

    #[test]
    fn render_shows_segments_and_the_cap() {
        let b2 = "  b2:\n    target: leaf2\n    uplinks: [ethernet-1/49]\n    downlinks: [ethernet-1/1]\n";
        let text = format!("{CFG}{b2}segments:\n  es1: [a, b2]\nsafety:\n  max-disabled: 50%\n");
        let rendered = render(&parse(&text, "t").unwrap());
        assert!(rendered.contains("  es1: a, b2"), "{rendered}");
        assert!(rendered.contains("safety: max-disabled 50% = at most"), "{rendered}");
    }

    #[test]
    fn render_shows_the_plan_but_never_the_password() {
        let c = parse(CFG, "t").unwrap();
        let text = render(&c);
        assert!(!text.contains("s3cret-value"), "{text}");
        for needle in [
            "leaf1: 127.0.0.1:57401 insecure (plaintext), user admin, password set",
            "subscribe (8 paths, STREAM ON_CHANGE):",
            "uplinks: ethernet-1/49, ethernet-1/50 (required-up 1)",
            "b: target leaf1, observe only",
            "readiness: network-instance ni1, 1 of 10.0.1.1 established, when-not-ready hold",
            "liveness 10s (heartbeat_interval 3s333ms on one uplink's oper-state), reconnect-max 2s",
            "      /interface[name=ethernet-1/49]/oper-state  (heartbeat)\n",
            "      /interface[name=ethernet-1/1]/oper-state\n",
            "/interface[name=ethernet-1/1]/admin-state = disable | enable",
            "leaf2: 127.0.0.1:57402",
            "subscribe: nothing",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
    }

    #[test]
    fn profiles_come_from_the_target_or_defaults_and_check_shows_their_paths() {
        let yaml = r#"
defaults: { profile: openconfig, tls: { insecure: true } }
targets:
  eos1: { address: "127.0.0.1:6030" }
  srl1: { address: "127.0.0.1:57401", profile: srl }
groups:
  eos-es1:
    target: eos1
    uplinks: ["Ethernet{49..50}/1"]
    downlinks: ["Ethernet1"]
    readiness: { bgp-neighbors: [10.0.1.1], protocol-name: EVPN-OVERLAY }
  srl-es1: { target: srl1, uplinks: ["ethernet-1/49"], downlinks: ["ethernet-1/1"] }
"#;
        let c = parse(yaml, "t").unwrap();
        assert_eq!(c.groups["eos-es1"].profile.name, "openconfig");
        assert_eq!(c.groups["srl-es1"].profile.name, "srl");
        let text = render(&c);
        for needle in [
            "profile: openconfig",
            "profile: srl",
            "/interfaces/interface[name=Ethernet49/1]/state/oper-status",
            "/interfaces/interface[name=Ethernet1]/state/enabled",
            "/network-instances/network-instance[name=default]/protocols/protocol[identifier=BGP][name=EVPN-OVERLAY]/bgp/neighbors/neighbor[neighbor-address=10.0.1.1]/state/session-state",
            "/interfaces/interface[name=Ethernet1]/config/enabled = false | true",
            "/interface[name=ethernet-1/1]/admin-state = disable | enable",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        let bad = parse(&yaml.replace("profile: srl", "profile: junos"), "t").unwrap_err().to_string();
        assert!(bad.contains("unknown profile \"junos\"") && bad.contains("srl, openconfig"), "{bad}");
        assert!(bad.contains("targets.srl1.profile"), "{bad}");
    }
}
