//! `opergroupd run --dry-run` against fabric-sim, read through /status: the downlink's
//! observed admin-state stays what the device reports (dry-run changes nothing), the wanted
//! one is shown as desired, and the line is printed once, not again on every evaluation.

#[path = "support/ops.rs"]
mod ops;

use std::time::Duration;

use fabric_sim::{SimConfig, Timings};
use opergroupd::status::Health;

use ops::{Opergroupd, TempDir, eventually, group, status};

const STEP: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_status_shows_the_devices_state_and_prints_each_line_once() {
    let fabric =
        fabric_sim::start(SimConfig { leaves: 1, base_port: 0, timings: Timings::fast(), ..SimConfig::default() })
            .await
            .expect("start fabric-sim");
    let ctl = fabric.control();
    let dir = TempDir::new("dry-run");
    let leaves = vec![("leaf1".to_string(), fabric.leaf_addr("leaf1").expect("addr"))];
    let config = dir.write("config.yaml", &ops::fabric_config(&leaves, ""));
    let proc = Opergroupd::run("opergroupd", &config, &["--dry-run"], &[]);
    let http = proc.http_addr().await;
    eventually("leaf1-es1 healthy", STEP, || async {
        let g = group(&status(http).await, "leaf1-es1").clone();
        if g.oper_state == Health::Healthy { Ok(()) } else { Err(format!("{g:?}")) }
    })
    .await;

    ctl.link("leaf1", "ethernet-1/49", false).unwrap();
    ctl.link("leaf1", "ethernet-1/50", false).unwrap();
    eventually("the dry-run line", STEP, || async {
        if proc.stdout_lines().len() == 1 { Ok(()) } else { Err(format!("{:?}", proc.stdout_lines())) }
    })
    .await;
    // More evaluations of the same outage (the client's link flaps) print nothing new.
    ctl.link("leaf1", "ethernet-1/1", false).unwrap();
    let doc = eventually("the outage evaluated again", STEP, || async {
        let doc = status(http).await;
        let g = group(&doc, "leaf1-es1");
        let seen = g.last_input.as_ref().is_some_and(|i| {
            i.values
                .iter()
                .any(|v| v.path == "/interface[name=ethernet-1/1]/oper-state" && v.value.as_deref() == Some("down"))
        });
        if g.oper_state == Health::Unhealthy && seen { Ok(doc) } else { Err(format!("{g:?}")) }
    })
    .await;
    let d = &group(&doc, "leaf1-es1").downlinks[0];
    assert_eq!(d.desired.as_deref(), Some("disable"), "{d:?}");
    assert_eq!(d.observed.as_deref(), Some("enable"), "dry-run must not pretend the device changed: {d:?}");
    assert_eq!(ctl.admin_state("leaf1", "ethernet-1/1").unwrap().as_deref(), Some("enable"));
    assert_eq!(proc.stdout_lines().len(), 1, "printed once: {:?}", proc.stdout_lines());
    assert!(ctl.sets().is_empty(), "dry-run sends nothing");
    drop(proc);
    fabric.shutdown().await;
}
