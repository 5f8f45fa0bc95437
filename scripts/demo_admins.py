"""Give the demo's Airflow admins an ``admin`` membership of the demo organization (idempotent).

    python scripts/demo_admins.py include/catalog/acme.yaml     # what scripts/setup-demo.sh runs

The organization is the catalog file's ``organization``. The users are those of
``AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS`` (``name:role,...``, as scripts/airflow-env.sh sets it) whose
Airflow role is ``admin``: with a membership they act in that organization without ``?organization=`` on
every call to ``/automations/api/v1``. A membership that is already ``admin`` is left as it is (no new
audit row); one with another role is raised to ``admin``. The store is ``AUTOMATION_STORE_URL``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rule_compiler.loading import read_definition_file
from rule_compiler.store import RuleStore

ACTOR = "setup-demo"


def airflow_admins(users: str) -> list[str]:
    """The usernames whose role is ``admin`` in a SimpleAuthManager users setting (``name:role,...``)."""
    admins = []
    for entry in users.split(","):
        name, _, role = entry.strip().partition(":")
        if name and role.strip().lower() == "admin":
            admins.append(name.strip())
    return admins


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("catalog", type=Path, help="the demo catalog file (its organization is used)")
    args = parser.parse_args(argv)
    organization = str(read_definition_file(args.catalog)["organization"])
    users = os.environ.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin")
    admins = airflow_admins(users)
    if not admins:
        print(f"no Airflow admin among SIMPLE_AUTH_MANAGER_USERS={users!r}: no membership given")
        return 0
    store = RuleStore()
    try:
        for username in admins:
            before = store.get_membership(organization, username)
            if before is not None and before.role == "admin":
                print(f"{username}: already an admin of {organization}")
                continue
            store.put_membership(organization=organization, username=username, role="admin", actor=ACTOR)
            was = "" if before is None else f" (was {before.role})"
            print(f"{username}: now an admin of {organization}{was}")
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
