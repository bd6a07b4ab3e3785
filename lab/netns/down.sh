#!/usr/bin/env bash
# Removes everything the lab made: its processes, og-* namespaces, /run/opergroupd-lab. Idempotent.
set -euo pipefail
exec python3 "$(dirname "$0")/netlab.py" down
