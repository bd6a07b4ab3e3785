//! `opergroupd run --log-format json` against fabric-sim: every stderr line is one JSON
//! object, and a decision line carries the group, its target, the decision and the reason
//! at the top level (doc/operating.md, "Logs").

#[path = "support/ops.rs"]
mod ops;

use std::time::Duration;

use fabric_sim::{SimConfig, Timings};
use opergroupd::status::Health;
use serde_json::Value;

use ops::{Opergroupd, TempDir, eventually, group, status};

const STEP: Duration = Duration::from_secs(10);

fn objects(lines: &[String]) -> Vec<serde_json::Map<String, Value>> {
    lines
        .iter()
        .map(|l| match serde_json::from_str::<Value>(l) {
            Ok(Value::Object(o)) => o,
            other => panic!("stderr line is not a JSON object ({other:?}): {l}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line_and_a_decision_names_group_decision_and_reason() {
    let fabric =
        fabric_sim::start(SimConfig { leaves: 1, base_port: 0, timings: Timings::fast(), ..SimConfig::default() })
            .await
            .expect("start fabric-sim");
    let ctl = fabric.control();
    let dir = TempDir::new("logs");
    let leaves = vec![("leaf1".to_string(), fabric.leaf_addr("leaf1").expect("addr"))];
    let ov = dir.path("maintenance");
    let config =
        dir.write("config.yaml", &ops::fabric_config(&leaves, &format!("override-file: \"{}\"\n", ov.display())));
    let mut proc = Opergroupd::run("opergroupd", &config, &[], &[]);
    let http = proc.http_addr().await;

    eventually("leaf1-es1 healthy", STEP, || async {
        let doc = status(http).await;
        let g = group(&doc, "leaf1-es1");
        if g.oper_state == Health::Healthy { Ok(()) } else { Err(format!("{g:?}")) }
    })
    .await;
    // A maintenance window, then the outage after it.
    std::fs::write(&ov, "leaf1-es1  # RMA\n").expect("override file");
    eventually("the override file's log line", STEP, || async {
        let lines = objects(&proc.stderr_lines());
        lines
            .iter()
            .any(|o| {
                o.get("message") == Some(&Value::from("override file"))
                    && o.get("suspends") == Some(&Value::from("groups"))
            })
            .then_some(())
            .ok_or_else(|| "not yet".to_string())
    })
    .await;
    std::fs::remove_file(&ov).expect("remove override file");
    // The file is watched off the event path (every 500 ms): wait until the removal is seen.
    eventually("the override file's removal in the log", STEP, || async {
        objects(&proc.stderr_lines())
            .iter()
            .any(|o| {
                o.get("message") == Some(&Value::from("override file"))
                    && o.get("suspends") == Some(&Value::from("none"))
            })
            .then_some(())
            .ok_or_else(|| "not yet".to_string())
    })
    .await;
    ctl.link("leaf1", "ethernet-1/49", false).expect("link");
    ctl.link("leaf1", "ethernet-1/50", false).expect("link");
    ctl.wait_for_sets(1, STEP).await.expect("a Set");
    eventually("the Set acknowledged in the log", STEP, || async {
        objects(&proc.stderr_lines())
            .iter()
            .any(|o| o.get("message") == Some(&Value::from("set acknowledged")))
            .then_some(())
            .ok_or_else(|| "not yet".to_string())
    })
    .await;

    proc.sigterm();
    let exit = proc.wait_exit(Duration::from_secs(5)).await;
    assert!(exit.success(), "SIGTERM exits 0: {exit}");
    assert!(proc.stdout_lines().is_empty(), "stdout is for dry-run lines only: {:?}", proc.stdout_lines());

    let lines = objects(&proc.stderr_lines());
    assert!(lines.len() > 5, "{lines:?}");
    for o in &lines {
        for key in ["timestamp", "level", "module", "message"] {
            assert!(o.get(key).is_some_and(Value::is_string), "every line has a string {key:?}: {o:?}");
        }
    }
    let decision = lines
        .iter()
        .find(|o| o["message"] == "decision" && o.get("decision") == Some(&Value::from("disable")))
        .unwrap_or_else(|| panic!("no decision line with decision=disable: {lines:#?}"));
    assert_eq!(decision["level"], "INFO");
    assert_eq!(decision["group"], "leaf1-es1", "{decision:?}");
    assert_eq!(decision["target"], "leaf1", "{decision:?}");
    assert_eq!(decision["health"], "unhealthy", "{decision:?}");
    assert!(decision["reason"].as_str().is_some_and(|r| r.contains("0/2 uplinks up")), "{decision:?}");
    assert_eq!(
        (&decision["uplinks_up"], &decision["uplinks"], &decision["required_up"]),
        (&Value::from(0), &Value::from(2), &Value::from(1))
    );
    assert_eq!(decision["enforcement"], "enforcing", "{decision:?}");
    let first = lines.iter().find(|o| o["message"] == "decision").expect("a decision line");
    assert!(
        first.get("group").is_some() && first.get("decision").is_some() && first.get("reason").is_some(),
        "{first:?}"
    );
    let acked = lines.iter().find(|o| o["message"] == "set acknowledged").expect("set acknowledged");
    assert_eq!((&acked["group"], &acked["target"]), (&Value::from("leaf1-es1"), &Value::from("leaf1")));
    assert!(acked["latency_ms"].is_f64(), "{acked:?}");

    fabric.shutdown().await;
}
