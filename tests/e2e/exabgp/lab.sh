# The ExaBGP lab, sourced by run.sh and failover-bench.sh.
#
# Three network namespaces made here and removed on exit (their addresses exist only
# inside them; TEST-NET ranges):
#   rs  gobgpd, AS 65000, 192.0.2.1 (to h1) and 192.0.2.5 (to h2), gRPC API on its 127.0.0.1:50051
#   h1  ExaBGP AS 65001 at 192.0.2.2, running `opergroupd exabgp` (primary, MED 100)
#   h2  ExaBGP AS 65001 at 192.0.2.6, running `opergroupd exabgp` (secondary, MED 200)
# Daemons are started with `ip netns exec` directly (it execs), so $! is their pid.
# Both hosts announce the VIP 198.51.100.1/32 with next-hop self while an HTTP server on
# their own 127.0.0.1:8080 answers. Same neighbor AS, so the route server compares MEDs.

VIP=198.51.100.1/32
H1_ADDR=192.0.2.2
H2_ADDR=192.0.2.6
TAG=og$$
NS_RS=$TAG-rs
NS_H1=$TAG-h1
NS_H2=$TAG-h2
WORK=$(mktemp -d /tmp/opergroupd-e2e.XXXXXX)
PIDS=()

log() { echo "[$(date +%T.%3N)] $*" >&2; }

lab_down() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  ip netns del "$NS_RS" 2>/dev/null || true
  ip netns del "$NS_H1" 2>/dev/null || true
  ip netns del "$NS_H2" 2>/dev/null || true
  if [[ -n "${KEEP_LOGS:-}" ]]; then log "logs kept in $WORK"; else rm -rf "$WORK"; fi
}

in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# The ExaBGP daemons started so far, and those allowed to be gone (run.sh stops one).
EXABGPS=()
declare -A EXABGP_MAY_EXIT=()

# Fail fast when the lab itself broke: an ExaBGP that exited (bad config, a program it
# cannot run) is reported with its own messages instead of a wait running into its timeout.
lab_broken() {
  local name var
  for name in "${EXABGPS[@]}"; do
    var="EXABGP_PID_$name"
    [[ -n "${EXABGP_MAY_EXIT[$name]:-}" ]] && continue
    if ! kill -0 "${!var}" 2>/dev/null; then
      log "ExaBGP on $name exited; its log ($WORK/$name-exabgp.log) ends with:"
      tail -n 15 "$WORK/$name-exabgp.log" >&2 || true
      return 0
    fi
  done
  return 1
}

# wait_for DESCRIPTION SECONDS COMMAND...: poll every 50 ms until COMMAND succeeds.
wait_for() {
  local what=$1 secs=$2; shift 2
  local deadline=$(( $(date +%s%N) + secs * 1000000000 ))
  until "$@"; do
    if lab_broken; then
      log "lab broken while waiting for: $what"
      exit 1
    fi
    if (( $(date +%s%N) > deadline )); then
      log "TIMEOUT after ${secs}s waiting for: $what"
      return 1
    fi
    sleep 0.05
  done
}

# The route server's paths for the VIP as "nexthop med best" lines.
rib_paths() {
  in_ns "$NS_RS" gobgp -u 127.0.0.1 -p 50051 global rib -j 2>/dev/null | python3 -c '
import json, sys
vip = sys.argv[1]
try:
    rib = json.load(sys.stdin)
except ValueError:
    sys.exit(0)
for path in rib.get(vip, []):
    nh, med = "?", "-"
    for a in path.get("attrs", []):
        if a.get("type") == 3: nh = a.get("nexthop")
        if a.get("type") == 4: med = a.get("metric")
    print(nh, med, "best" if path.get("best") else "-")
' "$VIP"
}

gobgpd_ready() { in_ns "$NS_RS" gobgp -u 127.0.0.1 -p 50051 global >/dev/null 2>&1; }
best_nexthop() { rib_paths | awk '$3 == "best" {print $1}'; }
has_path_from() { rib_paths | awk '{print $1}' | grep -qx "$1"; }
no_path_from() { ! has_path_from "$1"; }
best_is() { [[ "$(best_nexthop)" == "$1" ]]; }
rib_empty() { [[ -z "$(rib_paths)" ]]; }

service_up() { # NS
  ip netns exec "$1" python3 -m http.server 8080 --bind 127.0.0.1 >"$WORK/$1-http.log" 2>&1 &
  eval "HTTP_PID_$2=$!"
  PIDS+=("$!")
}

service_down() { # HOSTVAR: kill the HTTP server we started for it
  local var="HTTP_PID_$1"
  kill "${!var}" 2>/dev/null || true
  wait "${!var}" 2>/dev/null || true
}

