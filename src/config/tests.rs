//! Config loading: good input resolves as documented, bad input names file, line, column
//! and key, secrets never leak.

use super::*;

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
fn absent_tls_verifies_with_system_roots_and_default_port() {
    let c = parse("targets: {a: {address: a}}\ngroups: {g: {target: a, uplinks: [u], downlinks: [d]}}\n", "x").unwrap();
    assert_eq!(c.targets["a"].address, "a:57400");
    assert_eq!(c.targets["a"].tls, Tls::Verify { ca_file: None, client: None, server_name: None });
    assert!(c.targets["a"].password.is_none());
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
fn two_password_sources_are_rejected() {
    let text = edit("  password: NokiaSrl1!", "  password: NokiaSrl1!\n  password-env: GNMI_PASSWORD");
    let e = err(&text);
    assert_eq!(e.key, "defaults.password-env");
    assert_eq!(e.position.map(|p| p.0), Some(line_of(&text, "password-env")));
    assert!(e.message.contains("exactly one"), "{e}");
    assert!(!e.to_string().contains("NokiaSrl1!"));
}

#[test]
fn missing_env_var_is_named() {
    let var = "OPERGROUPD_TEST_SURELY_UNSET_VAR";
    let text = edit("  password: NokiaSrl1!", &format!("  password-env: {var}"));
    let e = err(&text);
    assert_eq!(e.key, "defaults.password-env");
    assert!(e.message.contains(var) && e.message.contains("not set"), "{e}");
    assert_eq!(e.position.map(|p| p.0), Some(line_of(&text, "password-env")));
}

#[test]
fn password_env_is_read_at_load() {
    // A variable only this test sets; tests run in threads of one process.
    let var = "OPERGROUPD_TEST_PASSWORD_ENV";
    // SAFETY: no other test reads or writes this variable.
    unsafe { std::env::set_var(var, "from-env-secret") };
    let c = parse(&edit("  password: NokiaSrl1!", &format!("  password-env: {var}")), "t").unwrap();
    assert_eq!(c.targets["leaf1"].password.as_ref().unwrap().expose(), "from-env-secret");
    // leaf3 has its own password.
    assert_eq!(c.targets["leaf3"].password.as_ref().unwrap().expose(), "other-secret");
}

#[test]
fn password_file_is_read_and_trimmed_relative_to_the_config() {
    let dir = std::env::temp_dir().join(format!("opergroupd-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("pw"), "file-secret\n").unwrap();
    let cfg = dir.join("c.yaml");
    std::fs::write(&cfg, edit("  password: NokiaSrl1!", "  password-file: pw")).unwrap();
    let c = load(&cfg).unwrap();
    assert_eq!(c.targets["leaf2"].password.as_ref().unwrap().expose(), "file-secret");

    std::fs::write(&cfg, edit("  password: NokiaSrl1!", "  password-file: missing-pw")).unwrap();
    let e = load(&cfg).unwrap_err();
    assert_eq!(e.key, "defaults.password-file");
    assert!(e.message.contains("missing-pw"), "{e}");
    assert_eq!(e.origin, cfg.display().to_string());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unknown_target_reference_is_located() {
    let text = edit("    target: leaf2\n", "    target: leaf9\n");
    let e = err(&text);
    assert_eq!(e.key, "groups.leaf2-es1.target");
    assert_eq!(e.position.map(|p| p.0), Some(line_of(&text, "target: leaf9")));
    assert!(e.message.contains("leaf9") && e.message.contains("leaf1, leaf2, leaf3"), "{e}");
}

#[test]
fn cross_reference_errors_name_the_key() {
    // The same downlink claimed by two groups on one target.
    let text = edit("    target: leaf2\n", "    target: leaf1\n");
    let e = err(&text);
    assert_eq!(e.key, "groups.leaf2-es1.downlinks[0]");
    assert!(e.message.contains("ethernet-1/1") && e.message.contains("leaf1-es1"), "{e}");

    // An interface both uplink and downlink.
    let e = err(&edit(r#"downlinks: ["ethernet-1/1"]"#, r#"downlinks: ["ethernet-1/50"]"#));
    assert_eq!(e.key, "groups.leaf1-es1.downlinks[0]");
    assert!(e.message.contains("both"), "{e}");

    // required-up greater than the uplinks, or 0.
    for bad in ["3", "0"] {
        let text = edit("required-up: 2", &format!("required-up: {bad}"));
        let e = err(&text);
        assert_eq!(e.key, "groups.leaf2-es1.required-up");
        assert_eq!(e.position.map(|p| p.0), Some(line_of(&text, "required-up")));
    }

    // min-established greater than the neighbors.
    let text = edit("      evpn-min-received-routes: 1", "      min-established: 3");
    let e = err(&text);
    assert_eq!(e.key, "groups.leaf1-es1.readiness.min-established");
    assert_eq!(e.position.map(|p| p.0), Some(line_of(&text, "min-established")));

    // An interface listed twice after expansion.
    let e = err(&edit(r#"["ethernet-1/{49..50}"]"#, r#"["ethernet-1/{49..50}", ethernet-1/50]"#));
    assert_eq!(e.key, "groups.leaf1-es1.uplinks[1]");
}

#[test]
fn an_uplink_of_one_group_cannot_be_a_downlink_of_another() {
    let text = edit(
        "    downlinks: [\"ethernet-1/{1,3}\"]",
        "    downlinks: [\"ethernet-1/{1,3}\"]\n  other:\n    target: leaf1\n    uplinks: [ethernet-1/7]\n    downlinks: [ethernet-1/49]",
    );
    let e = err(&text);
    assert_eq!(e.key, "groups.other.downlinks[0]");
    // Sharing uplinks between groups is fine.
    let text = text
        .replace("downlinks: [ethernet-1/49]", "downlinks: [ethernet-1/8]")
        .replace("uplinks: [ethernet-1/7]", "uplinks: [ethernet-1/49]");
    parse(&text, "t").unwrap();
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
fn tls_needs_exactly_one_mode() {
    for (tls, needle) in [
        ("{ skip-verify: true, insecure: true }", "exactly one"),
        ("{ }", "exactly one"),
        ("{ skip-verify: false }", "exactly one"),
        ("{ insecure: true, server-name: x }", "plaintext"),
        ("{ ca-file: ca.pem, cert-file: c.pem }", "together"),
        ("{ skip-verify: true, bogus: 1 }", "unknown field"),
    ] {
        let e = err(&edit("{ address: \"leaf1:57411\" }", &format!("{{ address: \"leaf1:57411\", tls: {tls} }}")));
        assert!(e.key.starts_with("targets.leaf1.tls"), "{tls}: {e}");
        assert!(e.message.contains(needle), "{tls}: {e}");
        assert!(e.position.is_some(), "{tls}: {e}");
    }
    let c = parse(&edit("{ address: \"leaf1:57411\" }", "{ address: \"leaf1:57411\", tls: { ca-file: /ca.pem, cert-file: c.pem, key-file: k.pem, server-name: leaf1.lab } }"), "t").unwrap();
    assert_eq!(
        c.targets["leaf1"].tls,
        Tls::Verify {
            ca_file: Some("/ca.pem".into()),
            client: Some(ClientCert { cert_file: "c.pem".into(), key_file: "k.pem".into() }),
            server_name: Some("leaf1.lab".into())
        }
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
fn secrets_never_show() {
    let secret = "NokiaSrl1!";
    let c = parse(GOOD, "t").unwrap();
    assert!(!format!("{c:?}").contains(secret));
    assert!(!format!("{c:#?}").contains("other-secret"));
    // Errors anywhere near the password do not quote it.
    for (from, to) in [
        ("  username: admin", "  username: [admin"),
        ("  password: NokiaSrl1!", "  password: NokiaSrl1!\n  password-file: x"),
        ("  password: NokiaSrl1!", "  password: NokiaSrl1!\n  pasword: NokiaSrl1!"),
        ("  tls:", "  tls: NokiaSrl1!\n  tlx:"),
    ] {
        let e = err(&edit(from, to));
        assert!(!e.to_string().contains(secret), "{e}");
        assert!(!format!("{e:?}").contains(secret), "{e:?}");
    }
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
fn segments_and_cap_resolve() {
    let text = format!("{GOOD}segments:\n  es1: [leaf1-es1, leaf2-es1]\nsafety:\n  max-disabled: 25%\n");
    let c = parse(&text, "test.yaml").unwrap();
    assert_eq!(c.segments["es1"], vec!["leaf1-es1".to_string(), "leaf2-es1".to_string()]);
    assert_eq!(c.max_disabled, Some(safety::Cap::Percent(25.0)));
    let c = parse(&format!("{GOOD}safety:\n  max-disabled: 3\n"), "test.yaml").unwrap();
    assert_eq!(c.max_disabled, Some(safety::Cap::Count(3)));
    assert_eq!(safety::Cap::Percent(25.0).limit(10), 2);
}

#[test]
fn bad_segments_and_caps_are_located() {
    // (addition to GOOD, key, words of the message, the line the error points at)
    let cases: &[(&str, &str, &str, &str)] = &[
        ("segments:\n  es1: [leaf1-es1, leaf9-es1]\n", "segments.es1", "no group named \"leaf9-es1\"", "leaf9-es1"),
        ("segments:\n  es1: [leaf1-es1]\n", "segments.es1", "at least two", "[leaf1-es1]"),
        (
            "segments:\n  es1: [leaf1-es1, leaf2-es1]\n  es2: [leaf2-es1, leaf1-es1]\n",
            "segments.es2",
            "already a member of segment es1",
            "es2: [",
        ),
        ("segments:\n  es1: [leaf1-es1, leaf1-es1]\n", "segments.es1", "listed twice", "es1: ["),
        ("safety:\n  max-disabled: lots\n", "safety.max-disabled", "neither a count", "lots"),
        ("safety:\n  max-disabled: 120%\n", "safety.max-disabled", "between 0% and 100%", "120%"),
        ("safety:\n  max-disbled: 1\n", "safety.max-disbled", "unknown field", "max-disbled"),
    ];
    for (extra, key, words, at) in cases {
        let text = format!("{GOOD}{extra}");
        let e = err(&text);
        assert_eq!(e.key, *key, "{extra}: {e}");
        assert!(e.message.contains(words), "{extra}: {e}");
        let (line, _) = e.position.unwrap_or_else(|| panic!("{extra}: no position in {e}"));
        assert_eq!(line, line_of(&text, at), "{extra}: {e}");
    }
}

#[test]
fn segment_members_must_be_on_different_targets() {
    let text = GOOD
        .replace("  leaf2-es1:\n    target: leaf2", "  leaf2-es1:\n    target: leaf1")
        .replace("downlinks: [\"ethernet-1/{1,3}\"]", "downlinks: [\"ethernet-1/{2,3}\"]")
        .replace("uplinks: [ethernet-1/49, ethernet-1/50]", "uplinks: [ethernet-1/51, ethernet-1/52]");
    let e = err(&format!("{text}segments:\n  es1: [leaf1-es1, leaf2-es1]\n"));
    assert!(e.message.contains("both on target leaf1"), "{e}");
}
