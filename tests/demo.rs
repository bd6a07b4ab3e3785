//! `opergroupd demo` is README's first command: it must run to the end, narrate the three
//! tutorial scenarios and the segment hold and exit 0 (it exits 2 when a step misses its deadline).

use std::process::Command;

#[test]
fn the_demo_plays_the_four_scenarios_and_exits_0() {
    let out = Command::new(env!("CARGO_BIN_EXE_opergroupd")).arg("demo").output().expect("run the demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    for want in [
        "Scenario 1: leaf1 loses one uplink",
        "no Set.",
        "Set /interface[name=ethernet-1/1]/admin-state=disable on leaf1",
        "fabric: leaf1 ethernet-1/1 admin-state disable",
        "not-ready: 2/2 uplinks up; 0/2 iBGP established",
        "Set /interface[name=ethernet-1/1]/admin-state=enable on leaf1",
        "fabric: leaf1 ethernet-1/1 admin-state enable",
        "Scenario 4: leaf1 fails again",
        "controller: leaf2-es1 held, no Set: last member of es1 able to forward: leaf1-es1 is unhealthy",
        "fabric: leaf2 ethernet-1/1 admin-state enable: client1 keeps one link",
        "Done: 3 Sets in all",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in:\n{stdout}");
    }
    // Order: the enable comes only after readiness was reported missing.
    let not_ready = stdout.find("not-ready").unwrap();
    let enable = stdout.find("admin-state=enable").unwrap();
    assert!(not_ready < enable, "{stdout}");
    assert!(!stdout.contains("on leaf2"), "leaf2 must never be Set: {stdout}");
}

/// The demo's warnings land where they happen in the narration, not after it: read on one
/// pipe, the segment hold's WARN comes before "Done". (Logs written by a thread of their
/// own, as `run` does, came after "Done" in about half the runs.)
#[test]
fn the_demo_warnings_interleave_with_the_narration() {
    let (mut read, write) = std::io::pipe().expect("pipe");
    let mut child = Command::new(env!("CARGO_BIN_EXE_opergroupd"))
        .arg("demo")
        .env_remove("RUST_LOG")
        .stdout(write.try_clone().expect("dup"))
        .stderr(write)
        .spawn()
        .expect("run the demo");
    let mut all = String::new();
    std::io::Read::read_to_string(&mut read, &mut all).expect("read the demo's output");
    assert!(child.wait().expect("wait").success(), "{all}");
    let warn = all.find("held: disable not sent").unwrap_or_else(|| panic!("no hold WARN in:\n{all}"));
    let done = all.find("Done: 3 Sets in all").unwrap_or_else(|| panic!("no Done in:\n{all}"));
    assert!(warn < done, "the WARN came after the narration ended:\n{all}");
}
