//! Groups: references to targets, interfaces claimed once, readiness's when-not-ready,
//! segments and the blast-radius cap.

use super::*;

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
fn when_not_ready_and_not_ready_delay() {
    let yaml = r#"
defaults: { tls: { insecure: true } }
targets: { leaf1: { address: "127.0.0.1:57401" } }
groups:
  a:
    target: leaf1
    uplinks: [ethernet-1/49]
    downlinks: [ethernet-1/1]
    down-delay: 3s
    readiness: { bgp-neighbors: [10.0.1.1], when-not-ready: disable }
  b:
    target: leaf1
    uplinks: [ethernet-1/49]
    downlinks: [ethernet-1/2]
    readiness: { bgp-neighbors: [10.0.1.1], not-ready-delay: 2s }
"#;
    let c = parse(yaml, "t").unwrap();
    let a = c.groups["a"].readiness.as_ref().unwrap();
    assert_eq!((a.when_not_ready, a.not_ready_delay), (WhenNotReady::Disable, Duration::from_secs(3)));
    let b = c.groups["b"].readiness.as_ref().unwrap();
    assert_eq!((b.when_not_ready, b.not_ready_delay), (WhenNotReady::Hold, Duration::from_secs(2)));
    let e = parse(&yaml.replace("when-not-ready: disable", "when-not-ready: drop"), "t").unwrap_err();
    assert_eq!(e.key, "groups.a.readiness.when-not-ready");
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
