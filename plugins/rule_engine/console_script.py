"""The ``rule-compiler`` console script: the pure commands plus those that need Airflow connections.

``rule_compiler.cli`` holds the pure commands (validate, compile, apply, test-rule, ...). This entry
point adds what resolves Airflow connection ids (docs/architecture.md §1): ``test-rule --connection`` reads
related rows through :func:`engine_for`, ``catalog sync`` reflects a live database into an
organization's catalog, ``webhooks deliveries`` / ``webhooks redeliver`` show the webhook
delivery ledger and send a stored request again, signed with the connection's current secrets, and
``runs rerun`` / ``runs cancel`` operate a rule's or workflow's run in Airflow's metadata database
(:mod:`rule_engine.run_operations`, shared with the REST routes), and ``notifications redeliver``
sends a failed notification again through the channels' connections.
Airflow is imported only when a command needs a connection, so ``rule-compiler validate`` stays
fast and works without an Airflow home.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rule_compiler import cli
from rule_compiler.cli.commands import CliError, actor_from_args, store_from_args
from rule_compiler.errors import StoreError

if TYPE_CHECKING:
    import sqlalchemy as sa

    from rule_compiler.catalog import Catalog
    from rule_compiler.store import RuleStore

__all__ = ["add_airflow_commands", "engine_for", "main"]


def engine_for(conn_id: str) -> sa.Engine:
    """The engine of Airflow connection ``conn_id`` (env var, secrets backend or metadata DB), from the
    plugin's one connection seam (:func:`rule_engine.hooks.app_database.engine_for`); a connection
    that is missing or no SQL database is a :class:`CliError` (exit 2) naming it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # provider manager noise on first import
        from rule_engine.hooks import app_database

        try:
            return app_database.engine_for(conn_id)
        except app_database.AppDatabaseError as exc:
            raise CliError(str(exc)) from None


def add_airflow_commands(groups: cli.Subcommands) -> None:
    """``catalog sync``, ``webhooks deliveries|redeliver``, ``runs rerun|cancel``,
    ``notifications redeliver``, ``limits show|set|sync``."""
    from rule_engine.limits_commands import add_limits_commands

    add_limits_commands(groups)
    _add_webhook_commands(groups)
    _add_run_commands(groups)
    r = groups.groups["notifications"].add_parser(
        "redeliver",
        help="send a failed notification delivery again, as it was rendered",
        description="Send the stored message of notification delivery KEY (see `notifications deliveries "
        "--status failed --json`) again on its channel, through the same senders as the task (an email "
        "keeps its Message-ID). Only failed or retrying deliveries are sent again. The attempt is "
        "recorded on the delivery and audited. Exit codes: 0 sent, 1 attempted but not sent (recorded "
        "failed), 2 refused (unknown key, sent or in another state, no stored message).",
    )
    r.add_argument("key", metavar="KEY", help="the delivery's key (64 hex characters)")
    r.add_argument("--actor", default=None, help="who is doing it, for the audit log (default: $USER)")
    r.set_defaults(run=notification_redeliver)
    c = groups.groups["catalog"].add_parser(
        "sync",
        help="reflect a live database (Airflow connection) into an organization's catalog",
        description="Reflect the tables of an Airflow connection's database (types, nullability, "
        "primary and foreign keys) and store them in the organization's catalog as a new version when "
        "something changed. The connection's tables are replaced by the reflection; soft_delete_column "
        "and writable of existing tables, and every other connection, are kept.",
    )
    c.add_argument("--connection", required=True, help="Airflow connection id of the database")
    c.add_argument(
        "--org",
        dest="organization",
        default=None,
        help="organization (default: the one whose catalog lists the connection; required for a new catalog)",
    )
    c.add_argument(
        "--tables",
        nargs="+",
        default=None,
        help="tables to sync (default: those the catalog already lists for the connection, else all)",
    )
    c.add_argument("--actor", default=None, help="who is syncing (default: $USER)")
    c.add_argument("--dry-run", action="store_true", help="show what would change; store nothing")
    c.set_defaults(run=catalog_sync)


