"""The loss experiment on the real fabric: cases 1-5, table, JSON, chart, Prometheus check.

Each case is one probe window (WINDOW_S at RATE pps each way between the clients) with
its event at EVENT_S. The uplinks "fail" on the spine side (spineN e1-1 down), so leaf1
sees carrier loss as from a cut cable, and its admin-state stays the controller's.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path

import conditions as c
import fabric
import promcheck
from fabric import nsx

RATE = 1000
WINDOW_S = 10.0
EVENT_S = 2.0
PASSWORD = "NokiaSrl1!"
HTTP = "127.0.0.1:9180"
ROOT = Path(__file__).resolve().parents[2]
OPERGROUPD = ROOT / "target" / "debug" / "opergroupd"
PROBER = ROOT / "target" / "debug" / "netns-prober"


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------ controller


def write_config(name, readiness, extra_readiness=""):
    lines = [
        "defaults: { username: admin, password-env: GNMI_PASSWORD, tls: { insecure: true } }",
        "targets:",
        *[f"  {l}: {{ address: \"{fabric.agent_addr(l)}\" }}" for l in ("leaf1", "leaf2")],
        "groups:",
    ]
    for leaf in ("leaf1", "leaf2"):
        lines += [
            f"  {leaf}-es1:",
            f"    target: {leaf}",
            '    uplinks: ["ethernet-1/{49..50}"]',
            '    downlinks: ["ethernet-1/1"]',
            "    down-delay: 0s",
            "    up-delay: 0s",
        ]
        if readiness:
            lines += [
                "    readiness:",
                '      bgp-neighbors: ["10.0.1.1", "10.0.1.2"]',
                "      min-established: 1",
                "      evpn-min-received-routes: 1",
                *extra_readiness.splitlines(),
            ]
    p = fabric.STATE / f"{name}.yaml"
    p.write_text("\n".join(lines) + "\n")
    return p


def config_accepted(path):
    r = subprocess.run([str(OPERGROUPD), "check", "--config", str(path)], capture_output=True, text=True,
                       env={**os.environ, "GNMI_PASSWORD": PASSWORD})
    return r.returncode == 0, (r.stderr or r.stdout).strip()


def http_get(path):
    code = "import sys,urllib.request as u;sys.stdout.write(u.urlopen(sys.argv[1],timeout=5).read().decode())"
    r = nsx("mgmt", "python3", "-c", code, f"http://{path}", check=False)
    return r.stdout if r.returncode == 0 else None


class Controller:
    """opergroupd `run` in og-mgmt; its log is opergroupd-case<N>.log (kept after the run)."""

    def __init__(self, config, case):
        self.log = open(fabric.STATE / f"opergroupd-case{case}.log", "w")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", fabric.MGMT, str(OPERGROUPD), "run", "--config", str(config), "--http", HTTP],
            stdout=self.log, stderr=self.log, env={**os.environ, "GNMI_PASSWORD": PASSWORD})
        c.wait_until(f"opergroupd (case {case}) to sync to leaf1 and leaf2", [self.synced()], 30)

    def status(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"opergroupd exited {self.proc.returncode}; see {self.log.name}")
        doc = http_get(f"{HTTP}/status")
        return json.loads(doc) if doc else None

    def synced(self):
        def check(look):
            doc = self.status()
            if doc is None:
                return False, "/status not answering"
            states = {t["name"]: t.get("state") for t in doc.get("targets", [])}
            return states == {"leaf1": "synced", "leaf2": "synced"}, f"targets {states}"
        return c.Condition("opergroupd: leaf1 and leaf2 synced", check)

    def group(self, health, name="leaf1-es1"):
        """opergroupd sees the group as `health`, and the downlink as it wants it (no Set pending)."""
        def check(look):
            doc = self.status()
            g = next((g for g in (doc or {}).get("groups", []) if g["name"] == name), None)
            if g is None:
                return False, "no such group in /status"
            links = [(d["name"], d.get("desired"), d.get("observed")) for d in g.get("downlinks", [])]
            settled = all(want is not None and want == have for _, want, have in links)
            return g.get("oper_state") == health and settled, (
                f"oper-state {g.get('oper_state')} ({g.get('reason')}); downlinks (desired, observed) {links}")
        return c.Condition(f"opergroupd: {name} {health}, downlinks as desired", check)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)


# ------------------------------------------------------------------ fabric events


def uplinks(up):
    """leaf1's two uplinks at once (both spine-side ports in parallel, like one failure)."""
    procs = [subprocess.Popen(["ip", "netns", "exec", fabric.ns(s), "ip", "link", "set", "e1-1", "up" if up else "down"])
             for s in fabric.SPINES]
    if any(p.wait() != 0 for p in procs):
        raise RuntimeError("could not set leaf1's uplinks " + ("up" if up else "down"))


