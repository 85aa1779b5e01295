#!/usr/bin/env bash
# The parallel benchmark on the Ray backend: a two-node Ray cluster on this machine, inside a
# private network namespace with only loopback up (a starting Ray head probes outside
# addresses), writing bench/RESULTS-ray.md. Extra arguments go to bench/run_all.py (--quick).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" LITELLM_LOCAL_MODEL_COST_MAP=True RAY_USAGE_STATS_ENABLED=0

python3 -c 'import ray' 2>/dev/null || python3 -m pip install -q 'ray==2.60.0'
exec unshare -n sh -c 'ip link set lo up; exec python3 bench/run_all.py --backend ray "$@"' sh "$@"
