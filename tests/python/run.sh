#!/bin/sh
# Runs the pygnmi test the way CI does: a venv with the pinned requirements, the built binary.
#   tests/python/run.sh            (VENV=/tmp/venv-lab by default; FABRIC_SIM_BIN to use another binary)
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=${VENV:-/tmp/venv-lab}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q -r "$root/tests/python/requirements.txt"
if [ -z "${FABRIC_SIM_BIN:-}" ]; then
    (cd "$root" && cargo build -q -p fabric-sim --bin fabric-sim)
fi
exec "$venv/bin/pytest" -q "$root/tests/python" "$@"
