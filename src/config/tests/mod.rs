//! Config loading: good input resolves as documented, bad input names file, line, column
//! and key, secrets never leak.

use super::*;

mod groups;
mod targets;

const GOOD: &str = r#"
defaults:
  port: 57400
  username: admin
  password: NokiaSrl1!
  tls:
    skip-verify: true
targets:
  leaf1: { address: "leaf1:57411" }
  leaf2: { address: "10.0.0.2" }
  leaf3: { address: "::1", tls: { insecure: true }, password: other-secret }
groups:
  leaf1-es1:
    target: leaf1
    uplinks: ["ethernet-1/{49..50}"]
    downlinks: ["ethernet-1/1"]
    readiness:
      bgp-neighbors: ["10.0.1.1", "10.0.1.2"]
      evpn-min-received-routes: 1
    down-delay: 250ms
    up-delay: 1m30s
  leaf2-es1:
    target: leaf2
    uplinks: [ethernet-1/49, ethernet-1/50]
    required-up: 2
    downlinks: ["ethernet-1/{1,3}"]
    admin-state: disable
"#;

fn err(text: &str) -> ConfigError {
    match parse(text, "test.yaml") {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e,
    }
}

/// `GOOD` with one line replaced (must exist) — keeps the cases short and positions known.
fn edit(from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "{from}");
    GOOD.replacen(from, to, 1)
}

/// 1-based line of the first line containing `needle` in `text`.
fn line_of(text: &str, needle: &str) -> u64 {
    text.lines().position(|l| l.contains(needle)).expect(needle) as u64 + 1
}

#[test]
fn good_config_resolves_with_defaults() {
    let c = parse(GOOD, "test.yaml").unwrap();
    let t1 = &c.targets["leaf1"];
    assert_eq!(t1.address, "leaf1:57411");
    assert_eq!(t1.username.as_deref(), Some("admin"));
    assert_eq!(t1.password.as_ref().map(Secret::expose), Some("NokiaSrl1!"));
    assert_eq!(t1.tls, Tls::SkipVerify { client: None, server_name: None });
    assert_eq!(c.targets["leaf2"].address, "10.0.0.2:57400");
    let t3 = &c.targets["leaf3"];
    assert_eq!(t3.address, "[::1]:57400");
    assert_eq!(t3.tls, Tls::Insecure);
    assert_eq!(t3.password.as_ref().map(Secret::expose), Some("other-secret"));

    let g = &c.groups["leaf1-es1"];
    assert_eq!(g.uplinks, ["ethernet-1/49", "ethernet-1/50"]);
    assert_eq!(g.required_up, 1);
    assert_eq!(g.down_delay, Duration::from_millis(250));
    assert_eq!(g.up_delay, Duration::from_secs(90));
    assert!(g.enforce);
    let r = g.readiness.as_ref().unwrap();
    assert_eq!(r.network_instance, "default");
    assert_eq!(r.min_established, 2);
    assert_eq!(r.evpn_min_received_routes, Some(1));

    let g2 = &c.groups["leaf2-es1"];
    assert_eq!(g2.downlinks, ["ethernet-1/1", "ethernet-1/3"]);
    assert_eq!(g2.required_up, 2);
    assert!(!g2.enforce);
    assert_eq!(g2.down_delay, Duration::ZERO);
    assert!(c.http.is_none() && c.leader_election.is_none() && c.services.is_empty());
}

#[test]
fn unknown_key_names_file_line_column_and_key() {
    let text = edit("    down-delay: 250ms", "    down-delay: 250ms\n    downdelay: 1s");
    let e = err(&text);
    assert_eq!(e.origin, "test.yaml");
    assert_eq!(e.key, "groups.leaf1-es1.downdelay");
    assert_eq!(e.position, Some((line_of(&text, "downdelay:"), 5)));
    assert!(e.message.contains("unknown field"), "{e}");
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!("test.yaml:{}:5: groups.leaf1-es1.downdelay: ", line_of(&text, "downdelay:"))),
        "{shown}"
    );
}

#[test]
fn unknown_top_level_key_is_an_error() {
    let e = err(&format!("{GOOD}\nbogus: 1\n"));
    assert_eq!(e.key, "bogus");
    assert!(e.position.is_some());
}

#[test]
fn bad_duration_is_located() {
    let text = edit("up-delay: 1m30s", "up-delay: 90");
    let e = err(&text);
    assert_eq!(e.key, "groups.leaf1-es1.up-delay");
    assert_eq!(e.position.map(|p| p.0), Some(line_of(&text, "up-delay: 90")));
    assert!(e.message.contains("missing unit"), "{e}");
}

