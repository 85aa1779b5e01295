#!/usr/bin/env bash
# Installs Claude Code (the agent CLI the `claude` engine runs) into a cache OUTSIDE the clone,
# one folder per version with a marker file, so a warm run only checks the marker. Prints the
# folder holding `claude` on its last line (what `[engines.claude] path` takes).
#
#   PASD_AGENT_CACHE   cache folder (default: ${XDG_CACHE_HOME:-$HOME/.cache}/pasd-ci)
set -euo pipefail

VERSION=2.1.328
CACHE="${PASD_AGENT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pasd-ci}"
DIR="$CACHE/claude-code-$VERSION"
EXE="$DIR/node_modules/.bin/claude"

die() { echo "install-agent-cli.sh: FAILED: $*" >&2; exit 1; }

if [[ ! -f "$DIR/.installed" ]]; then
    command -v npm >/dev/null || die "npm is not installed (apt-get install npm)"
    mkdir -p "$DIR" || die "cannot create $DIR"
    npm install --prefix "$DIR" --no-audit --no-fund --loglevel=error \
        "@anthropic-ai/claude-code@$VERSION" >&2 || die "npm install @anthropic-ai/claude-code@$VERSION"
    "$EXE" --version >/dev/null 2>&1 || die "$EXE --version does not run"
    touch "$DIR/.installed"
fi
echo "$(dirname "$EXE")"
