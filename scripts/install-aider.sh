#!/usr/bin/env bash
# Install aider (aider-chat) into a virtual environment of its own, outside the clone: aider pins
# its own dependencies, which must never meet pasd's. Idempotent: a venv whose `aider --version`
# already answers is left as it is (a half-built one is removed and built again). Prints the
# venv's bin directory on its last line.
#
#   PASD_AIDER_VENV  where the venv goes (default ${XDG_CACHE_HOME:-$HOME/.cache}/pasd-ci/aider-0.86.2)
#   PYTHON           the interpreter that builds the venv (default python3)
set -euo pipefail
version=0.86.2
venv="${PASD_AIDER_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/pasd-ci/aider-$version}"
python="${PYTHON:-python3}"

if [ -x "$venv/bin/aider" ] && "$venv/bin/aider" --version >/dev/null 2>&1; then
  echo "$venv/bin"
  exit 0
fi

rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
"$python" -m venv "$venv"
PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -m pip install -q "aider-chat==$version"
"$venv/bin/aider" --version >/dev/null
echo "$venv/bin"
