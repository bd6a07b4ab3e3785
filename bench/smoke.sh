#!/usr/bin/env bash
# CI smoke run of the end-to-end benchmark, so it cannot rot: 50 leaves, 50 reaction
# events, 10 recoveries with readiness and a 50-leaf storm, on debug builds (CI has built
# them already; a release build would cost minutes). It asserts correctness only:
# every event got its Set, no enable before readiness, exactly one Set per leaf in the
# storm, a clean SIGTERM exit. Timings are printed, never asserted (debug build, shared CI).
#
#   bench/smoke.sh            # from anywhere; exit 0 = correct
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked -p opergroupd -p fabric-sim -p opergroupd-bench
exec target/debug/opergroupd-bench --leaves 50 --events 50 --recovery-events 10 --idle-secs 1 "$@"