# ------------------------------------------------------------------ the states between cases
#
# Every case starts from a state that is waited for explicitly (each condition with a
# deadline; a timeout names what is not there and prints the FRR/OVS state), then a 1 s
# probe that loses nothing. Nothing is assumed from the case before.

def leaf1_in_service():
    """leaf1 fully back and carrying client1: uplinks and both iBGP sessions up (both ends),
    EVPN routes from both spines, its downlink enabled, the bond on its primary (eth1)."""
    return [*c.leaf_healthy("leaf1"), c.admin_up("leaf1", "e1-1"), c.bond_active("eth1")]


def leaf1_isolated():
    """leaf1's uplinks down and its overlay gone on both ends (hold timers run out), its
    downlink disabled by the controller, client1 on leaf2."""
    return [*c.leaf_overlay("leaf1", established=False), c.admin_up("leaf1", "e1-1", up=False),
            c.bond_active("eth2"), *c.leaf_healthy("leaf2", isolated=["leaf1"])]


def settle(what, conds, timeout=60):
    took = c.wait_until(what, conds, timeout)
    steady()
    return took


# ------------------------------------------------------------------ probing


def probe(event, window_s=WINDOW_S):
    """Runs one window; `event()` at EVENT_S. Returns both probers' results and the event time."""
    start_ms = int(time.time() * 1000) + 500
    c1, c2 = fabric.CLIENTS["client1"], fabric.CLIENTS["client2"]
    procs = {}
    for name, me, peer in (("client1", c1, c2), ("client2", c2, c1)):
        procs[name] = subprocess.Popen(
            ["ip", "netns", "exec", fabric.ns(name), str(PROBER), "--bind", f"{me}:9000", "--peer", f"{peer}:9000",
             "--rate", str(RATE), "--duration-ms", str(int(window_s * 1000)), "--start-at", str(start_ms)],
            stdout=subprocess.PIPE, text=True)
    if event:
        time.sleep(max(0.0, start_ms / 1000 + EVENT_S - time.time()))
        event_ms = int(time.time() * 1000)
        event()
    else:
        event_ms = start_ms
    out = {}
    for name, p in procs.items():
        stdout, _ = p.communicate(timeout=window_s + 10)
        if p.returncode != 0:
            raise RuntimeError(f"prober in {name} exited {p.returncode}")
        out[name] = json.loads(stdout)
    return out, start_ms, event_ms - start_ms


def direction(sender, receiver):
    sent = sender["sent"]
    got = {seq for seq, _ in receiver["received"]}
    longest = run = 0
    for seq in range(sent):
        run = 0 if seq in got else run + 1
        longest = max(longest, run)
    return {"sent": sent, "lost": sent - len(got & set(range(sent))), "longest_gap_ms": round(longest * 1000 / RATE),
            "received": sorted(receiver["received"])}


def agent_sets(since_unix_ms):
    """leaf1's downlink Sets as the agent applied them: (ms since window start, up?)."""
    out = []
    text = (fabric.STATE / "agent-leaf1.log").read_text()
    for line in text.splitlines():
        m = re.match(r"(\S+Z).*Set applied.*\"e1-1\", (true|false)", line)
        if m:
            t = datetime.fromisoformat(m.group(1).replace("Z", "+00:00")).timestamp() * 1000
            if t >= since_unix_ms:
                out.append((round(t - since_unix_ms), m.group(2) == "true"))
    return out


