//! The tutorial scenarios (one uplink down, both down, recovery gated by readiness) on
//! OpenConfig leaves and in a mixed fabric (leaf1 SR Linux, leaf2 OpenConfig), with the
//! dry-run lines compared Set by Set with what `run` sends; and the same on leaves that
//! offer no JSON_IETF (typed PROTO values both ways).

#[path = "support/scenario.rs"]
mod scenario;

use fabric_sim::{Fault, SetOutcome, Timings};
use opergroupd::policy::Health;
use scenario::*;

/// (target, group, path, value) per path set, in order.
type Decision = (String, String, String, String);

/// The controller's YAML: each leaf with its own profile, names and readiness.
fn yaml(lab: &Lab) -> String {
    let mut y =
        format!("defaults:\n  username: admin\n  password: \"{PASSWORD}\"\n  tls: {{ insecure: true }}\ntargets:\n");
    for t in lab.targets() {
        let profile = lab.control.profile(&t.name).unwrap().as_str();
        y += &format!("  {}: {{ address: \"{}\", profile: {profile} }}\n", t.name, t.address);
    }
    y += "groups:\n";
    for t in lab.targets() {
        let (down, [up1, up2]) = lab.control.interfaces(&t.name).unwrap();
        y += &format!(
            "  {}:\n    target: {}\n    uplinks: [\"{up1}\", \"{up2}\"]\n    downlinks: [\"{down}\"]\n    readiness:\n      bgp-neighbors: [\"10.0.1.1\", \"10.0.1.2\"]\n      min-established: 1\n      evpn-min-received-routes: 1\n",
            group_of(&t.name),
            t.name
        );
    }
    y
}

