#!/usr/bin/env bash
# Install what the ExaBGP end-to-end test needs (Debian packages). Run as root.
set -euo pipefail
missing=()
command -v exabgp >/dev/null || missing+=(exabgp)
command -v gobgpd >/dev/null || missing+=(gobgpd)
command -v ip >/dev/null || missing+=(iproute2)
command -v python3 >/dev/null || missing+=(python3)
if ((${#missing[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
