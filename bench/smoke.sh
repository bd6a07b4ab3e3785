#!/usr/bin/env bash
# CI smoke run of the end-to-end benchmark, so it cannot rot: 50 leaves, 50 reaction
# events (while /status is scraped), 10 recoveries with readiness and a 50-leaf storm, on
# two sims of 25 leaves (as 10,000 leaves run on two), on
# debug builds (CI has built them already; a release build would cost minutes); then 20
# leaves with the pygnmi baseline peer (bench/peers/) beside opergroupd, so the peer cannot
# rot either. It asserts correctness only: every event got its Set, no enable before
# readiness, exactly one Set per leaf in the storm, a clean SIGTERM exit, the peer synced
# and kept every leaf.
# Timings are printed, never asserted (debug build, shared CI).
#
#   bench/smoke.sh            # from anywhere; exit 0 = correct
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked -p opergroupd -p fabric-sim -p opergroupd-bench
# The peer runs in the project's venv (scripts/test creates the same one).
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r tests/python/requirements.txt
target/debug/opergroupd-bench --leaves 50 --leaves-per-sim 25 --events 50 --recovery-events 10 --idle-secs 1 --scrape-status "$@"
target/debug/opergroupd-bench --leaves 20 --events 20 --recovery-events 5 --idle-secs 1 --peer pygnmi "$@"
# The safety stage (a cap that holds nothing, a segment per leaf pair) in a debug build,
# where the loop checks its kept view of the fabric against a full re-read every round.
target/debug/opergroupd-bench --leaves 50 --leaves-per-sim 25 --events 20 --recovery-events 2 --idle-secs 1 --max-disabled 100% --segment-pairs "$@"
