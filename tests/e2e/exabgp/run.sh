#!/usr/bin/env bash
# End-to-end: real ExaBGP running `opergroupd exabgp`, gobgpd as route server, in network
# namespaces. Needs root and tests/e2e/exabgp/setup.sh. OPERGROUPD=path/to/opergroupd.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lab.sh"
trap lab_down EXIT

passed=0 failed=0
check() { # NAME SECONDS CONDITION...
  local name=$1; shift
  if wait_for "$name" "$@"; then
    log "ok: $name"; passed=$((passed + 1))
  else
    log "FAILED: $name; route server paths:"; rib_paths >&2 || true
    failed=$((failed + 1))
  fi
}

lab_up
check "both hosts announce the VIP" 30 eval 'has_path_from $H1_ADDR && has_path_from $H2_ADDR'
check "best path is the primary (MED 100)" 5 best_is "$H1_ADDR"

service_down h1
check "primary's path leaves the RIB when its service fails" 10 no_path_from "$H1_ADDR"
check "best path moves to the secondary" 5 best_is "$H2_ADDR"

service_up "$NS_H1" h1
check "primary re-announces when its service recovers" 10 has_path_from "$H1_ADDR"
check "best path moves back to the primary" 5 best_is "$H1_ADDR"

# The route server restarts: ExaBGP reconnects and says `neighbor ... up`; opergroupd
# re-announces (the routes come back either way; the log shows opergroupd saw it).
ups_before=$(grep -c 'neighbor up: re-announcing' "$WORK/h1-exabgp.log" || true)
stop_gobgpd
start_gobgpd
check "both paths are back after the route server restarted" 60 eval 'has_path_from $H1_ADDR && has_path_from $H2_ADDR'
check "opergroupd saw the neighbor come back up" 5 eval \
  '(( $(grep -c "neighbor up: re-announcing" "$WORK/h1-exabgp.log") > ups_before ))'

pid=$(opergroupd_pid h1)
if [[ -n "$pid" ]]; then
  EXABGP_MAY_EXIT[h1]=1 # ExaBGP may stop once its only process is gone
  kill -TERM "$pid"
  check "SIGTERM of opergroupd withdraws the primary's path" 5 no_path_from "$H1_ADDR"
  check "opergroupd exited after SIGTERM" 5 eval "! kill -0 $pid 2>/dev/null"
  check "its stderr logged the withdraw" 2 grep -q 'withdraw route 198.51.100.1/32' "$WORK/h1-exabgp.log"
else
  log "FAILED: no opergroupd process under h1's exabgp"; failed=$((failed + 1))
fi
check "the secondary still carries the VIP" 2 best_is "$H2_ADDR"

if ((failed)); then
  log "exabgp log of h1:"; tail -n 40 "$WORK/h1-exabgp.log" >&2 || true
fi
echo "exabgp e2e: $passed passed, $failed failed"
((failed == 0))
