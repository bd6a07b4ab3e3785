#!/usr/bin/env bash
# What the controller's CPU in a storm is made of: user and system time, and its system
# calls by kind, counted with perf's tracepoints (no sampling) over one opergroupd-bench
# storm.
#
#   bash bench/profile/storm-syscalls.sh [LEAVES]
#
# LEAVES (default 5000) is the fabric size. Counting starts when the bench prints its
# recovery line (the storm comes next) and stops when it prints the storm's line: the
# storm, its 1 s quiet window, and the bench's two /metrics scrapes around them (~0.1 s of
# the status thread each at 5,000 groups: task-clock and user time include them, the
# system calls hardly; the bench's own storm CPU figure does not). The idle heartbeats of
# that time are in it too (at 5,000 leaves ~1,500 recvfrom and ~300 epoll_wait a second). Needs root (tracepoints) and release binaries
# (cargo build --release -p opergroupd -p fabric-sim -p opergroupd-bench).
set -euo pipefail
leaves=${1:-5000}
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mktemp -d)
trap 'kill "$bench" 2>/dev/null || true; wait "$bench" 2>/dev/null || true; rm -rf "$out"' EXIT

"$root/target/release/opergroupd-bench" --leaves "$leaves" --events 10 --recovery-events 1 --idle-secs 2 \
    >"$out/bench.txt" 2>&1 &
bench=$!
# The storm follows the recovery line; wait for it, 300 s at most.
for _ in $(seq 1 6000); do
    grep -q "recovery:" "$out/bench.txt" && break
    kill -0 "$bench" 2>/dev/null || { cat "$out/bench.txt"; echo "the bench ended before its storm" >&2; exit 1; }
    sleep 0.05
done
grep -q "recovery:" "$out/bench.txt" || { echo "no recovery line within 300 s" >&2; exit 1; }
pid=$(pgrep -n -x opergroupd)
ticks() { awk '{print $14, $15}' "/proc/$pid/stat"; }
read -r u0 s0 < <(ticks)
perf stat -x, -e 'task-clock,raw_syscalls:sys_enter,syscalls:sys_enter_recvfrom,syscalls:sys_enter_writev,syscalls:sys_enter_write,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_futex' \
    -p "$pid" -- bash -c "until grep -q 'storm:' '$out/bench.txt'; do sleep 0.05; done" 2>"$out/perf.txt"
read -r u1 s1 < <(ticks)
hz=$(getconf CLK_TCK)
wait "$bench" || true
grep "storm:" "$out/bench.txt"
echo "opergroupd from the storm's start to its line, ${leaves} failing leaves:"
awk -F, -v n="$leaves" '{ printf "  %-32s %12s  (%.2f per leaf)\n", $3, $1, $1 / n }' "$out/perf.txt"
awk -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v hz="$hz" -v n="$leaves" 'BEGIN {
    printf "  system %d ms (%.0f us per leaf); user %d ms, with the /metrics scrapes\n", s * 1000 / hz, s * 1e6 / hz / n, u * 1000 / hz }'