enum Step {
    /// (leaf, uplink index 0 or 1, up)
    Link(&'static str, usize, bool),
    Set(&'static str),
    Verdict(&'static str, Health, &'static str),
}

const SCRIPT: &[Step] = &[
    Step::Link("leaf2", 0, false),
    Step::Verdict("leaf2", Health::Healthy, "1/2 uplinks up"),
    Step::Link("leaf2", 1, false),
    Step::Set("leaf2"),
    Step::Link("leaf1", 0, false),
    Step::Link("leaf1", 1, false),
    Step::Set("leaf1"),
    Step::Link("leaf2", 0, true),
    Step::Set("leaf2"),
    Step::Link("leaf1", 1, true),
    Step::Set("leaf1"),
];

/// Plays SCRIPT; the leaves in `proto_only` offer PROTO and ASCII only (no JSON_IETF).
async fn play(profiles: &str, mode: Mode, proto_only: &[&str]) -> (Vec<Decision>, Vec<Decision>) {
    let lab = Lab::start_with(2, Timings::fast(), profiles).await;
    for leaf in proto_only {
        lab.fault(leaf, Fault::ProtoOnly { enabled: true });
    }
    let mut ctl = Ctl::start(&yaml(&lab), CtlOptions { mode, ..CtlOptions::default() });
    ctl.verdicts(&["leaf1-es1", "leaf2-es1"], Health::Healthy, "2/2 uplinks up").await;
    // Status says which encoding each subscription uses: the one the target offered.
    let doc = ctl.board.document(std::time::Instant::now());
    for leaf in ["leaf1", "leaf2"] {
        let t = doc.targets.iter().find(|t| t.name == leaf).expect("target in status");
        let want = if proto_only.contains(&leaf) { "PROTO" } else { "JSON_IETF" };
        assert_eq!(t.encoding.as_deref(), Some(want), "{mode:?}: {leaf}'s encoding in status");
    }
    let mut decided = Vec::new();
    for step in SCRIPT {
        match step {
            Step::Link(leaf, i, up) => {
                let (_, ups) = lab.control.interfaces(leaf).unwrap();
                lab.link(leaf, &ups[*i], *up);
            }
            Step::Set(leaf) => {
                let (intent, _) = ctl.set_started(&group_of(leaf)).await;
                let (result, _) = ctl.set_finished(&group_of(leaf)).await;
                result.unwrap_or_else(|e| panic!("{mode:?}: Set on {leaf} failed: {e}"));
                for (path, value) in &intent.changes {
                    let text = match opergroupd::gnmi::set::admin_json(path, *value) {
                        serde_json::Value::String(s) => s,
                        v => v.to_string(),
                    };
                    decided.push((intent.target.to_string(), intent.group.clone(), path.clone(), text));
                }
            }
            Step::Verdict(leaf, health, reason) => {
                let mark = ctl.mark();
                ctl.verdict(&group_of(leaf), *health, reason).await;
                ctl.assert_no_set_since(mark, &format!("{mode:?}: {leaf} {reason}"));
            }
        }
    }
    let sets = lab.control.sets();
    let happened = match mode {
        Mode::DryRun => {
            assert!(sets.is_empty(), "dry-run sent Sets: {sets:#?}");
            let rx = ctl.dry.as_mut().expect("dry-run channel");
            let mut lines = Vec::new();
            while let Ok(l) = rx.try_recv() {
                // The line as printed: OpenConfig values are JSON booleans.
                let printed: serde_json::Value = serde_json::from_str(&serde_json::to_string(&l).unwrap()).unwrap();
                if l.path.ends_with("/config/enabled") {
                    assert!(printed["value"].is_boolean(), "{printed}");
                } else {
                    assert!(printed["value"].is_string(), "{printed}");
                }
                lines.push((l.target, l.group, l.path, l.value));
            }
            lines
        }
        Mode::Gnmi => {
            assert!(sets.iter().all(|r| r.outcome == SetOutcome::Accepted), "{sets:#?}");
            for leaf in ["leaf1", "leaf2"] {
                let down = lab.control.interfaces(leaf).unwrap().0;
                assert_eq!(
                    lab.control.admin_state(leaf, &down).unwrap().as_deref(),
                    Some("enable"),
                    "{leaf} re-enabled"
                );
            }
            sets.iter()
                .flat_map(triples)
                .map(|(node, path, value)| (node.clone(), group_of(&node), path, value))
                .collect()
        }
    };
    ctl.stop().await;
    lab.shutdown().await;
    (decided, happened)
}

async fn dry_run_matches_run(profiles: &str, proto_only: &[&str]) -> Vec<Decision> {
    let (dry_decided, dry_lines) = play(profiles, Mode::DryRun, proto_only).await;
    let (run_decided, run_sets) = play(profiles, Mode::Gnmi, proto_only).await;
    assert_eq!(dry_lines, dry_decided, "dry-run printed what it decided, in order");
    assert_eq!(run_sets, run_decided, "run sent what it decided, in order");
    assert_eq!(dry_lines, run_sets, "dry-run and run: same targets, paths, values, order");
    run_sets
}

#[tokio::test]
async fn openconfig_fabric_one_uplink_both_and_recovery_dry_run_equals_run() {
    let sets = dry_run_matches_run("openconfig", &[]).await;
    let got: Vec<(&str, &str, &str)> = sets.iter().map(|d| (d.0.as_str(), d.2.as_str(), d.3.as_str())).collect();
    let p = "/interfaces/interface[name=Ethernet1]/config/enabled";
    assert_eq!(got, [("leaf2", p, "false"), ("leaf1", p, "false"), ("leaf2", p, "true"), ("leaf1", p, "true")]);
}

#[tokio::test]
async fn mixed_fabric_sets_each_leaf_in_its_own_profile() {
    let sets = dry_run_matches_run("leaf1=srl,leaf2=openconfig", &[]).await;
    assert_mixed(&sets);
}

/// A target without JSON_IETF (the sim refuses JSON_IETF Subscribes and Sets under this
/// fault, as such a device would): subscribed in PROTO, Set with string_val / bool_val.
#[tokio::test]
async fn leaves_without_json_ietf_subscribe_and_set_in_typed_values() {
    let sets = dry_run_matches_run("leaf1=srl,leaf2=openconfig", &["leaf1", "leaf2"]).await;
    assert_mixed(&sets);
}

fn assert_mixed(sets: &[Decision]) {
    let got: Vec<(&str, &str, &str)> = sets.iter().map(|d| (d.0.as_str(), d.2.as_str(), d.3.as_str())).collect();
    let oc = "/interfaces/interface[name=Ethernet1]/config/enabled";
    let srl = "/interface[name=ethernet-1/1]/admin-state";
    assert_eq!(
        got,
        [("leaf2", oc, "false"), ("leaf1", srl, "disable"), ("leaf2", oc, "true"), ("leaf1", srl, "enable")]
    );
}
