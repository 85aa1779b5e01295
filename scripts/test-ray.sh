#!/usr/bin/env bash
# The Ray backend's tests: a two-node Ray cluster on this machine, inside a private network
# namespace with only loopback up, because a starting Ray head probes outside addresses.
# Installs Ray if it is missing. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" LITELLM_LOCAL_MODEL_COST_MAP=True PIP_DISABLE_PIP_VERSION_CHECK=1
export RAY_USAGE_STATS_ENABLED=0

python3 -c 'import ray' 2>/dev/null || python3 -m pip install -q 'ray==2.60.0'
if ! command -v unshare >/dev/null || ! command -v ip >/dev/null; then
  echo "test-ray.sh needs unshare (util-linux) and ip (iproute2)" >&2
  exit 1
fi
# unshare -n needs root (or a user namespace); CI runs as root here.
exec unshare -n sh -c 'ip link set lo up; exec python3 -m pytest -p no:cacheprovider -m ray tests/ray "$@"' sh "$@"
