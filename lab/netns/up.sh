#!/usr/bin/env bash
# Builds the lab fabric (root; tears down any leftover first). lab/netns/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -q -p netns-agent
exec python3 lab/netns/netlab.py up "$@"
