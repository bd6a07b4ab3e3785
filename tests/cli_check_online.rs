//! `opergroupd check --online` as a user runs it, against fabric-sim: it reports interfaces
//! and BGP neighbors the device does not have and targets it cannot reach, and never Sets.

use std::time::Duration;

use fabric_sim::{SimConfig, Timings};

async fn check_online(yaml: &str) -> (Option<i32>, String, String) {
    let dir = std::env::temp_dir().join(format!("opergroupd-online-{}-{}", std::process::id(), yaml.len()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("opergroupd.yaml");
    std::fs::write(&file, yaml).expect("config");
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_opergroupd"))
            .args(["check", "--online", "--config"])
            .arg(&file)
            .output(),
    )
    .await
    .expect("check --online ends")
    .expect("runs");
    let _ = std::fs::remove_dir_all(&dir);
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn config(leaf1: &str, groups: &str) -> String {
    format!(
        "defaults: {{ username: admin, password: \"NokiaSrl1!\", tls: {{ insecure: true }} }}\n\
         targets:\n  leaf1: {{ address: \"{leaf1}\" }}\n  leaf2: {{ address: \"127.0.0.1:1\" }}\n\
         groups:\n{groups}"
    )
}

#[tokio::test]
async fn online_check_names_missing_interfaces_neighbors_and_unreachable_targets_without_a_set() {
    let fabric =
        fabric_sim::start(SimConfig { leaves: 1, base_port: 0, timings: Timings::fast(), ..SimConfig::default() })
            .await
            .expect("fabric-sim");
    let leaf1 = fabric.leaf_addr("leaf1").unwrap().to_string();
    let groups = "  leaf1-es1:\n    target: leaf1\n    uplinks: [\"ethernet-1/{49..50}\"]\n    downlinks: [ethernet-1/1]\n    readiness: { bgp-neighbors: [10.0.1.1, 10.0.1.9], min-established: 1 }\n\
                  \x20 leaf1-typo: { target: leaf1, uplinks: [ethernet-1/49, ethernet-1/5O], downlinks: [ethernet-1/9] }\n\
                  \x20 leaf2-es1: { target: leaf2, uplinks: [ethernet-1/49], downlinks: [ethernet-1/1] }\n";
    let (code, stdout, stderr) = check_online(&config(&leaf1, groups)).await;
    assert_eq!(code, Some(1), "stdout:\n{stdout}\nstderr:\n{stderr}");
    for needle in [
        "leaf1-typo: MISCONFIGURED (misconfigured): uplink ethernet-1/5O, downlink ethernet-1/9 not found on target leaf1",
        "leaf1-es1: WARNING (healthy)",
        "BGP neighbor 10.0.1.9 not found on target leaf1",
        "leaf2 (127.0.0.1:1): UNREACHABLE: leaf2 (127.0.0.1:1): connection failed",
        &format!("leaf1 ({leaf1}): synced (JSON_IETF)"),
        "result: problems found",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in\n{stdout}");
    }
    assert!(stderr.contains("warning: tls: insecure sends the password in plaintext"), "{stderr}");
    assert!(fabric.control().sets().is_empty(), "check --online sent a Set: {:?}", fabric.control().sets());

    // A clean config against a reachable leaf: exit 0.
    let good = "  leaf1-es1: { target: leaf1, uplinks: [\"ethernet-1/{49..50}\"], downlinks: [ethernet-1/1] }\n";
    let yaml = config(&leaf1, good).replace("  leaf2: { address: \"127.0.0.1:1\" }\n", "");
    let (code, stdout, stderr) = check_online(&yaml).await;
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("leaf1-es1: ok (healthy): 2/2 uplinks up") && stdout.contains("result: ok"), "{stdout}");

    // A leaf without JSON_IETF: checked in PROTO, and the report says so.
    fabric.control().fault("leaf1", fabric_sim::Fault::ProtoOnly { enabled: true }).unwrap();
    let (code, stdout, stderr) = check_online(&yaml).await;
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains(&format!("leaf1 ({leaf1}): synced (PROTO)")), "{stdout}");
    fabric.shutdown().await;
}
