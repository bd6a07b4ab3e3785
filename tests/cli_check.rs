//! `opergroupd check` as a user runs it: the built binary on config files.

use std::process::{Command, Output};

fn opergroupd(args: &[&str], password: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_opergroupd"));
    cmd.args(args).current_dir(env!("CARGO_MANIFEST_DIR")).env_remove("GNMI_PASSWORD");
    if let Some(p) = password {
        cmd.env("GNMI_PASSWORD", p);
    }
    cmd.output().expect("run opergroupd")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_passes_on_the_reference_fabric_and_prints_the_plan() {
    let secret = "Sup3r-Secret!";
    let out = opergroupd(&["check", "--config", "examples/reference-fabric.yaml"], Some(secret));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    for needle in [
        "leaf1: 127.0.0.1:57401 insecure (plaintext), user admin, password set",
        "leaf4: 127.0.0.1:57404",
        "leaf3-es1: target leaf3, enforce",
        "uplinks: ethernet-1/49, ethernet-1/50 (required-up 1)",
        "/interface[name=ethernet-1/49]/oper-state",
        "/network-instance[name=default]/protocols/bgp/neighbor[peer-address=10.0.1.2]/afi-safi[afi-safi-name=evpn]/received-routes",
        "/interface[name=ethernet-1/1]/admin-state = disable | enable",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in\n{stdout}");
    }
    assert!(!stdout.contains(secret) && !stderr.contains(secret));
}

#[test]
fn check_without_the_password_env_names_the_variable() {
    let out = opergroupd(&["check", "--config", "examples/reference-fabric.yaml"], None);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "examples/reference-fabric.yaml:10:17: defaults.password-env: environment variable GNMI_PASSWORD is not set"
        ),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_configs_exit_1_naming_file_line_column_and_key() {
    for (file, expected) in [
        (
            "tests/configs/unknown-key.yaml",
            "tests/configs/unknown-key.yaml:9:5: groups.leaf1-es1.updelay: unknown field `updelay`",
        ),
        (
            "tests/configs/bad-range.yaml",
            "tests/configs/bad-range.yaml:6:15: groups.leaf1-es1.uplinks[0]: reversed range '50..49'",
        ),
        (
            "tests/configs/unknown-target.yaml",
            "tests/configs/unknown-target.yaml:5:13: groups.leaf1-es1.target: unknown target \"leaf9\"",
        ),
        (
            "tests/configs/two-passwords.yaml",
            "tests/configs/two-passwords.yaml:4:17: defaults.password-env: set exactly one of",
        ),
    ] {
        let out = opergroupd(&["check", "--config", file], Some("pw"));
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{file}: {stderr}");
        assert!(stderr.contains(expected), "{file}: expected {expected:?} in\n{stderr}");
        assert!(!stderr.contains("do-not-print-me"), "{stderr}");
        assert!(out.stdout.is_empty(), "{file}: nothing on stdout");
    }
}

#[test]
fn a_missing_file_and_bad_arguments_exit_1() {
    let out = opergroupd(&["check", "--config", "tests/configs/no-such-file.yaml"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("tests/configs/no-such-file.yaml: cannot read the config file"),
        "{}",
        text(&out.stderr)
    );

    for args in [&["check"][..], &["frobnicate"], &["run", "--config", "x.yaml", "--log-format", "xml"]] {
        let out = opergroupd(args, None);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out.stderr));
        assert!(!out.stderr.is_empty());
    }
    let out = opergroupd(&["--help"], None);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("check"));
}

#[test]
fn run_refuses_a_bad_config_with_exit_1() {
    let out = opergroupd(&["run", "--dry-run", "--config", "tests/configs/unknown-key.yaml"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("groups.leaf1-es1.updelay"));
    assert!(out.stdout.is_empty(), "dry-run stdout carries only Sets");
}

/// 12,000 leaves, each a target and a group with readiness: ~350,000 YAML nodes, past the
/// YAML parser's default budget (250,000), which is for hostile input, not for big fabrics.
#[test]
fn a_config_for_twelve_thousand_leaves_parses() {
    let mut y = String::from("defaults: { username: admin, password: \"x\", tls: { insecure: true } }\ntargets:\n");
    for i in 1..=12_000 {
        y += &format!("  leaf{i}: {{ address: \"127.0.0.1:{}\" }}\n", 10_000 + i);
    }
    y += "groups:\n";
    for i in 1..=12_000 {
        y += &format!(
            "  leaf{i}-es1:\n    target: leaf{i}\n    uplinks: [\"ethernet-1/{{49..50}}\"]\n    downlinks: [ethernet-1/1]\n    required-up: 1\n    readiness: {{ bgp-neighbors: [10.0.1.1, 10.0.1.2], min-established: 1, evpn-min-received-routes: 1 }}\n"
        );
    }
    let config = opergroupd::config::parse(&y, "big.yaml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((config.targets.len(), config.groups.len()), (12_000, 12_000));
}
