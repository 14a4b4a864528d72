"""Runs the scim2-tester conformance checks against a running scimgate and prints each result.

Usage: check.py BASE_URL TOKEN
Exits non-zero when a check in scope ends in ERROR or CRITICAL.
"""

import sys

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

FAILING = {Status.ERROR, Status.CRITICAL}


def main() -> int:
    base_url, token = sys.argv[1], sys.argv[2]
    http = Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"})
    scim = SyncSCIMClient(http)
    scim.discover()
    results = check_server(scim)
    failed = 0
    counts: dict[str, int] = {}
    for result in results:
        name = result.status.name
        counts[name] = counts.get(name, 0) + 1
        label = f"[{result.resource_type}] " if result.resource_type else ""
        print(f"{name:10} {label}{result.title}: {result.reason or ''}")
        if result.status in FAILING:
            failed += 1
    print("scim2-tester:", ", ".join(f"{k.lower()} {v}" for k, v in sorted(counts.items())))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