def catalog_sync(args: argparse.Namespace) -> int:
    from rule_compiler.catalog import Catalog
    from rule_compiler.catalog_reflect import ReflectionError, merge_connection, reflect_tables

    store = store_from_args(args)
    conn_id: str = args.connection
    try:
        organization = args.organization or _organization_using(store, conn_id)
        raw = store.get_catalog(organization)
    except StoreError as exc:
        raise CliError(f"rule store: {exc}") from None
    current = Catalog.model_validate(raw) if raw is not None else None
    tables: list[str] | None = args.tables
    if tables is None and current is not None and conn_id in current.connections:
        tables = sorted(current.connections[conn_id].tables) or None
    engine = (args.engine_for or engine_for)(conn_id)
    notes: list[str] = []
    try:
        reflected = reflect_tables(engine, tables, notes=notes)
    except ReflectionError as exc:
        raise CliError(f"connection '{conn_id}': {exc}") from None
    if not reflected:
        raise CliError(f"connection '{conn_id}': no table to sync")
    merged = merge_connection(current, organization=organization, connection_id=conn_id, tables=reflected)
    new_data = merged.catalog.model_dump(mode="json")
    unchanged = current is not None and current.model_dump(mode="json") == new_data

    count = f"{len(reflected)} table{'s' if len(reflected) != 1 else ''}"
    print(f"catalog of {organization}, connection {conn_id}: {count} reflected ({', '.join(reflected)})")
    if merged.changes.created_catalog:
        print(f"  + catalog of {organization} (new)")
    elif merged.changes.added_connection:
        print(f"  + connection {conn_id}")
    for line in merged.changes.summary_lines(merged.catalog.connections[conn_id].tables):
        print(f"  {line}")
    for line in [*merged.changes.kept, *notes]:
        print(f"  note: {line}")
    if unchanged:
        print(
            f"unchanged: catalog of {organization} stays at version {_current_version(store, organization)}"
        )
        return cli.EXIT_OK
    if args.dry_run:
        print("dry run: nothing stored")
        return cli.EXIT_OK
    try:
        version = store.put_catalog(organization=organization, catalog=new_data, actor=actor_from_args(args))
    except StoreError as exc:
        raise CliError(f"rule store: {exc}") from None
    print(f"catalog of {organization}: version {version}")
    return cli.EXIT_OK


def _organization_using(store: RuleStore, conn_id: str) -> str:
    """The one organization whose current catalog lists ``conn_id`` (``--org`` otherwise)."""
    from rule_compiler.catalog_reflect import organizations_using

    orgs = organizations_using(_all_catalogs(store), conn_id)
    if len(orgs) == 1:
        return orgs[0]
    if not orgs:
        raise CliError(
            f"no organization's catalog lists connection '{conn_id}': name the organization with --org"
        )
    raise CliError(
        f"several organizations use connection '{conn_id}' ({', '.join(orgs)}): pick one with --org"
    )


def _current_version(store: RuleStore, organization: str) -> int | None:
    try:
        return store.catalog_version(organization)
    except StoreError as exc:
        raise CliError(f"rule store: {exc}") from None


def _all_catalogs(store: RuleStore) -> dict[str, Catalog]:
    from rule_compiler.catalog import Catalog

    try:
        found: dict[str, Catalog] = {}
        for organization in store.catalog_organizations():
            raw = store.get_catalog(organization)
            if raw is not None:
                found[organization] = Catalog.model_validate(raw)
    except StoreError as exc:
        raise CliError(f"rule store: {exc}") from None
    return found


#: Delivery statuses ``webhooks deliveries --status`` may filter on.
DELIVERY_STATUSES = ("failed", "retrying", "delivered", "sending")
#: Characters of an error shown in the deliveries table.
ERROR_CHARS = 60


def _add_webhook_commands(groups: cli.Subcommands) -> None:
    p = groups.root.add_parser("webhooks", help="the webhook delivery log; redeliver a stored request")
    sub = p.add_subparsers(dest="webhooks_command", required=True, metavar="ACTION")
    d = sub.add_parser(
        "deliveries",
        help="list webhook deliveries, most recently updated first",
        description="List the webhook delivery ledger: key (the webhook-id), rule, action, status, "
        "attempts, last HTTP status, last update and error.",
    )
    d.add_argument("--org", dest="organization", default=None, help="only this organization's rules")
    d.add_argument("--status", choices=DELIVERY_STATUSES, default=None)
    d.add_argument("--rule", dest="rule_id", metavar="ORG/NAME", default=None, help="only this rule")
    d.add_argument("--limit", type=int, default=50, help="rows at most (default 50)")
    d.add_argument("--json", action="store_true", help="print JSON (full keys) instead of a table")
    d.set_defaults(run=webhook_deliveries)
    r = sub.add_parser(
        "redeliver",
        help="send a delivery's stored request again, with the same webhook-id",
        description="Send the stored request of delivery KEY (the full key or a unique prefix of 8 "
        "or more characters) again: the same webhook-id, a fresh timestamp and a signature from the "
        "connection's current secrets, through the same SSRF-guarded transport. The attempt is "
        "recorded in the ledger. Exit codes: 0 delivered, 1 sent but not delivered (recorded as "
        "retrying or failed), 2 refused (unknown key, no stored request, already delivered "
        "without --force) or another error.",
    )
    r.add_argument("key", metavar="KEY", help="delivery key (webhook-id), or a unique prefix of it")
    r.add_argument("--force", action="store_true", help="send a delivery that was already delivered")
    r.set_defaults(run=webhook_redeliver)


