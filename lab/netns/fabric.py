"""Builds and removes the lab fabric: FRR + Linux in network namespaces.

2 spines, 4 leaves (leafN e1-49 -> spine1, e1-50 -> spine2; e1-N is SR Linux's
ethernet-1/N), eBGP underlay on numbered /31 fabric links, iBGP EVPN overlay to the spines (route
reflectors 10.0.1.1 / 10.0.1.2), an L2 VNI (100) between the clients. client1 is
dual-homed to leaf1/leaf2 through an Open vSwitch active-backup bond (this kernel has no
bonding driver), client2 sits on leaf3. A management namespace `og-mgmt` reaches every
leaf's gNMI agent on 10.99.0.N:57400 and runs opergroupd and Prometheus.

Every namespace is named og-*; every process the lab starts lives in one of them, so
`down` kills exactly the pids `ip netns pids` lists there and removes the namespaces.
"""

import json
import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

PREFIX = "og-"
STATE = Path("/run/opergroupd-lab")
SPINES = ["spine1", "spine2"]
LEAVES = ["leaf1", "leaf2", "leaf3", "leaf4"]
CLIENTS = {"client1": "10.100.0.1", "client2": "10.100.0.2"}
MGMT = PREFIX + "mgmt"
MGMT_ADDR = "10.99.0.254"
VNI = 100


def ns(name):
    return PREFIX + name


