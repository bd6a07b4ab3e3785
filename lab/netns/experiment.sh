#!/usr/bin/env bash
# The loss experiment on the real fabric (root, Debian frr + openvswitch-switch + prometheus +
# ethtool + iputils-ping, python3 with matplotlib). Builds what it runs, then
# lab/netns/netlab.py experiment: fabric up, cases, table, target/lab-netns/loss.{json,png}, down.
#   sudo lab/netns/experiment.sh [--chart doc/loss-real-fabric.png]
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -q -p opergroupd --bin opergroupd
cargo build -q -p netns-agent
py=python3
[ -x .venv/bin/python ] && py=.venv/bin/python
exec "$py" lab/netns/netlab.py experiment "$@"
