"""BASELINE FOR THE BENCHMARK ONLY: not part of opergroupd, not for production.

The oper-group controller a network engineer would write today with pygnmi, so that
opergroupd-bench (--peer pygnmi) can measure opergroupd side by side with it against the
same fabric-sim: one thread and one gNMI subscription per leaf (pygnmi adds its own
reader thread per subscription), the same decision as opergroupd's groups in the bench
config minus readiness (the downlink goes down when fewer than --required-up uplinks are
oper-up, and comes back as soon as enough are), and a gNMI Set of the downlink's
admin-state when the verdict changes. No delays, no readiness, no retries, no status.

    .venv/bin/python bench/peers/pygnmi_baseline.py --targets targets.json \
        --username admin --password 'NokiaSrl1!'

targets.json: {"leaf1": "127.0.0.1:57401", ...} (plaintext gRPC, as fabric-sim --insecure).
Prints {"synced": N} on stdout once every leaf's subscription delivered its sync_response,
and {"failed": NAME, "error": TEXT} for a leaf whose thread gave up. SIGTERM exits 0.
"""

import argparse
import json
import os
import re
import signal
import sys
import threading

from pygnmi.client import gNMIclient

OPER = re.compile(r"interface\[name=([^\]]+)\]/oper-state$")


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


def uplinks_up(state, uplinks):
    return sum(1 for u in uplinks if state.get(u) == "up")


def apply(state, msg):
    """Latest oper-state per interface from one parsed notification (prefix + path)."""
    u = (msg or {}).get("update") or {}
    prefix = u.get("prefix", "")
    for x in u.get("update", []):
        m = OPER.search(f"{prefix}/{x['path']}")
        if m:
            state[m.group(1)] = str(x.get("val"))


def leaf(name, address, args, synced, stdout_lock):
    host, port = address.rsplit(":", 1)
    sub = {
        "subscription": [{"path": f"interface[name={u}]/oper-state", "mode": "on_change"} for u in args.uplinks],
        "mode": "stream",
        "encoding": "json_ietf",
    }
    try:
        with gNMIclient(
            target=(host, int(port)),
            username=args.username,
            password=args.password,
            insecure=True,
            gnmi_timeout=args.connect_timeout,
        ) as gc:
            stream = gc.subscribe_stream(subscribe=sub)
            state = {}
            apply(state, stream.next())  # the initial dump, coalesced up to sync_response
            synced()
            last = "enable"  # every downlink starts enabled
            while True:
                verdict = "enable" if uplinks_up(state, args.uplinks) >= args.required_up else "disable"
                if verdict != last:
                    # pygnmi sends a str value as is (not JSON): set the container, as its docs do.
                    gc.set(update=[(f"interface[name={args.downlink}]", {"admin-state": verdict})], encoding="json_ietf")
                    log(f"{name}: {args.downlink} admin-state {verdict} ({uplinks_up(state, args.uplinks)} uplinks up)")
                    last = verdict
                msg = None
                while msg is None:
                    try:
                        msg = stream.get_update(timeout=30)
                    except TimeoutError:
                        if stream.error is not None:
                            raise stream.error
                apply(state, msg)
    except Exception as e:  # one leaf's failure must not stop the others
        with stdout_lock:
            print(json.dumps({"failed": name, "error": str(e)[:300]}), flush=True)
        log(f"{name}: gave up: {e}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--targets", required=True)
    p.add_argument("--username", default="")
    p.add_argument("--password", default="")
    p.add_argument("--uplinks", default="ethernet-1/49,ethernet-1/50", type=lambda s: s.split(","))
    p.add_argument("--downlink", default="ethernet-1/1")
    p.add_argument("--required-up", type=int, default=1)
    p.add_argument("--connect-timeout", type=int, default=60)
    args = p.parse_args()
    with open(args.targets) as f:
        targets = json.load(f)

    stdout_lock = threading.Lock()
    count = [0]

    def synced():
        with stdout_lock:
            count[0] += 1
            if count[0] == len(targets):
                print(json.dumps({"synced": count[0]}), flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    for name, address in targets.items():
        threading.Thread(target=leaf, args=(name, address, args, synced, stdout_lock), daemon=True).start()
    stop.wait()
    # gRPC's own threads would keep the interpreter alive: leave at once.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