def webhook_deliveries(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from rule_compiler.runtime.webhook_requests import list_deliveries

    store = store_from_args(args)
    try:
        rows = list_deliveries(
            store.engine,
            organization=args.organization,
            status=args.status,
            rule_id=args.rule_id,
            limit=args.limit,
        )
    except sa.exc.SQLAlchemyError as exc:
        raise CliError(_store_failure(store, exc)) from None
    if args.json:
        print(json.dumps([_delivery_json(row) for row in rows], indent=2))
        return cli.EXIT_OK
    if not rows:
        print("no webhook deliveries")
        return cli.EXIT_OK
    header = ("KEY", "RULE", "ACTION", "STATUS", "ATTEMPTS", "HTTP", "UPDATED (UTC)", "ERROR")
    table = [header, *(_delivery_cells(row) for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(header) - 1)]
    for line in table:
        print("  ".join([*(cell.ljust(w) for cell, w in zip(line, widths, strict=False)), line[-1]]).rstrip())
    return cli.EXIT_OK


def webhook_redeliver(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from rule_compiler.errors import PermanentActionError
    from rule_compiler.runtime.webhook_requests import RedeliveryRefusedError
    from rule_engine.webhook_redelivery import prepare, redeliver

    store = store_from_args(args)
    try:
        row = prepare(store.engine, args.key, force=args.force)
        print(f"redelivering {row['idempotency_key']} ({row['rule_id']}, action {row['action_id']})")
        outcome = redeliver(store.engine, row, force=args.force)
    except (RedeliveryRefusedError, PermanentActionError) as exc:
        raise CliError(str(exc)) from None
    except sa.exc.SQLAlchemyError as exc:
        raise CliError(_store_failure(store, exc)) from None
    print(f"  {outcome.method} {outcome.target}")
    if outcome.http_status is None:
        print(f"attempt {outcome.attempt}: not delivered ({outcome.error})")
        return cli.EXIT_INVALID
    if not outcome.delivered:
        recorded = f"not delivered ({outcome.error}); recorded as {outcome.ledger_status}"
        print(f"attempt {outcome.attempt}: HTTP {outcome.http_status}, {recorded}")
        return cli.EXIT_INVALID
    print(f"attempt {outcome.attempt}: HTTP {outcome.http_status}, delivered")
    return cli.EXIT_OK


#: The kinds with runs to operate (``rule_engine.run_operations.RUN_KINDS``; not imported here: that
#: module imports Airflow, and building the parser must not).
RUN_KINDS = ("rule", "workflow")


def _add_run_commands(groups: cli.Subcommands) -> None:
    p = groups.root.add_parser("runs", help="re-run a run's failed actions; cancel a run")
    sub = p.add_subparsers(dest="runs_command", required=True, metavar="ACTION")
    helps = {
        "rerun": (
            "run a finished run's failed actions again, in the same run",
            "Clear the failed actions (or workflow nodes) of run RUN_ID and every task after them in "
            "Airflow; the run is queued again with the same run id, so the items they had already acted "
            "on are skipped (same idempotency keys). Audited. Exit code 2 when refused (unknown run, still "
            "queued or running, cancelled, nothing failed).",
            runs_rerun,
        ),
        "cancel": (
            "cancel a queued, running or waiting run",
            "Mark run RUN_ID cancelled in the automation log (no action or node applies anything after "
            "it), then fail it in Airflow (its running, deferred and waiting tasks end). Audited. Exit "
            "code 2 when refused (unknown run, already ended or cancelled).",
            runs_cancel,
        ),
    }
    for action, (summary, description, run) in helps.items():
        c = sub.add_parser(action, help=summary, description=description)
        c.add_argument("kind", choices=RUN_KINDS, help="the definition's kind")
        c.add_argument("name", metavar="ORG/NAME", help="the definition, e.g. acme/flag-big-paid-orders")
        c.add_argument("run_id", metavar="RUN_ID", help="the Airflow run id")
        c.add_argument("--actor", default=None, help="who is doing it, for the audit log (default: $USER)")
        c.set_defaults(run=run)


def _run_operation(args: argparse.Namespace, operation: Any) -> Any:
    import sqlalchemy as sa

    from rule_compiler.errors import NotFoundError, RefusedError

    organization, _, name = str(args.name).partition("/")
    if not organization or not name:
        raise CliError(f"{args.name!r}: give the definition as ORG/NAME")
    store = store_from_args(args)
    try:
        return operation(
            store,
            organization=organization,
            kind=args.kind,
            name=name,
            run_id=args.run_id,
            actor=actor_from_args(args),
        )
    except (NotFoundError, RefusedError) as exc:
        raise CliError(str(exc)) from None
    except sa.exc.SQLAlchemyError as exc:
        raise CliError(f"the rule store or Airflow's metadata database failed: {_reason(exc)}") from None


def runs_rerun(args: argparse.Namespace) -> int:
    from rule_engine.run_operations import rerun_failed

    done = _run_operation(args, rerun_failed)
    print(f"run {done.run_id} of {done.dag_id} queued again: failed {', '.join(done.failed)}")
    print(f"  tasks cleared: {', '.join(done.cleared)}")
    return cli.EXIT_OK


def runs_cancel(args: argparse.Namespace) -> int:
    from rule_engine.run_operations import cancel

    done = _run_operation(args, cancel)
    if done.tasks_ended is None:
        print(
            f"run {done.run_id} of {done.dag_id} cancelled; Airflow's metadata database did not answer: "
            "its tasks end when they next check"
        )
        return cli.EXIT_INVALID
    print(f"run {done.run_id} of {done.dag_id} cancelled: {done.tasks_ended} task(s) ended")
    return cli.EXIT_OK


def notification_redeliver(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from rule_compiler.errors import NotFoundError, RefusedError
    from rule_engine.notification_redelivery import prepare, redeliver

    store = store_from_args(args)
    try:
        row = prepare(store.engine, args.key)
        print(f"redelivering {row.idempotency_key} ({row.channel} to {row.recipient}, {row.rule_id})")
        outcome = redeliver(store, row, actor=actor_from_args(args))
    except (NotFoundError, RefusedError) as exc:
        raise CliError(str(exc)) from None
    except sa.exc.SQLAlchemyError as exc:
        raise CliError(_store_failure(store, exc)) from None
    if not outcome.sent:
        print(f"attempt {outcome.attempt}: not sent ({outcome.error}); recorded as {outcome.status}")
        return cli.EXIT_INVALID
    print(f"attempt {outcome.attempt}: sent")
    return cli.EXIT_OK


def _delivery_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "key": row["idempotency_key"],
        "organization": row.get("organization"),
        "rule": row["rule_id"],
        "action": row["action_id"],
        "occurrence": row["occurrence_id"],
        "row_key": row["row_key"],
        "status": row["status"],
        "attempts": row["attempts"],
        "response_status": row["response_status"],
        "updated_at": row["updated_at"].isoformat() if row["updated_at"] is not None else None,
        "error": row["error"],
        "redeliverable": bool(row.get("request_json")),
    }


def _delivery_cells(row: dict[str, Any]) -> tuple[str, ...]:
    updated = row["updated_at"]
    error = " ".join(str(row["error"] or "").split())
    return (
        str(row["idempotency_key"])[:12],
        str(row["rule_id"]),
        str(row["action_id"]),
        str(row["status"]),
        str(row["attempts"]),
        str(row["response_status"] or "-"),
        updated.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S") if updated is not None else "-",
        error if len(error) <= ERROR_CHARS else error[: ERROR_CHARS - 1] + "…",
    )


def _reason(exc: Exception) -> str:
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]


def _store_failure(store: RuleStore, exc: Exception) -> str:
    return (
        f"rule store {store.url}: {_reason(exc)} (run `rule-compiler db upgrade` if its tables are missing)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rule-compiler`` console script."""
    return cli.main(argv, engine_for=engine_for, extensions=[add_airflow_commands])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
