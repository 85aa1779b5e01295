#!/usr/bin/env bash
# Install everything the tests need, then lint, type-check, build the VS Code extension and run
# the whole test suite. Safe to run again: every step is cached or idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
export LITELLM_LOCAL_MODEL_COST_MAP=True PIP_DISABLE_PIP_VERSION_CHECK=1

step() { printf '\n== %s\n' "$*"; }

step "system packages"
missing=()
for pkg_cmd in git:git nvim:neovim tmux:tmux setpriv:util-linux unshare:util-linux ip:iproute2 bwrap:bubblewrap chromium:chromium; do
  command -v "${pkg_cmd%%:*}" >/dev/null 2>&1 || missing+=("${pkg_cmd##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq "${missing[@]}" >/dev/null; fi
fi

step "python packages"
python3 -m pip install -q -c constraints.txt -e '.[test]'

step "aider in its own virtual environment (the engine tests run the real one)"
bash scripts/install-aider.sh

step "VS Code extension: build and unit tests"
(cd editors/vscode && npm ci --no-audit --no-fund --loglevel=error && npm run -s compile && npm test --silent)

step "real VS Code (code-server) for the end-to-end tests"
bash tests/e2e/vscode/setup.sh

step "agent CLI for the engine tests (Claude Code, cached outside the clone)"
bash scripts/install-agent-cli.sh >/dev/null

step "lint and types"
ruff check .
mypy daemon

step "benchmarks (quick: they must keep running)"
python3 bench/run_all.py --quick

step "tests"
set +e
# two test files at a time (by file, so a module's daemon, browser or editor starts once): most of a
# test is waiting on a daemon, a model reply or a browser, so two fit on two cores
python3 -m pytest -p no:cacheprovider -n 2 --dist loadfile --durations=25 "$@"
code=$?
set -e
if [ "$code" = 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi

step "Ray backend: a two-node cluster in a private network namespace"
set +e
bash scripts/test-ray.sh
ray_code=$?
set -e
if [ "$ray_code" = 5 ]; then
  echo "the Ray tests collected nothing: that is a failure here" >&2
  exit 1
fi
[ "$code" = 0 ] || exit "$code"
exit "$ray_code"
