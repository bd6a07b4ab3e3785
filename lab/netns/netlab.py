#!/usr/bin/env python3
"""The real-traffic lab: `netlab.py up | down | experiment`. See lab/netns/README.md."""

import argparse
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fabric  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("up", help="build the fabric and leave it running")
    sub.add_parser("down", help="remove everything the lab made (idempotent)")
    ex = sub.add_parser("experiment", help="build, run the loss cases, report, tear down")
    ex.add_argument("--out", default=str(ROOT / "target" / "lab-netns"), help="directory for JSON and PNG")
    ex.add_argument("--chart", help="also copy the chart here (e.g. doc/loss-real-fabric.png)")
    ex.add_argument("--cases", default="1,2,3,4,5")
    args = ap.parse_args()

    if args.cmd == "down":
        fabric.down()
        return 0
    # An interrupted run leaves nothing behind: SIGTERM/SIGHUP become KeyboardInterrupt.
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.default_int_handler)
    agent = str(ROOT / "target" / "debug" / "netns-agent")
    if args.cmd == "up":
        try:
            facts = fabric.up(agent)
        except BaseException:
            fabric.down()
            raise
        print(f"fabric up in {facts['build_s']} s; dual-homed client1 bond: {facts['bond']}")
        for leaf in fabric.LEAVES:
            print(f"  {leaf}: gNMI at {fabric.agent_addr(leaf)} (from namespace {fabric.MGMT})")
        return 0
    import experiment

    try:
        return experiment.run(args, agent)
    finally:
        # The daemons' logs (agents, opergroupd, FRR, OVS) outlive the fabric, for a post-mortem.
        fabric.keep_logs(Path(args.out) / "logs")
        fabric.down()


if __name__ == "__main__":
    sys.exit(main())
