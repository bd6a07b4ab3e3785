//! Real ExaBGP + gobgpd in network namespaces (tests/e2e/exabgp/run.sh). Needs root and
//! the Debian packages from tests/e2e/exabgp/setup.sh. Skips with a printed reason
//! otherwise, unless OPERGROUPD_E2E_REQUIRED=1 (CI), where a skip is a failure.

use std::process::Command;

fn missing_prerequisite() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (network namespaces need it)".into());
    }
    for tool in ["exabgp", "gobgpd", "gobgp", "ip", "python3"] {
        let found = Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output();
        if !found.is_ok_and(|o| o.status.success()) {
            return Some(format!("`{tool}` not installed (run tests/e2e/exabgp/setup.sh)"));
        }
    }
    None
}

#[test]
fn exabgp_announces_fails_over_and_withdraws_on_sigterm() {
    if let Some(why) = missing_prerequisite() {
        assert!(std::env::var("OPERGROUPD_E2E_REQUIRED").as_deref() != Ok("1"), "e2e required but: {why}");
        println!("SKIPPED exabgp e2e: {why}");
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/exabgp/run.sh");
    let out = Command::new("bash")
        .arg(script)
        .env("OPERGROUPD", env!("CARGO_BIN_EXE_opergroupd"))
        .output()
        .expect("run the e2e script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "e2e failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("12 passed, 0 failed"), "stdout:\n{stdout}\nstderr:\n{stderr}");
}

/// BENCHMARKS.md's anycast failover command as written (one round, with the binary this
/// test built), from the repository root and with OPERGROUPD relative to it: ExaBGP cannot
/// run a relative program path, so the script must resolve it.
#[test]
fn the_documented_failover_bench_runs_with_a_relative_path() {
    if let Some(why) = missing_prerequisite() {
        assert!(std::env::var("OPERGROUPD_E2E_REQUIRED").as_deref() != Ok("1"), "e2e required but: {why}");
        println!("SKIPPED exabgp failover bench: {why}");
        return;
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_opergroupd"));
    let relative = bin.strip_prefix(root).expect("the test binary is under the repository");
    let out = Command::new("bash")
        .args(["tests/e2e/exabgp/failover-bench.sh", "1"])
        .current_dir(root)
        .env("OPERGROUPD", relative)
        .output()
        .expect("run the bench script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("failover (service killed -> best path on secondary): min"), "stdout:\n{stdout}");
}
