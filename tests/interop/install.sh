#!/usr/bin/env bash
# Install the two third-party SCIM 2.0 servers used as outbound provisioning
# targets by the interop tests, at the versions pinned in this folder:
#   - scim2-server (PyPI) into target/interop/venv, from scim2_server/requirements.txt
#   - scimmy + scimmy-routers + express (npm) into scimmy/node_modules, from scimmy/package-lock.json
# Idempotent: each half is skipped when its stamp matches the hash of its pins.
# Exits non-zero on any failure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/target/interop"
venv="$out/venv"
req="$here/scim2_server/requirements.txt"
scimmy="$here/scimmy"

mkdir -p "$out"
# Serialise concurrent callers (e.g. parallel test binaries).
exec 9>"$out/.install.lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi

log() { echo "interop/install: $*" >&2; }

hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

# ---- Python: scim2-server -------------------------------------------------
install_python() {
    command -v python3 >/dev/null 2>&1 || { log "python3 not found"; return 1; }
    local stamp="$venv/.scimgate-stamp"
    local want
    want="$(hash_of "$req")-$(python3 -c 'import sys; print(sys.version.split()[0])')"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$venv/bin/scim2-server" ]] \
        && "$venv/bin/python" -c 'import scim2_server' >/dev/null 2>&1; then
        return 0
    fi
    log "installing scim2-server into $venv"
    rm -rf "$venv"
    if ! python3 -m venv "$venv"; then
        # Debian ships venv/ensurepip separately.
        if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
            log "python3 -m venv failed; installing python3-venv with apt-get"
            rm -rf "$venv"
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
            python3 -m venv "$venv"
        else
            log "python3 -m venv failed; install the python3-venv package"
            return 1
        fi
    fi
    # Every transitive dependency is pinned: --no-deps + pip check keep the
    # install exactly what requirements.txt says.
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$req"
    "$venv/bin/python" -m pip check --disable-pip-version-check >&2
    "$venv/bin/python" -c 'import scim2_server.testserver.cli'
    echo "$want" > "$stamp"
}

# ---- Node: scimmy + scimmy-routers + express ------------------------------
install_node() {
    command -v node >/dev/null 2>&1 || { log "node not found"; return 1; }
    command -v npm >/dev/null 2>&1 || { log "npm not found"; return 1; }
    local stamp="$scimmy/node_modules/.scimgate-stamp"
    local want
    want="$(hash_of "$scimmy/package.json" "$scimmy/package-lock.json")-$(node --version)"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        return 0
    fi
    log "installing scimmy into $scimmy/node_modules"
    (cd "$scimmy" && npm ci --no-audit --no-fund --loglevel=error >&2)
    (cd "$scimmy" && node --input-type=module -e 'await import("scimmy"); await import("scimmy-routers"); await import("express")')
    echo "$want" > "$stamp"
}

install_python
install_node
