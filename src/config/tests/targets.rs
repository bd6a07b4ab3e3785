//! Targets: TLS modes, the one password and where it comes from, secrets that never show,
//! liveness and reconnect-max, the plaintext warning.

use super::*;

#[test]
fn absent_tls_verifies_with_system_roots_and_default_port() {
    let c = parse("targets: {a: {address: a}}\ngroups: {g: {target: a, uplinks: [u], downlinks: [d]}}\n", "x").unwrap();
    assert_eq!(c.targets["a"].address, "a:57400");
    assert_eq!(c.targets["a"].tls, Tls::Verify { ca_file: None, client: None, server_name: None });
    assert!(c.targets["a"].password.is_none());
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
fn liveness_and_reconnect_max_default_and_override_per_target() {
    let yaml = r#"
defaults: { tls: { insecure: true }, liveness: 4s }
targets:
  leaf1: { address: "127.0.0.1:57401" }
  leaf2: { address: "127.0.0.1:57402", liveness: 0s, reconnect-max: 500ms }
groups:
  a: { target: leaf1, uplinks: [ethernet-1/49], downlinks: [ethernet-1/1] }
"#;
    let c = parse(yaml, "t").unwrap();
    assert_eq!(c.targets["leaf1"].liveness, Some(Duration::from_secs(4)));
    assert_eq!(c.targets["leaf1"].reconnect_max, Duration::from_secs(2));
    assert_eq!(c.targets["leaf2"].liveness, None, "0s turns liveness off");
    assert_eq!(c.targets["leaf2"].reconnect_max, Duration::from_millis(500));
    let plain = parse(&yaml.replace("liveness: 4s", "port: 57400"), "t").unwrap();
    assert_eq!(plain.targets["leaf1"].liveness, Some(Duration::from_secs(10)));
    let e = parse(&yaml.replace("reconnect-max: 500ms", "reconnect-max: 0s"), "t").unwrap_err();
    assert_eq!(e.key, "targets.leaf2.reconnect-max");
    assert!(e.position.is_some(), "{e}");
}

#[test]
fn plaintext_with_a_password_warns_once_naming_the_targets() {
    let yaml = r#"
defaults: { tls: { insecure: true }, password: pw }
targets:
  leaf1: { address: "127.0.0.1:57401" }
  leaf2: { address: "127.0.0.1:57402" }
  leaf3: { address: "127.0.0.1:57403", tls: { skip-verify: true } }
groups:
  a: { target: leaf1, uplinks: [ethernet-1/49], downlinks: [ethernet-1/1] }
"#;
    let c = parse(yaml, "t").unwrap();
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(c.warnings[0].contains("leaf1, leaf2"), "{}", c.warnings[0]);
    assert!(!c.warnings[0].contains("leaf3") && !c.warnings[0].contains("pw"), "{}", c.warnings[0]);
    assert!(parse(&yaml.replace("password: pw", "port: 57400"), "t").unwrap().warnings.is_empty());
}

/// A fleet-sized config: `n` plaintext targets with a password, one group on leaf1.
fn fleet_yaml(n: usize, group_target: &str) -> String {
    let mut y = String::from("defaults: { tls: { insecure: true }, password: pw }\ntargets:\n");
    for i in 1..=n {
        y += &format!("  leaf{i}: {{ address: \"127.0.0.1:{}\" }}\n", 40000 + i);
    }
    y += &format!("groups:\n  a: {{ target: {group_target}, uplinks: [ethernet-1/49], downlinks: [ethernet-1/1] }}\n");
    y
}

#[test]
fn a_fleet_sized_plaintext_warning_names_ten_targets_and_counts_the_rest() {
    let c = parse(&fleet_yaml(300, "leaf1"), "t").unwrap();
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    let w = &c.warnings[0];
    assert!(w.contains("to target(s) leaf1, leaf10, leaf100,") && w.contains(" and 290 more;"), "{w}");
    assert!(w.len() < 300, "one readable line, not every name: {} bytes", w.len());
}

#[test]
fn an_unknown_target_among_many_lists_a_few_of_them() {
    let e = parse(&fleet_yaml(300, "leaf999"), "t").unwrap_err();
    assert_eq!(e.key, "groups.a.target");
    let msg = e.to_string();
    assert!(
        msg.contains("unknown target \"leaf999\" (targets: leaf1, leaf10,") && msg.contains(" and 290 more)"),
        "{msg}"
    );
}
