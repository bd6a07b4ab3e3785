#!/usr/bin/env bash
# Anycast failover time: from killing the primary's service to the route server's best
# path for the VIP moving to the secondary (and back after recovery). Same lab as run.sh.
# Usage: OPERGROUPD=target/release/opergroupd bash tests/e2e/exabgp/failover-bench.sh [ROUNDS]
# (OPERGROUPD may be relative to the working directory; it is made absolute for ExaBGP.)
# Timer knobs (env): INTERVAL (1s) FAST_INTERVAL (200ms) RISE (2) FALL (2).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lab.sh"
trap lab_down EXIT
rounds=${1:-10}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# Poll the route server as fast as the gobgp CLI answers; print elapsed ms since $1.
time_until() { # START_MS DEADLINE_S CONDITION...
  local start=$1 deadline=$(( $(now_ms) + $2 * 1000 )); shift 2
  until "$@"; do
    if lab_broken; then echo "lab broken"; return 1; fi
    (( $(now_ms) < deadline )) || { echo timeout; return 1; }
  done
  echo $(( $(now_ms) - start ))
}

lab_up
wait_for "both hosts announce" 30 eval 'has_path_from $H1_ADDR && has_path_from $H2_ADDR'
wait_for "primary is best" 5 best_is "$H1_ADDR"

fail=() back=()
for ((i = 1; i <= rounds; i++)); do
  # Start each round at a random point of the primary's check interval.
  sleep "0.$(( RANDOM % 10 ))"
  t0=$(now_ms); service_down h1
  fail+=("$(time_until "$t0" 20 best_is "$H2_ADDR")")
  t0=$(now_ms); service_up "$NS_H1" h1
  back+=("$(time_until "$t0" 20 best_is "$H1_ADDR")")
  log "round $i: failover ${fail[-1]} ms, failback ${back[-1]} ms"
done

stats() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {printf "min %d ms, median %d ms, max %d ms (n=%d)", v[1], v[int((NR+1)/2)], v[NR], NR}'; }
echo "settings: interval ${INTERVAL:-1s}, fast-interval ${FAST_INTERVAL:-200ms}, rise ${RISE:-2}, fall ${FALL:-2}"
echo "failover (service killed -> best path on secondary): $(stats "${fail[@]}")"
echo "failback (service restarted -> best path on primary): $(stats "${back[@]}")"
