"""The ``rule-compiler`` console script: the pure commands plus those that need Airflow connections.

``rule_compiler.cli`` holds the pure commands (validate, compile, apply, test-rule, ...). This entry
point adds what resolves Airflow connection ids (DESIGN §8): ``test-rule --connection`` reads
related rows through :func:`engine_for`, and ``catalog sync`` reflects a live database into an
organization's catalog. Airflow is imported only when a command needs a connection, so
``rule-compiler validate`` stays fast and works without an Airflow home.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rule_compiler import cli
from rule_compiler.cli.commands import CliError, actor_from_args, store_from_args
from rule_compiler.errors import StoreError

if TYPE_CHECKING:
    import sqlalchemy as sa

    from rule_compiler.catalog import Catalog
    from rule_compiler.store import RuleStore

__all__ = ["add_airflow_commands", "engine_for", "main"]


def engine_for(conn_id: str) -> sa.Engine:
    """The SQLAlchemy engine of Airflow connection ``conn_id`` (env var, secrets backend or metadata DB)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # provider manager noise on first import
        from airflow.sdk.exceptions import AirflowNotFoundException

        from rule_engine.hooks.records import RecordsHook

        try:
            return RecordsHook(conn_id).engine
        except AirflowNotFoundException:
            raise CliError(
                f"Airflow connection '{conn_id}' is not defined (set AIRFLOW_CONN_{conn_id.upper()} "
                "or add it with `airflow connections add`)"
            ) from None
        except ValueError as exc:
            raise CliError(str(exc)) from None


def add_airflow_commands(groups: cli.Subcommands) -> None:
    """``catalog sync``."""
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rule-compiler`` console script."""
    return cli.main(argv, engine_for=engine_for, extensions=[add_airflow_commands])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