write_host() { # NAME NS ADDR MED
  local name=$1 ns=$2 addr=$3 med=$4
  cat >"$WORK/$name.yaml" <<YAML
services:
  vip:
    prefix: $VIP
    next-hop: self
    med: $med
    checks:
      - http: http://127.0.0.1:8080/
        status: 200
    interval: ${INTERVAL:-1s}
    fast-interval: ${FAST_INTERVAL:-200ms}
    timeout: 500ms
    rise: ${RISE:-2}
    fall: ${FALL:-2}
YAML
  cat >"$WORK/$name.conf" <<CONF
process opergroupd {
    run $OPERGROUPD exabgp --config $WORK/$name.yaml;
    encoder text;
}
neighbor 192.0.2.$(( ${addr##*.} - 1 )) {
    router-id $addr;
    local-address $addr;
    local-as 65001;
    peer-as 65000;
    hold-time 9;
    api {
        processes [ opergroupd ];
        neighbor-changes;
    }
}
CONF
}

start_exabgp() { # NAME NS
  local name=$1 ns=$2
  ip netns exec "$ns" env exabgp.daemon.user=root exabgp.daemon.daemonize=false \
    exabgp.log.destination=stderr exabgp.api.cli=false exabgp.api.respawn=false \
    exabgp "$WORK/$name.conf" >"$WORK/$name-exabgp.log" 2>&1 &
  eval "EXABGP_PID_$name=$!"
  PIDS+=("$!")
  EXABGPS+=("$name")
}

# The pid of `opergroupd exabgp` that the host's ExaBGP started.
opergroupd_pid() { # NAME
  local var="EXABGP_PID_$1"
  pgrep -P "${!var}" -f 'opergroupd exabgp' | head -n1 || true
}

start_gobgpd() {
  ip netns exec "$NS_RS" gobgpd -f "$WORK/gobgpd.toml" --api-hosts 127.0.0.1:50051 -p --pprof-disable \
    >>"$WORK/gobgpd.log" 2>&1 &
  GOBGPD_PID=$!
  PIDS+=("$!")
  wait_for "gobgpd API" 10 gobgpd_ready
}

stop_gobgpd() {
  kill "$GOBGPD_PID"; wait "$GOBGPD_PID" 2>/dev/null || true
}

# OPERGROUPD as an absolute path: ExaBGP does not run a `process` given by a relative path
# ("can not locate the the program"). A bare name is looked up on PATH.
resolve_opergroupd() {
  local given=${OPERGROUPD:?set OPERGROUPD to the opergroupd binary, e.g. OPERGROUPD=target/release/opergroupd}
  local bin=$given
  if [[ $bin != */* ]]; then
    bin=$(command -v "$bin") || { log "OPERGROUPD=$given: not found on PATH"; return 1; }
  fi
  if [[ ! -f $bin || ! -x $bin ]]; then
    log "OPERGROUPD=$given: no executable there (build it first: cargo build --release -p opergroupd)"
    return 1
  fi
  OPERGROUPD=$(realpath "$bin")
}

lab_up() {
  resolve_opergroupd
  ip netns add "$NS_RS"; ip netns add "$NS_H1"; ip netns add "$NS_H2"
  ip link add "$TAG-r1" type veth peer name "$TAG-h1"
  ip link add "$TAG-r2" type veth peer name "$TAG-h2"
  ip link set "$TAG-r1" netns "$NS_RS"; ip link set "$TAG-r2" netns "$NS_RS"
  ip link set "$TAG-h1" netns "$NS_H1"; ip link set "$TAG-h2" netns "$NS_H2"
  in_ns "$NS_RS" ip addr add 192.0.2.1/30 dev "$TAG-r1"
  in_ns "$NS_RS" ip addr add 192.0.2.5/30 dev "$TAG-r2"
  in_ns "$NS_H1" ip addr add "$H1_ADDR/30" dev "$TAG-h1"
  in_ns "$NS_H2" ip addr add "$H2_ADDR/30" dev "$TAG-h2"
  local ns
  for ns in "$NS_RS" "$NS_H1" "$NS_H2"; do in_ns "$ns" ip link set lo up; done
  in_ns "$NS_RS" ip link set "$TAG-r1" up; in_ns "$NS_RS" ip link set "$TAG-r2" up
  in_ns "$NS_H1" ip link set "$TAG-h1" up; in_ns "$NS_H2" ip link set "$TAG-h2" up

  cat >"$WORK/gobgpd.toml" <<TOML
[global.config]
  as = 65000
  router-id = "192.0.2.1"
  port = 179
[[neighbors]]
  [neighbors.config]
    neighbor-address = "$H1_ADDR"
    peer-as = 65001
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 9
    keepalive-interval = 3
[[neighbors]]
  [neighbors.config]
    neighbor-address = "$H2_ADDR"
    peer-as = 65001
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 9
    keepalive-interval = 3
TOML
  start_gobgpd

  write_host h1 "$NS_H1" "$H1_ADDR" 100
  write_host h2 "$NS_H2" "$H2_ADDR" 200
  service_up "$NS_H1" h1
  service_up "$NS_H2" h2
  start_exabgp h1 "$NS_H1"
  start_exabgp h2 "$NS_H2"
}
