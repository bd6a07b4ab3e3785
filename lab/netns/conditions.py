"""Explicit wait conditions on the lab fabric, each with a deadline.

A wait names every condition it needs. It polls them all together until they hold at
once; at its deadline it fails with each unmet condition, what was last seen for it, and
the FRR/kernel/OVS state that explains it (vtysh, ip, ovs-appctl output), so a failed run
says exactly what was not back instead of "timed out".

One poll is a `Look`: each query (one vtysh JSON dump per node, one bond/show) runs at
most once per look, however many conditions read it.
"""

import json
import time

import fabric

POLL_S = 0.1


class Look:
    """One look at the fabric; queries are memoised for the look's duration."""

    def __init__(self):
        self._memo = {}

    def _once(self, key, fn):
        if key not in self._memo:
            self._memo[key] = fn()
        return self._memo[key]

    def neighbors(self, node):
        """`show bgp neighbors json` of a node: {} while bgpd does not answer."""
        def get():
            try:
                return json.loads(fabric.vtysh(node, "show bgp neighbors json") or "{}")
            except json.JSONDecodeError:
                return {}
        return self._once(("neighbors", node), get)

    def vni(self, leaf):
        def get():
            try:
                return json.loads(fabric.vtysh(leaf, f"show evpn vni {fabric.VNI} json") or "{}")
            except json.JSONDecodeError:
                return {}
        return self._once(("vni", leaf), get)

    def bond(self):
        return self._once("bond", fabric.bond_state)

    def link(self, node, ifname):
        def get():
            r = fabric.nsx(node, "ip", "-j", "link", "show", "dev", ifname, check=False)
            return json.loads(r.stdout)[0] if r.returncode == 0 else None
        return self._once(("link", node, ifname), get)


class Condition:
    """`check(look)` returns (holds, what was seen); `diagnose` lists (title, fn) run on timeout."""

    def __init__(self, name, check, diagnose=()):
        self.name, self.check, self.diagnose = name, check, list(diagnose)


def wait_until(what, conditions, timeout):
    """Waits until every condition holds in one look; returns the seconds it took.

    On timeout raises RuntimeError naming each unmet condition with what was last seen,
    followed by the diagnostics of the unmet ones (each command once)."""
    start = time.monotonic()
    deadline = start + timeout
    while True:
        look = Look()
        seen = [(c, *c.check(look)) for c in conditions]
        if all(ok for _, ok, _ in seen):
            return time.monotonic() - start
        if time.monotonic() >= deadline:
            break
        time.sleep(POLL_S)
    unmet = [(c, detail) for c, ok, detail in seen if not ok]
    lines = [f"timed out after {timeout:g} s waiting for {what}; unmet:"]
    lines += [f"  - {c.name}: {detail}" for c, detail in unmet]
    done = set()
    for c, _ in unmet:
        for title, fn in c.diagnose:
            if title in done:
                continue
            done.add(title)
            lines += [f"--- {title}", (fn() or "").rstrip()]
    raise RuntimeError("\n".join(lines))


# ------------------------------------------------------------------ diagnostics


def _bgp_diagnostics(node, peer=None):
    out = [(f"{node}: vtysh show bgp summary", lambda: fabric.vtysh(node, "show bgp summary")),
           (f"{node}: ip route / ip -6 neigh / ip -br link",
            lambda: "\n".join(fabric.nsx(node, *c, check=False).stdout for c in
                              (("ip", "route"), ("ip", "-6", "neigh"), ("ip", "-br", "link"))))]
    if peer:
        out.insert(1, (f"{node}: vtysh show bgp neighbors {peer}",
                       lambda: fabric.vtysh(node, f"show bgp neighbors {peer}")))
    return out


def _bond_diagnostics():
    return [("client1: ovs-appctl bond/show bond0", fabric.bond_show)]


# ------------------------------------------------------------------ conditions


