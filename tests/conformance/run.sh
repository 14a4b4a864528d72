#!/usr/bin/env bash
# Runs the scim2-tester conformance checker (PyPI) against a scimgate started on SQLite, on
# the default connection and on a second one, and prints every result. Exits non-zero when a
# check ends in ERROR or CRITICAL.
set -euo pipefail
cd "$(dirname "$0")/../.."

# Built the way `cargo test` builds it (same features), so CI compiles nothing twice.
cargo test --locked --no-run --quiet 2>/dev/null || cargo test --locked --no-run
bin=target/debug/scimgate

venv=target/conformance-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check scim2-tester==0.5.2 httpx2==2.16.2

work=$(mktemp -d)
export SCIMGATE_DATABASE_URL="sqlite://$work/conformance.db"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export SCIMGATE_LISTEN="127.0.0.1:$port"
token=$("$bin" token create --name conformance 2>/dev/null)

"$bin" serve 2>"$work/server.log" &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/healthz')" 2>/dev/null && break
  sleep 0.1
done

echo "== the default connection, /scim/v2"
"$venv/bin/python" tests/conformance/check.py "http://127.0.0.1:$port/scim/v2" "$token"

# A second connection, beside the first one's users and groups: it must see only its own.
admin=$("$bin" token create --name conformance-admin --role admin 2>/dev/null)
python3 - "$port" "$admin" <<'PY'
import json, sys, urllib.request
port, admin = sys.argv[1], sys.argv[2]
request = urllib.request.Request(
    f"http://127.0.0.1:{port}/admin/connections",
    data=json.dumps({"name": "second"}).encode(),
    headers={"Authorization": f"Bearer {admin}", "Content-Type": "application/json"},
)
urllib.request.urlopen(request)
PY
second=$("$bin" token create --name conformance-second --connection second 2>/dev/null)
echo "== a second connection, /scim/second/v2"
"$venv/bin/python" tests/conformance/check.py "http://127.0.0.1:$port/scim/second/v2" "$second"