def steady(timeout=20):
    """Waits until a one-second probe loses nothing both ways (the fabric has settled)."""

    def check(look):
        res, _, _ = probe(None, window_s=1.0)
        lost = {f"{a}->{b}": direction(res[a], res[b])["lost"] for a, b in (("client1", "client2"),
                                                                            ("client2", "client1"))}
        return not any(lost.values()), f"the last probe lost {lost} of {RATE} each"

    mac_tables = [(f"{l}: vtysh show evpn mac vni {fabric.VNI}",
                   lambda l=l: fabric.vtysh(l, f"show evpn mac vni {fabric.VNI}")) for l in ("leaf1", "leaf2", "leaf3")]
    c.wait_until("a clean 1 s probe", [c.Condition(f"clients: a 1 s probe at {RATE} pps each way loses nothing",
                                                   check, [("client1: ovs-appctl bond/show bond0", fabric.bond_show),
                                                           *mac_tables])], timeout)


def measure(case, title, event, event_label):
    log(f"case {case}: {title}")
    res, start, event_at = probe(event)
    result = {
        "case": case, "title": title, "event": event_label, "event_at_ms": event_at,
        "client2_to_client1": direction(res["client2"], res["client1"]),
        "client1_to_client2": direction(res["client1"], res["client2"]),
        "downlink_sets": [{"at_ms": t, "enable": up} for t, up in agent_sets(start)],
    }
    a, b = result["client2_to_client1"], result["client1_to_client2"]
    log(f"  lost c2->c1 {a['lost']} (gap {a['longest_gap_ms']} ms), c1->c2 {b['lost']} (gap {b['longest_gap_ms']} ms)")
    return result


# ------------------------------------------------------------------ the cases


def run(args, agent):
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    wanted = {int(c) for c in args.cases.split(",")}
    t0 = time.time()
    log("building the fabric (FRR + Linux in og-* namespaces)")
    facts = fabric.up(agent)
    log(f"fabric up in {facts['build_s']} s; client1 dual-homing: {facts['bond']}")
    prom = promcheck.Prometheus(fabric.STATE / "prometheus", HTTP)
    ready_cfg = write_config("readiness", True)
    plain_cfg = write_config("no-readiness", False)
    cases = []

    # 1. No controller: leaf1 loses both uplinks, its downlink stays up.
    settle("case 1's start: leaf1 in service", leaf1_in_service())
    cases.append(measure(1, "uplinks down, no controller", lambda: uplinks(False), "leaf1 uplinks down"))
    uplinks(True)

    # 2. opergroupd enforcing: the downlink goes down, the bond moves to leaf2.
    ctl = Controller(ready_cfg, 2)
    settle("case 2's start: leaf1 back in service after case 1", leaf1_in_service() + [ctl.group("healthy")])
    cases.append(measure(2, "uplinks down, opergroupd enforcing", lambda: uplinks(False), "leaf1 uplinks down"))
    c.wait_until("case 2's end: leaf1 isolated, its downlink disabled", leaf1_isolated(), 30)
    ctl.stop()

    # 3. Uplinks return, opergroupd without readiness: re-enabled at once, before EVPN is back.
    ctl = Controller(plain_cfg, 3)
    settle("case 3's start: leaf1 isolated", leaf1_isolated() + [ctl.group("unhealthy")])
    cases.append(measure(3, "uplinks return, no readiness", lambda: uplinks(True), "leaf1 uplinks up"))
    c.wait_until("case 3's end: leaf1 back in service", leaf1_in_service(), 60)
    uplinks(False)
    c.wait_until("after case 3: leaf1 isolated again, its downlink disabled", leaf1_isolated(), 30)
    ctl.stop()

    # 4. Uplinks return, opergroupd with readiness: re-enabled once iBGP and EVPN routes are in.
    ctl = Controller(ready_cfg, 4)
    settle("case 4's start: leaf1 isolated", leaf1_isolated() + [ctl.group("unhealthy")])
    cases.append(measure(4, "uplinks return, readiness on iBGP + EVPN routes", lambda: uplinks(True),
                         "leaf1 uplinks up"))
    settle("case 4's end: leaf1 back in service", leaf1_in_service())
    prom_report = prom.check_dashboard(ROOT / "deploy" / "grafana" / "opergroupd.json")
    ctl.stop()

    # 5. Reboot-like: leaf1's bgpd restarts with the downlink enabled; needs when-not-ready: disable.
    skipped = None
    case5_cfg = write_config("not-ready-disable", True, "      when-not-ready: disable\n      not-ready-delay: 0s")
    ok, why = config_accepted(case5_cfg)
    if 5 not in wanted:
        skipped = "not asked for (--cases)"
    elif not ok:
        skipped = f"opergroupd check refuses readiness.when-not-ready (not landed yet): {why.splitlines()[-1]}"
    else:
        ctl = Controller(case5_cfg, 5)
        settle("case 5's start: leaf1 in service", leaf1_in_service() + [ctl.group("healthy")])

        def restart_bgpd():
            fabric.stop_bgpd("leaf1")
            fabric.start_bgpd("leaf1")

        cases.append(measure(5, "leaf1 bgpd restarts, when-not-ready: disable", restart_bgpd, "leaf1 bgpd restart"))
        c.wait_until("case 5's end: leaf1 back in service", leaf1_in_service(), 60)
        ctl.stop()
    if skipped:
        log(f"case 5 SKIPPED: {skipped}")
    prom.stop()

    report = {"rate_pps": RATE, "window_s": WINDOW_S, "event_at_s": EVENT_S, "dual_homing": facts["bond"],
              "fabric_build_s": facts["build_s"], "cases": cases, "case5_skipped": skipped,
              "prometheus": prom_report, "total_s": round(time.time() - t0, 1)}
    print_table(report)
    (out / "loss.json").write_text(json.dumps(report, indent=1))
    import chart
    chart.draw(report, out / "loss.png")
    log(f"wrote {out / 'loss.json'} and {out / 'loss.png'}")
    if args.chart:
        shutil.copy(out / "loss.png", args.chart)
    return verdict(report)


