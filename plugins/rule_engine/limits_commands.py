"""``rule-compiler limits``: each organization's Airflow pool and quotas (docs/production.md).

    rule-compiler limits show [--org ORG] [--json]
    rule-compiler limits set --org ORG [--pool-slots N] [--max-active N] [--events-per-minute N]
    rule-compiler limits sync           # a pool for every organization (the init service runs it)

A value ``none`` removes that limit. Pool sizes go to Airflow's metadata database (these commands
run where Airflow is configured), then to the rule store.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from rule_compiler import cli
from rule_compiler.cli.commands import CliError, actor_from_args, store_from_args
from rule_compiler.store.org_limits import LIMIT_FIELDS, OrganizationLimits

#: Each limit and its option.
OPTIONS = {
    "pool_slots": "--pool-slots",
    "max_active_definitions": "--max-active",
    "events_per_minute": "--events-per-minute",
}


def _limit(value: str) -> int | None:
    if value.lower() == "none":
        return None
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: a whole number of at least 1, or 'none'")
    return int(value)


def add_limits_commands(groups: cli.Subcommands) -> None:
    """``limits show|set|sync``."""
    p = groups.root.add_parser("limits", help="organizations' Airflow pools and quotas (platform admins)")
    sub = p.add_subparsers(dest="limits_command", required=True, metavar="ACTION")
    show = sub.add_parser("show", help="every organization's pool and quotas")
    show.add_argument("--org", dest="organization", default=None, help="only this organization")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(run=limits_show)
    put = sub.add_parser(
        "set",
        help="set an organization's pool size and quotas",
        description="Set some of an organization's limits (the others keep theirs; 'none' removes one). "
        "--pool-slots creates or resizes its Airflow pool first; the loader then runs its tasks there.",
    )
    put.add_argument("--org", dest="organization", required=True)
    helps = {
        "pool_slots": "size of the organization's Airflow pool",
        "max_active_definitions": "active rules, workflows and reports at most",
        "events_per_minute": "events pushed through POST /events per minute at most",
    }
    for field, option in OPTIONS.items():  # SUPPRESS: an option not given is no attribute (kept as is)
        put.add_argument(option, dest=field, type=_limit, default=argparse.SUPPRESS, help=helps[field])
    put.add_argument("--actor", default=None, help="who is doing it, for the audit log (default: $USER)")
    put.set_defaults(run=limits_set)
    sync = sub.add_parser(
        "sync",
        help="give every organization with a catalog a pool of its own",
        description="Create each organization's Airflow pool with its stored size, or with "
        "$AUTOMATION_ORG_POOL_SLOTS (default 8) when it has none yet. Idempotent.",
    )
    sync.add_argument("--actor", default=None)
    sync.set_defaults(run=limits_sync)


def _as_dict(limits: OrganizationLimits) -> dict[str, Any]:
    return {
        "organization": limits.organization,
        "pool": limits.pool,
        **{name: getattr(limits, name) for name in LIMIT_FIELDS},
    }


def _shown(value: object) -> str:
    return "-" if value is None else str(value)


def _print(rows: list[OrganizationLimits], as_json: bool) -> None:
    if as_json:
        print(json.dumps([_as_dict(r) for r in rows], indent=2))
        return
    print(f"{'organization':<24} {'pool':<32} {'slots':>6} {'max active':>10} {'events/min':>10}")
    for r in rows:
        print(
            f"{r.organization:<24} {_shown(r.pool):<32} {_shown(r.pool_slots):>6} "
            f"{_shown(r.max_active_definitions):>10} {_shown(r.events_per_minute):>10}"
        )


def limits_show(args: argparse.Namespace) -> int:
    store = store_from_args(args)
    if args.organization:
        rows = [store.organization_limits(args.organization)]
    else:
        known = {r.organization: r for r in store.all_organization_limits()}
        names = sorted({*known, *store.catalog_organizations()})
        rows = [known.get(name) or OrganizationLimits(name) for name in names]
    _print(rows, args.json)
    return cli.EXIT_OK


def limits_set(args: argparse.Namespace) -> int:
    from rule_engine.org_pools import set_limits

    given = {field: getattr(args, field) for field in OPTIONS if hasattr(args, field)}
    if not given:
        raise CliError("give at least one of " + ", ".join(OPTIONS.values()))
    limits = set_limits(store_from_args(args), args.organization, given, actor=actor_from_args(args))
    _print([limits], False)
    return cli.EXIT_OK


def limits_sync(args: argparse.Namespace) -> int:
    from rule_engine.org_pools import sync_pools

    store = store_from_args(args)
    rows = sync_pools(store, store.catalog_organizations(), actor=actor_from_args(args))
    _print(rows, False)
    return cli.EXIT_OK
