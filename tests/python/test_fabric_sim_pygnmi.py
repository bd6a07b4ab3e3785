"""fabric-sim driven by pygnmi, an independent gNMI client with its own generated code.

This is the wire-compatibility proof of proto/gnmi.proto. It starts the built binary
(FABRIC_SIM_BIN, default target/debug/fabric-sim) on ephemeral ports and reads them
from its ready line.

    python3 -m venv /tmp/venv-lab && /tmp/venv-lab/bin/pip install -r tests/python/requirements.txt
    cargo build -p fabric-sim && /tmp/venv-lab/bin/pytest -q tests/python
"""

import json
import os
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from pygnmi.client import gNMIclient

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("FABRIC_SIM_BIN", str(ROOT / "target" / "debug" / "fabric-sim"))
WAIT_S = 10
OPER49 = "interface[name=ethernet-1/49]/oper-state"

# pygnmi's subscription reader thread raises CANCELLED when its client closes the channel;
# pytest reports that in whichever test runs next.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")


def start_sim(*extra):
    proc = subprocess.Popen(
        [BIN, "--leaves", "2", "--base-port", "0", "--control", "127.0.0.1:0", "--timings", "fast", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    ready = {}
    reader = threading.Thread(target=lambda: ready.update(json.loads(proc.stdout.readline() or "{}")), daemon=True)
    reader.start()
    reader.join(WAIT_S)
    if not ready.get("ready"):
        proc.kill()
        pytest.fail(f"fabric-sim did not print its ready line within {WAIT_S}s (exit code {proc.poll()})")
    return proc, ready


def stop_sim(proc):
    proc.terminate()
    assert proc.wait(WAIT_S) == 0, "SIGTERM exits 0"


@pytest.fixture(scope="module")
def sim():
    proc, ready = start_sim("--insecure")
    yield ready
    stop_sim(proc)


def control(sim, method, path, body=None):
    req = urllib.request.Request(
        f"http://{sim['control']}{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=WAIT_S) as r:
        raw = r.read()
        return json.loads(raw) if raw else None


def gnmi(sim, leaf="leaf1"):
    return gNMIclient(
        target=("127.0.0.1", sim["leaves"][leaf]), username="admin", password="NokiaSrl1!", insecure=True
    )


def updates(msg):
    """(prefix/path, value) pairs of one parsed notification."""
    u = (msg or {}).get("update", {})
    prefix = u.get("prefix", "")
    return [(f"{prefix}/{x['path']}".lstrip("/"), x.get("val")) for x in u.get("update", [])]


def test_capabilities(sim):
    with gnmi(sim) as gc:
        caps = gc.capabilities()
    assert set(caps["supported_encodings"]) == {"json_ietf", "proto", "ascii"}
    assert caps["gnmi_version"] == "0.10.0"


def test_subscribe_sync_then_on_change_after_link_flap(sim):
    sub = {
        "subscription": [{"path": "interface[name=*]/oper-state", "mode": "on_change"}],
        "mode": "stream",
        "encoding": "json_ietf",
    }
    with gnmi(sim) as gc:
        stream = gc.subscribe_stream(subscribe=sub)
        first = stream.get_update(timeout=WAIT_S)  # coalesced up to sync_response
        assert first.get("sync_response") is True
        # pygnmi merges the dump's notifications (keeping the last prefix): 3 interfaces, all up.
        assert [x["val"] for x in first["update"]["update"]] == ["up", "up", "up"], first

        applied = control(sim, "POST", "/v1/link", {"node": "leaf1", "interface": "ethernet-1/49", "state": "down"})
        assert applied["applied"]["mono_ns"] > 0
        deadline = time.monotonic() + WAIT_S
        seen = []
        while ("interface[name=ethernet-1/49]/oper-state", "down") not in seen:
            assert time.monotonic() < deadline, f"no ON_CHANGE update; saw {seen}"
            msg = stream.get_update(timeout=WAIT_S)
            seen += updates(msg)
            assert msg["update"]["timestamp"] >= applied["applied"]["unix_ns"]
        control(sim, "POST", "/v1/link", {"node": "leaf1", "interface": "ethernet-1/49", "state": "up"})
        while seen[-1] != ("interface[name=ethernet-1/49]/oper-state", "up"):
            assert time.monotonic() < deadline, f"no recovery update; saw {seen}"
            seen += updates(stream.get_update(timeout=WAIT_S))
        stream.close()


def test_get(sim):
    with gnmi(sim) as gc:
        r = gc.get(path=[OPER49, "interface[name=ethernet-1/49]/statistics/carrier-transitions"], encoding="json_ietf")
    got = {p: v for n in r["notification"] for p, v in updates({"update": n})}
    assert got["interface[name=ethernet-1/49]/oper-state"] == "up"
    assert isinstance(got["interface[name=ethernet-1/49]/statistics/carrier-transitions"], str), "counter64 as a string"


def test_set_admin_disable_turns_oper_down(sim):
    with gnmi(sim, "leaf2") as gc:
        r = gc.set(update=[("interface[name=ethernet-1/1]", {"admin-state": "disable"})], encoding="json_ietf")
        assert r["response"][0]["op"] == "UPDATE"
        got = gc.get(path=["interface[name=ethernet-1/1]"], encoding="json_ietf")
    values = {p: v for n in got["notification"] for p, v in updates({"update": n})}
    assert values["interface[name=ethernet-1/1]/admin-state"] == "disable"
    assert values["interface[name=ethernet-1/1]/oper-state"] == "down"
    assert values["interface[name=ethernet-1/1]/oper-down-reason"] == "port-admin-disabled"
    sets = control(sim, "GET", "/v1/sets")
    assert sets[-1]["node"] == "leaf2" and sets[-1]["outcome"] == "accepted"
    # Recorded as sent: the container path and its JSON object.
    assert sets[-1]["updates"] == [{"path": "/interface[name=ethernet-1/1]", "value": {"admin-state": "disable"}}]


def test_capabilities_over_tls_with_the_self_signed_certificate(tmp_path):
    ca = tmp_path / "ca.pem"
    proc, ready = start_sim("--self-signed", "--ca-file", str(ca))
    try:
        with gNMIclient(
            target=("127.0.0.1", ready["leaves"]["leaf1"]), username="admin", password="NokiaSrl1!", path_cert=str(ca)
        ) as gc:
            caps = gc.capabilities()
        assert set(caps["supported_encodings"]) == {"json_ietf", "proto", "ascii"}
        with pytest.raises(Exception, match="(?i)unauthenticated|authentication failed"):
            with gNMIclient(
                target=("127.0.0.1", ready["leaves"]["leaf1"]), username="admin", password="wrong", path_cert=str(ca)
            ) as gc:
                gc.capabilities()
    finally:
        stop_sim(proc)


# --- OpenConfig profile (leaf2 serves OpenConfig models in a mixed fabric) ---

OC_ENABLED1 = "interfaces/interface[name=Ethernet1]/state/enabled"
OC_OPER1 = "interfaces/interface[name=Ethernet1]/state/oper-status"
OC_OPER49 = "interfaces/interface[name=Ethernet49/1]/state/oper-status"
OC_SESSION = (
    "network-instances/network-instance[name=default]/protocols/protocol[identifier=BGP][name=BGP]"
    "/bgp/neighbors/neighbor[neighbor-address=10.0.1.1]/state/session-state"
)


@pytest.fixture(scope="module")
def mixed():
    proc, ready = start_sim("--insecure", "--profile", "leaf1=srl,leaf2=openconfig")
    yield ready
    stop_sim(proc)


def test_openconfig_capabilities_and_get(mixed):
    assert mixed["profiles"] == {"leaf1": "srl", "leaf2": "openconfig"}
    with gnmi(mixed, "leaf2") as gc:
        caps = gc.capabilities()
        r = gc.get(path=[OC_OPER49, OC_ENABLED1, OC_SESSION], encoding="json_ietf")
    assert "openconfig-interfaces" in {m["name"] for m in caps["supported_models"]}
    got = {p: v for n in r["notification"] for p, v in updates({"update": n})}
    assert got[OC_OPER49] == "UP"
    assert got[OC_ENABLED1] is True, "a JSON boolean, not a string"
    # The protocol key arrives module-qualified, as EOS sends it.
    session = [v for p, v in got.items() if p.endswith("neighbor-address=10.0.1.1]/state/session-state")]
    assert session == ["ESTABLISHED"], got
    assert any("identifier=openconfig-policy-types:BGP" in p for p in got), got


def test_openconfig_subscribe_proto_typed_values_and_on_change(mixed):
    sub = {
        "subscription": [{"path": OC_OPER49, "mode": "on_change"}, {"path": OC_ENABLED1, "mode": "on_change"}],
        "mode": "stream",
        "encoding": "proto",
    }
    with gnmi(mixed, "leaf2") as gc:
        stream = gc.subscribe_stream(subscribe=sub)
        first = stream.get_update(timeout=WAIT_S)
        assert first.get("sync_response") is True
        vals = [x["val"] for x in first["update"]["update"]]
        assert True in vals and "UP" in vals, first  # bool_val and string_val decoded by pygnmi
        control(mixed, "POST", "/v1/link", {"node": "leaf2", "interface": "Ethernet49/1", "state": "down"})
        deadline = time.monotonic() + WAIT_S
        seen = []
        while ("interfaces/interface[name=Ethernet49/1]/state/oper-status", "LOWER_LAYER_DOWN") not in seen:
            assert time.monotonic() < deadline, f"no ON_CHANGE update; saw {seen}"
            seen += updates(stream.get_update(timeout=WAIT_S))
        control(mixed, "POST", "/v1/link", {"node": "leaf2", "interface": "Ethernet49/1", "state": "up"})
        stream.close()


def test_openconfig_set_config_enabled(mixed):
    with gnmi(mixed, "leaf2") as gc:
        gc.set(update=[("interfaces/interface[name=Ethernet1]/config", {"enabled": False})], encoding="json_ietf")
        got = gc.get(path=[OC_ENABLED1, OC_OPER1], encoding="json_ietf")
        values = {p: v for n in got["notification"] for p, v in updates({"update": n})}
        assert values == {OC_ENABLED1: False, OC_OPER1: "DOWN"}
        gc.set(update=[("interfaces/interface[name=Ethernet1]/config", {"enabled": True})], encoding="json_ietf")
        got = gc.get(path=[OC_ENABLED1], encoding="json_ietf")
    assert [v for n in got["notification"] for _, v in updates({"update": n})] == [True]
    sets = control(mixed, "GET", "/v1/sets")
    assert sets[-2]["updates"] == [{"path": "/interfaces/interface[name=Ethernet1]/config", "value": {"enabled": False}}]