def print_table(report):
    print(f"\nLoss on the real fabric ({report['rate_pps']} pps each way, {report['window_s']:.0f} s windows, "
          f"event at {report['event_at_s']:.0f} s; dual-homing: {report['dual_homing']})")
    print("| case | event | c2→c1 lost | c2→c1 longest gap | c1→c2 lost | c1→c2 longest gap |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for c in report["cases"]:
        a, b = c["client2_to_client1"], c["client1_to_client2"]
        print(f"| {c['case']}. {c['title']} | {c['event']} | {a['lost']} | {a['longest_gap_ms']} ms | "
              f"{b['lost']} | {b['longest_gap_ms']} ms |")
    if report["case5_skipped"]:
        print(f"| 5. leaf1 reboot-like | skipped: {report['case5_skipped']} | | | | |")
    p = report["prometheus"]
    print(f"\nPrometheus: {p['checked']} dashboard expressions evaluated, {len(p['failures'])} failed")


def lost(case):
    return case["client2_to_client1"]["lost"] + case["client1_to_client2"]["lost"]


def verdict(report):
    by = {c["case"]: c for c in report["cases"]}
    problems = []
    if not lost(by[1]) >= 10 * lost(by[2]):
        problems.append(f"case 2 lost {lost(by[2])}, not 10x fewer than case 1's {lost(by[1])}")
    if not lost(by[4]) < lost(by[3]):
        problems.append(f"case 4 lost {lost(by[4])}, not fewer than case 3's {lost(by[3])}")
    if lost(by[1]) < RATE:
        problems.append(f"case 1 lost only {lost(by[1])}: the blackhole did not happen, the experiment proves nothing")
    for n, enable in ((2, False), (3, True), (4, True)):
        if not any(s["enable"] == enable and s["at_ms"] <= report["window_s"] * 1000 for s in by[n]["downlink_sets"]):
            problems.append(f"case {n}: no {'enable' if enable else 'disable'} Set on leaf1 inside the window")
    problems += [f"prometheus: {f}" for f in report["prometheus"]["failures"]]
    for p in problems:
        print(f"FAIL: {p}")
    print("experiment: " + ("FAILED" if problems else "passed (case 2 <= case 1 / 10, case 4 < case 3)"))
    return 1 if problems else 0