def session(node, peer, established=True):
    """`node`'s BGP session to `peer` (an address) is Established (or, with established=False,
    is not: the hold timer has run out)."""

    def check(look):
        n = look.neighbors(node).get(peer)
        if n is None:
            return not established, "no such neighbor (bgpd not answering?)"
        state = n.get("bgpState")
        detail = state
        if state != "Established":
            detail += (f" (last reset: {n.get('lastResetDueTo')}; last notification: "
                       f"{n.get('lastNotificationReason', 'none')}; connect retry timer: "
                       f"{n.get('connectRetryTimer')} s; next connect in: {n.get('nextConnectTimerDueInMsecs')} ms)")
        return (state == "Established") == established, detail

    want = "Established" if established else "not Established"
    return Condition(f"{node}: BGP session to {peer} {want}", check, _bgp_diagnostics(node, peer))


def evpn_routes_from(leaf, peer, at_least):
    """`leaf` has accepted at least `at_least` EVPN routes from `peer`."""

    def check(look):
        n = look.neighbors(leaf).get(peer, {})
        got = n.get("addressFamilyInfo", {}).get("l2VpnEvpn", {}).get("acceptedPrefixCounter", 0)
        if n.get("bgpState") != "Established":
            got = 0
        return got >= at_least, f"{got} accepted"

    return Condition(f"{leaf}: at least {at_least} EVPN routes from {peer}", check,
                     [(f"{leaf}: vtysh show bgp l2vpn evpn", lambda: fabric.vtysh(leaf, "show bgp l2vpn evpn"))])


def remote_vteps(leaf, vteps):
    """`leaf`'s VNI floods to every VTEP in `vteps` (their type-3 routes are installed)."""

    def check(look):
        have = set(look.vni(leaf).get("numRemoteVteps") or [])
        missing = sorted(set(vteps) - have)
        return not missing, f"remote VTEPs {sorted(have)}" + (f", missing {missing}" if missing else "")

    return Condition(f"{leaf}: VNI {fabric.VNI} floods to {', '.join(sorted(vteps))}", check,
                     [(f"{leaf}: vtysh show evpn vni {fabric.VNI}",
                       lambda: fabric.vtysh(leaf, f"show evpn vni {fabric.VNI}"))])


def bond_active(member):
    """client1's OVS bond sends on `member` (eth1 = the link to leaf1, eth2 = to leaf2)."""

    def check(look):
        b = look.bond()
        return b.get("active") == member, f"active member {b.get('active')}, enabled {b.get('enabled')}"

    return Condition(f"client1: bond active on {member}", check, _bond_diagnostics())


def admin_up(node, ifname, up=True):
    """`node`'s `ifname` is administratively up (IFF_UP), or down with up=False."""

    def check(look):
        link = look.link(node, ifname)
        if link is None:
            return False, "no such link"
        is_up = "UP" in link["flags"]
        return is_up == up, f"flags {','.join(link['flags'])}"

    return Condition(f"{node}: {ifname} admin {'up' if up else 'down'}", check)


def leaf_overlay(leaf, established=True):
    """Both iBGP sessions between `leaf` and the spines, seen from both ends."""
    lo = fabric.loopback(leaf)
    out = []
    for s in fabric.SPINES:
        out += [session(leaf, fabric.loopback(s), established), session(s, lo, established)]
    return out


def leaf_healthy(leaf, isolated=()):
    """`leaf` is fully back: underlay and overlay sessions up on both sides, EVPN routes from
    both spines (at least the type-3 routes of the other leaves), flooding to every VTEP but
    those of the leaves in `isolated`."""
    others = [fabric.loopback(l) for l in fabric.LEAVES if l != leaf and l not in isolated]
    out = []
    for s in fabric.SPINES:
        leaf_ip, spine_ip = fabric.link_addrs(leaf, s)
        out += [session(leaf, spine_ip), session(s, leaf_ip)]
    out += leaf_overlay(leaf)
    out += [evpn_routes_from(leaf, fabric.loopback(s), len(others)) for s in fabric.SPINES]
    out += [remote_vteps(leaf, others)]
    return out


def reachable(src, dst):
    """One ping from client `src` to client `dst` is answered within 1 s."""
    return Condition(f"{src}: ping {fabric.CLIENTS[dst]} answered", lambda look: (
        fabric.ping(src, fabric.CLIENTS[dst]), "no answer within 1 s"), _bond_diagnostics())
