"""``rule-compiler restore KIND ORG/NAME VERSION``: make an old version the current one again.

The old version is validated and compiled as today's catalog and templates say (as any write), then
stored as a new version with its audit row naming ``restored_from``; what uses it (a template's rules)
is recompiled in the same transaction. The REST view's ``POST …/{name}/versions/{n}/restore`` does
the same.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rule_compiler.cli.common import CliError, actor_from_args, print_invalid, store_from_args
from rule_compiler.errors import DefinitionError, NotFoundError, StoreError
from rule_compiler.kinds import KINDS
from rule_compiler.write_plans import plan_write, restored_document

EXIT_OK, EXIT_INVALID = 0, 1


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "restore",
        help="make an old version of a stored definition the current one again (as a new version)",
    )
    p.add_argument("kind", choices=list(KINDS), help="the definition's kind")
    p.add_argument("name", metavar="ORG/NAME", help="the definition, e.g. acme/flag-big-paid-orders")
    p.add_argument("version", type=int, help="the version to restore (see `rule-compiler list`)")
    p.add_argument("--actor", default=None, help="who is restoring (default: $USER)")
    p.add_argument("--dry-run", action="store_true", help="validate and compile only")
    p.set_defaults(run=restore)


def restore(args: argparse.Namespace) -> int:
    organization, _, name = str(args.name).partition("/")
    if not organization or not name:
        raise CliError(f"{args.name!r}: give the definition as ORG/NAME")
    label = f"{args.kind} {organization}/{name}"
    store = store_from_args(args)
    try:
        current = store.get(organization=organization, kind=args.kind, name=name)
        document = restored_document(store, organization, args.kind, name, args.version)
        plan = plan_write(store, organization, document)
    except NotFoundError as exc:
        raise CliError(str(exc)) from None
    except DefinitionError as exc:
        print_invalid(Path(f"{label} version {args.version}"), exc)
        print(f"version {args.version} is not valid today; nothing was stored")
        return EXIT_INVALID
    except StoreError as exc:
        raise CliError(f"rule store: {exc}") from None
    for dependent in plan.broken:
        row = dependent.stored
        assert dependent.error is not None  # noqa: S101 - broken ones have their error
        print_invalid(
            Path(f"stored {row.kind} {row.organization}/{row.name} (uses {', '.join(dependent.uses)})"),
            dependent.error,
        )
    if plan.broken:
        print(f"{len(plan.broken)} stored definitions would become invalid; nothing was stored")
        return EXIT_INVALID
    if args.dry_run:
        print(f"version {args.version} of {label} is valid (dry run: nothing stored)")
        return EXIT_OK
    writes = plan.writes(actor_from_args(args), (current.version, current.active), restored_from=args.version)
    try:
        first, *others = store.apply_all(writes)
    except StoreError as exc:
        raise CliError(f"rule store: {exc}") from None
    if first.status == "unchanged":
        print(f"{label} is already at the content of version {args.version}: nothing stored")
    else:
        print(f"restored {label}: version {args.version} is now version {first.version} ({first.dag_id})")
    for dependent, result in zip(plan.dependents, others, strict=True):
        if result.status != "unchanged":
            print(f"recompiled {result.dag_id} v{result.version} (uses {', '.join(dependent.uses)})")
    return EXIT_OK