#[test]
fn bad_range_is_located() {
    let text = edit(r#"uplinks: ["ethernet-1/{49..50}"]"#, r#"uplinks: ["ethernet-1/{50..49}"]"#);
    let e = err(&text);
    assert_eq!(e.key, "groups.leaf1-es1.uplinks[0]");
    assert_eq!(e.position.map(|p| p.0), Some(line_of(&text, "50..49")));
    assert!(e.message.contains("reversed"), "{e}");
}

#[test]
fn duplicate_names_are_rejected() {
    let text = edit("  leaf2-es1:\n", "  leaf1-es1:\n");
    let e = err(&text);
    assert!(e.message.contains("duplicate"), "{e}");
    assert_eq!(
        e.position.map(|p| p.0),
        Some(
            line_of(&text, "  leaf1-es1:") + {
                // the second occurrence
                let first = line_of(&text, "  leaf1-es1:");
                text.lines().skip(first as usize).position(|l| l.contains("  leaf1-es1:")).unwrap() as u64 + 1
            }
        )
    );
}

#[test]
fn bad_values_are_located() {
    for (from, to, key) in [
        ("admin-state: disable", "admin-state: off", "groups.leaf2-es1.admin-state"),
        ("port: 57400", "port: 70000", "defaults.port"),
        ("\"10.0.0.2\"", "\"10.0.0.2:x\"", "targets.leaf2.address"),
        ("\"10.0.1.1\",", "\"10.0.1.x\",", "groups.leaf1-es1.readiness.bgp-neighbors[0]"),
        ("required-up: 2", "required-up: two", "groups.leaf2-es1.required-up"),
    ] {
        let text = edit(from, to);
        let e = err(&text);
        assert_eq!(e.key, key, "{to}: {e}");
        assert_eq!(e.position.map(|p| p.0), Some(line_of(&text, to)), "{to}: {e}");
    }
}

#[test]
fn missing_required_keys_are_named() {
    let e = err("targets: {a: {address: a}}\ngroups: {g: {target: a, uplinks: [u]}}\n");
    assert_eq!(e.key, "groups.g");
    assert!(e.message.contains("downlinks"), "{e}");
    let e = err("targets: {a: {address: a}}\n");
    assert_eq!(e.key, "groups");
    let e = err("");
    assert!(!e.message.is_empty());
}

#[test]
fn top_level_options_resolve() {
    let text = format!(
        "{GOOD}http: \"127.0.0.1:9610\"\noverride-file: /run/opergroupd/override\nleader-election: {{ lease: opergroupd, namespace: fabric }}\n"
    );
    let c = parse(&text, "t").unwrap();
    assert_eq!(c.http, Some("127.0.0.1:9610".parse().unwrap()));
    assert_eq!(c.override_file, Some(PathBuf::from("/run/opergroupd/override")));
    let le = c.leader_election.unwrap();
    assert_eq!((le.lease.as_str(), le.namespace.as_str(), le.identity), ("opergroupd", "fabric", None));
    assert_eq!((le.lease_duration, le.renew_period), (Duration::from_secs(15), Duration::from_secs(5)));

    let e =
        err(&format!("{GOOD}leader-election: {{ lease: l, namespace: n, lease-duration: 5s, renew-period: 5s }}\n"));
    assert_eq!(e.key, "leader-election.renew-period");
    assert!(e.position.is_some());
    let e = err(&format!("{GOOD}http: \"localhost\"\n"));
    assert_eq!(e.key, "http");
}

#[test]
fn services_are_resolved_by_name() {
    let web = "services:\n  web: { prefix: 192.0.2.1/32, checks: [{ tcp: \"127.0.0.1:80\" }] }\n";
    let c = parse(&format!("{GOOD}{web}"), "t").unwrap();
    assert_eq!(c.services.keys().collect::<Vec<_>>(), ["web"]);
    let e = err(&format!("{GOOD}services:\n  web: {{ bogus: 1 }}\n"));
    assert_eq!(e.key, "services.web.bogus");
    assert!(e.position.is_some());
}

#[test]
fn key_paths_survive_names_that_look_like_internals() {
    let base =
        "targets: {value: {address: a}}\ngroups:\n  value:\n    target: value\n    uplinks: [u]\n    downlinks: [d]\n";
    parse(base, "t").unwrap();
    assert_eq!(err(&format!("{base}    bogus: 1\n")).key, "groups.value.bogus");
    assert_eq!(err(&base.replace("uplinks: [u]", "uplinks: [u, \"x{2..1}\"]")).key, "groups.value.uplinks[1]");
    assert_eq!(err(&base.replace("address: a", "address: \"a:0\"")).key, "targets.value.address");
}

#[test]
fn metrics_histograms_are_per_group_unless_fleet_is_asked_for() {
    assert_eq!(parse(GOOD, "test.yaml").unwrap().histograms, HistogramScope::PerGroup);
    let fleet = parse(&format!("{GOOD}metrics:\n  histograms: fleet\n"), "test.yaml").unwrap();
    assert_eq!(fleet.histograms, HistogramScope::Fleet);
    let text = format!("{GOOD}metrics:\n  histograms: per-leaf\n");
    let e = err(&text);
    assert_eq!(e.key, "metrics.histograms");
    assert_eq!(e.position.map(|p| p.0), Some(line_of(&text, "per-leaf")));
    assert!(e.message.contains("per-group") && e.message.contains("fleet"), "{e}");
    let e = err(&format!("{GOOD}metrics:\n  buckets: 3\n"));
    assert_eq!(e.key, "metrics.buckets");
}

#[test]
fn many_groups_with_per_group_histograms_earn_a_warning() {
    let fabric = |n: usize, tail: &str| {
        let mut y = String::from("defaults:\n  username: admin\n  password: x\n  tls:\n    insecure: true\ntargets:\n");
        for i in 1..=n {
            y += &format!("  leaf{i}: {{ address: \"127.0.0.1:{}\" }}\n", 20000 + i);
        }
        y += "groups:\n";
        for i in 1..=n {
            y +=
                &format!("  leaf{i}-es1: {{ target: leaf{i}, uplinks: [ethernet-1/49], downlinks: [ethernet-1/1] }}\n");
        }
        parse(&(y + tail), "test.yaml").unwrap().warnings
    };
    let about_metrics = |w: Vec<String>| w.into_iter().filter(|w| w.starts_with("metrics:")).collect::<Vec<_>>();
    let many = about_metrics(fabric(1000, ""));
    assert_eq!(many.len(), 1, "{many:?}");
    assert!(
        many[0].contains("1000 groups") && many[0].contains("38000 series") && many[0].contains("fleet"),
        "{many:?}"
    );
    assert!(about_metrics(fabric(1000, "metrics:\n  histograms: fleet\n")).is_empty());
    assert!(about_metrics(fabric(999, "")).is_empty());
}