def sh(*args, check=True, quiet=False, **kw):
    r = subprocess.run(args, capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


def nsx(name, *args, **kw):
    return sh("ip", "netns", "exec", ns(name), *args, **kw)


def leaf_index(leaf):
    return int(leaf.removeprefix("leaf"))


def loopback(node):
    if node.startswith("spine"):
        return f"10.0.1.{node.removeprefix('spine')}"
    return f"10.0.0.{leaf_index(node)}"


# The fabric links are numbered: leafN - spineS is 10.1.S.2N/31, the spine on the even
# address. Unnumbered BGP (IPv6 link-local peers learnt from RAs) was tried first and got
# stuck: on FRR 8.4, when the spine's port came back, bgpd received zebra's interface
# down/up twice in a burst (down, up, neighbor add, down, up), forgot the leaf's link-local
# address on the second down, failed BGP_Start with "Unable to get neighbor's IP address",
# and left the peer in Idle with no timer; zebra never re-announces a neighbor it already
# knows, so the leaf's connections were rejected ("not configured") until the next bounce:
# leaf1's overlay not back within 60 s, intermittently.
def link_addrs(leaf, spine):
    """(leaf's address, spine's address) on the link between them."""
    base = 2 * leaf_index(leaf)
    net = f"10.1.{spine.removeprefix('spine')}"
    return f"{net}.{base + 1}", f"{net}.{base}"


def uplink_port(spine):
    """A leaf's port to `spine`: e1-49 to spine1, e1-50 to spine2."""
    return f"e1-{48 + int(spine.removeprefix('spine'))}"


def underlay_peers(node):
    """[(local port, peer address)] of a node's underlay sessions."""
    if node.startswith("spine"):
        return [(f"e1-{leaf_index(l)}", link_addrs(l, node)[0]) for l in LEAVES]
    return [(uplink_port(s), link_addrs(node, s)[1]) for s in SPINES]


def agent_addr(leaf):
    return f"10.99.0.{leaf_index(leaf)}:57400"


# ------------------------------------------------------------------ teardown


def lab_namespaces():
    out = sh("ip", "netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(PREFIX)]


def down():
    """Kills every process in the lab's namespaces, removes them and the state dir. Idempotent."""
    spaces = lab_namespaces()
    for sig in ("TERM", "KILL"):
        pids = []
        for n in spaces:
            pids += sh("ip", "netns", "pids", n, check=False).stdout.split()
        if not pids:
            break
        sh("kill", f"-{sig}", *pids, check=False)
        deadline = time.time() + 3
        while time.time() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
            time.sleep(0.05)
    for n in spaces:
        sh("ip", "netns", "del", n, check=False)
    shutil.rmtree(STATE, ignore_errors=True)


def keep_logs(dest):
    """Copies every *.log of the state directory to `dest` (replacing what was there)."""
    shutil.rmtree(dest, ignore_errors=True)
    for f in STATE.rglob("*.log") if STATE.exists() else []:
        to = dest / f.relative_to(STATE)
        to.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, to)


# ------------------------------------------------------------------ FRR configs


def bgpd_conf(node):
    lo = loopback(node)
    spine = node.startswith("spine")
    # One BGP instance in the overlay AS 65500; the underlay sessions present a per-node AS
    # (spines 65001, leafN 6510N) through local-as, so the overlay is iBGP as in the
    # reference fabric and the underlay is eBGP.
    underlay_as = 65001 if spine else 65100 + leaf_index(node)
    # Session FSM events and what zebra tells bgpd (interfaces, next hops) go to a file the
    # experiment keeps: what a post-mortem of a session that does not come back needs.
    lines = ["frr defaults datacenter", f"hostname {node}", f"log file {frr_dir(node)}/bgpd.log debugging",
             "debug bgp neighbor-events", "debug bgp zebra", "debug bgp nht", "!"]
    lines += [
        "router bgp 65500",
        f" bgp router-id {lo}",
        " no bgp ebgp-requires-policy",
        " no bgp default ipv4-unicast",
        " neighbor fabric peer-group",
        " neighbor fabric remote-as external",
        f" neighbor fabric local-as {underlay_as} no-prepend replace-as",
        " neighbor fabric timers 1 3",
        " neighbor fabric timers connect 1",
        " neighbor fabric advertisement-interval 0",
    ]
    lines += [f" neighbor {addr} peer-group fabric" for _, addr in underlay_peers(node)]
    # Only the leaves open sessions; the spines wait for them (passive, both peer-groups).
    # With both ends connecting on the same link-up the sessions collided ("Cease/Connection
    # Collision Resolution"), and every NOTIFICATION bgpd sends before a session is
    # Established doubles that peer's idle-hold (start) timer, up to 120 s: after a few
    # bounces a spine could sit in Idle for a minute with the link long back.
    if spine:
        lines += [" neighbor fabric passive"]
    lines += [
        " neighbor overlay peer-group",
        " neighbor overlay remote-as 65500",
        " neighbor overlay update-source lo",
        " neighbor overlay timers 1 3",
        " neighbor overlay timers connect 1",
        " neighbor overlay advertisement-interval 0",
    ]
    if spine:
        lines += [" neighbor overlay passive"]
    peers = [loopback(l) for l in LEAVES] if spine else [loopback(s) for s in SPINES]
    lines += [f" neighbor {p} peer-group overlay" for p in peers]
    lines += [
        " address-family ipv4 unicast",
        f"  network {lo}/32",
        "  neighbor fabric activate",
        " exit-address-family",
        " address-family l2vpn evpn",
        "  neighbor overlay activate",
    ]
    # The active-backup bond moves client1's MAC between leaf1 and leaf2 in every case (a real
    # Ethernet Segment would not): six moves in a run, past FRR's duplicate-address detection
    # (5 moves in 180 s), which would then stop advertising the MAC. Off in the lab.
    lines += ["  neighbor overlay route-reflector-client"] if spine else ["  advertise-all-vni",
                                                                        "  no dup-addr-detection"]
    lines += [" exit-address-family", "!"]
    return "\n".join(lines) + "\n"


def frr_dir(node):
    return STATE / node


def vtysh(node, *cmds):
    args = ["vtysh", "--vty_socket", str(frr_dir(node))]
    for c in cmds:
        args += ["-c", c]
    return nsx(node, *args, check=False).stdout


def start_frr(node):
    d = frr_dir(node)
    d.mkdir(parents=True, exist_ok=True)
    # zebra's interface events and RAs, for the same post-mortems.
    (d / "zebra.conf").write_text(
        f"hostname {node}\nlog file {d}/zebra.log debugging\ndebug zebra events\ndebug zebra packet\n")
    (d / "bgpd.conf").write_text(bgpd_conf(node))
    frr = pwd.getpwnam("frr")
    for p in [d, *d.iterdir()]:
        os.chown(p, frr.pw_uid, frr.pw_gid)
    z = str(d / "zserv.api")
    nsx(node, "/usr/lib/frr/zebra", "-d", "-P", "0", "-f", str(d / "zebra.conf"), "-i", str(d / "zebra.pid"),
        "-z", z, "--vty_socket", str(d))
    nsx(node, "/usr/lib/frr/bgpd", "-d", "-P", "0", "-f", str(d / "bgpd.conf"), "-i", str(d / "bgpd.pid"),
        "-z", z, "--vty_socket", str(d))


def process_gone(pid):
    """The process has exited (gone, or a zombie nobody reaped yet: its locks are released)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def stop_bgpd(node, timeout=5):
    """SIGKILL (a crash, as in a reboot) and wait for the exit: a bgpd started while the old
    one still holds the pid file's lock refuses to run."""
    pid = (frr_dir(node) / "bgpd.pid").read_text().strip()
    sh("kill", "-KILL", pid, check=False)
    deadline = time.monotonic() + timeout
    while not process_gone(pid):
        if time.monotonic() >= deadline:
            raise RuntimeError(f"{node}'s bgpd (pid {pid}) still running {timeout} s after SIGKILL")
        time.sleep(0.01)


def start_bgpd(node):
    d = frr_dir(node)
    nsx(node, "/usr/lib/frr/bgpd", "-d", "-P", "0", "-f", str(d / "bgpd.conf"), "-i", str(d / "bgpd.pid"),
        "-z", str(d / "zserv.api"), "--vty_socket", str(d))


# ------------------------------------------------------------------ links


# Every veth end gets an ifindex of its own, unique in the whole lab (node number * 100 + port).
# The kernel's linkwatch treats a carrier change as urgent only on a device whose ifindex
# differs from its iflink (for a veth: the peer's ifindex); otherwise the change (IFF_RUNNING,
# the rtnetlink event, zebra's and the agent's view) is batched with every other device's
# and can reach userspace up to 1 s late. Indexes are per namespace, so two namespaces built
# alike give both ends of a link the same index (leaf1 e1-49 and spine1 e1-1 were both 2):
# one uplink's loss was then seen ~1 s after the other's, and case 2 lost ~1,000 packets
# instead of ~80.
NODE_NUMBER = {"spine1": 1, "spine2": 2, **{l: 10 + leaf_index(l) for l in LEAVES}, "client1": 21, "client2": 22,
               "mgmt": 30}


def ifindex(node, ifname):
    port = int("".join(c for c in ifname.rsplit("-", 1)[-1] if c.isdigit()) or 0)
    return NODE_NUMBER[node] * 100 + port


def veth(a, a_if, b, b_if):
    sh("ip", "link", "add", a_if, "netns", ns(a), "index", str(ifindex(a, a_if)), "type", "veth",
       "peer", "name", b_if, "netns", ns(b), "index", str(ifindex(b, b_if)))


def new_namespace(name):
    sh("ip", "netns", "add", ns(name))
    nsx(name, "ip", "link", "set", "lo", "up")
    for k in ("all", "default"):
        nsx(name, "sysctl", "-qw", f"net.ipv6.conf.{k}.accept_dad=0")


def setup_links():
    for n in [*SPINES, *LEAVES, *CLIENTS, "mgmt"]:
        new_namespace(n)
    for leaf in LEAVES:
        i = leaf_index(leaf)
        veth(leaf, "e1-49", "spine1", f"e1-{i}")
        veth(leaf, "e1-50", "spine2", f"e1-{i}")
    veth("leaf1", "e1-1", "client1", "eth1")
    veth("leaf2", "e1-1", "client1", "eth2")
    veth("leaf3", "e1-1", "client2", "eth1")
    # Management: one bridge in og-mgmt, a port per leaf.
    nsx("mgmt", "ip", "link", "add", "br0", "type", "bridge")
    nsx("mgmt", "ip", "addr", "add", f"{MGMT_ADDR}/24", "dev", "br0")
    nsx("mgmt", "ip", "link", "set", "br0", "up")
    for leaf in LEAVES:
        i = leaf_index(leaf)
        veth(leaf, "mgmt0", "mgmt", f"m{i}")
        nsx("mgmt", "ip", "link", "set", f"m{i}", "master", "br0", "up")
        nsx(leaf, "ip", "addr", "add", f"10.99.0.{i}/24", "dev", "mgmt0")
        nsx(leaf, "ip", "link", "set", "mgmt0", "up")
    for leaf in LEAVES:
        for spine in SPINES:
            leaf_ip, spine_ip = link_addrs(leaf, spine)
            nsx(leaf, "ip", "addr", "add", f"{leaf_ip}/31", "dev", uplink_port(spine))
            nsx(spine, "ip", "addr", "add", f"{spine_ip}/31", "dev", f"e1-{leaf_index(leaf)}")
    for node in [*SPINES, *LEAVES]:
        nsx(node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        nsx(node, "ip", "addr", "add", f"{loopback(node)}/32", "dev", "lo")
        out = nsx(node, "ip", "-j", "link", "show").stdout
        for link in json.loads(out):
            if link["ifname"].startswith("e1-"):
                nsx(node, "ip", "link", "set", link["ifname"], "up")
    for leaf in LEAVES:
        lo = loopback(leaf)
        nsx(leaf, "ip", "link", "add", "br100", "type", "bridge")
        nsx(leaf, "ip", "link", "add", f"vxlan{VNI}", "type", "vxlan", "id", str(VNI), "dstport", "4789",
            "local", lo, "nolearning")
        nsx(leaf, "ip", "link", "set", f"vxlan{VNI}", "master", "br100")
        nsx(leaf, "bridge", "link", "set", "dev", f"vxlan{VNI}", "learning", "off", "neigh_suppress", "off")
        if leaf != "leaf4":
            nsx(leaf, "ip", "link", "set", "e1-1", "master", "br100")
            # Partial checksums survive veth + VXLAN and reach OVS bad: compute them here.
            nsx(leaf, "ethtool", "-K", "e1-1", "tx", "off")
        for dev in ("br100", f"vxlan{VNI}"):
            nsx(leaf, "ip", "link", "set", dev, "up")


def setup_clients():
    nsx("client2", "ethtool", "-K", "eth1", "tx", "off")
    nsx("client2", "ip", "addr", "add", f"{CLIENTS['client2']}/24", "dev", "eth1")
    nsx("client2", "ip", "link", "set", "eth1", "up")
    d = STATE / "ovs"
    d.mkdir(parents=True, exist_ok=True)
    db = f"unix:{d}/db.sock"
    # OVS's own run/log dirs too (bridge mgmt sockets), never the host's /var/run/openvswitch.
    ovs_env = {**os.environ, "OVS_RUNDIR": str(d), "OVS_LOGDIR": str(d), "OVS_DBDIR": str(d)}
    sh("ovsdb-tool", "create", str(d / "conf.db"), "/usr/share/openvswitch/vswitch.ovsschema")
    nsx("client1", "ovsdb-server", str(d / "conf.db"), f"--remote=punix:{d}/db.sock", f"--pidfile={d}/ovsdb.pid",
        f"--unixctl={d}/ovsdb.ctl", f"--log-file={d}/ovsdb.log", "--detach", env=ovs_env)
    vsctl = lambda *a: nsx("client1", "ovs-vsctl", f"--db={db}", *a, env=ovs_env)  # noqa: E731
    vsctl("--no-wait", "init")
    nsx("client1", "ovs-vswitchd", db, f"--pidfile={d}/vswitchd.pid", f"--unixctl={d}/vswitchd.ctl",
        f"--log-file={d}/vswitchd.log", "--detach", env=ovs_env)
    for m in ("eth1", "eth2"):
        # Bond members must not speak for themselves (stray ARP/ND would teach the leaves MACs).
        nsx("client1", "sysctl", "-qw", f"net.ipv6.conf.{m}.disable_ipv6=1")
        nsx("client1", "ip", "link", "set", m, "arp", "off")
        nsx("client1", "ethtool", "-K", m, "tx", "off")
        nsx("client1", "ip", "link", "set", m, "up")
    vsctl("add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev")
    vsctl("add-bond", "br0", "bond0", "eth1", "eth2", "bond_mode=active-backup",
          "other_config:bond-detect-mode=carrier", "other_config:bond-primary=eth1")
    nsx("client1", "ethtool", "-K", "br0", "tx", "off", check=False)
    nsx("client1", "ip", "addr", "add", f"{CLIENTS['client1']}/24", "dev", "br0")
    nsx("client1", "ip", "link", "set", "br0", "up")


def bond_mode():
    """What the dual-homed client runs on: kernel LACP needs the bonding driver."""
    if Path("/sys/class/net/bonding_masters").exists() or Path("/sys/module/bonding").exists():
        return "kernel-bonding-available"
    return "ovs-active-backup"


def start_agents(agent_bin, username, password):
    for leaf in LEAVES:
        log = open(STATE / f"agent-{leaf}.log", "w")
        subprocess.Popen(
            ["ip", "netns", "exec", ns(leaf), agent_bin, "--listen", agent_addr(leaf), "--username", username,
             "--password", password, "--vty-socket", str(frr_dir(leaf))],
            stdout=log, stderr=log, start_new_session=True)


def bond_show():
    return nsx("client1", "ovs-appctl", "-t", str(STATE / "ovs" / "vswitchd.ctl"), "bond/show", "bond0",
               check=False).stdout


def bond_state():
    """client1's bond: {"active": member or None, "enabled": [members]} from ovs-appctl bond/show."""
    active, enabled = None, []
    for line in bond_show().splitlines():
        line = line.strip()
        if line.startswith("active member mac:") and line.endswith(")"):
            name = line[line.rindex("(") + 1:-1]
            active = None if name == "none" else name
        elif line.startswith("member ") and line.endswith(": enabled"):
            enabled.append(line.removeprefix("member ").removesuffix(": enabled"))
    return {"active": active, "enabled": enabled}


def ping(src, dst):
    return nsx(src, "ping", "-c1", "-W1", dst, check=False).returncode == 0


def up(agent_bin, username="admin", password="NokiaSrl1!"):
    """Builds the fabric from nothing (tearing down any leftover first); returns facts for the log."""
    down()
    STATE.mkdir(parents=True)
    os.chown(STATE, 0, pwd.getpwnam("frr").pw_gid)
    STATE.chmod(0o775)
    t0 = time.time()
    setup_links()
    for node in [*SPINES, *LEAVES]:
        start_frr(node)
    setup_clients()
    start_agents(agent_bin, username, password)
    import conditions as c

    c.wait_until("the fabric to converge", [x for leaf in LEAVES for x in c.leaf_healthy(leaf)]
                 + [c.bond_active("eth1")], 60)
    c.wait_until("the clients to reach each other over the VNI", [c.reachable("client1", "client2"),
                                                                  c.reachable("client2", "client1")], 30)
    return {"bond": bond_mode(), "build_s": round(time.time() - t0, 1)}
