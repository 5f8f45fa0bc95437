"""Alembic, run from code: the migrations ship inside the package and no alembic.ini is needed.

The version table is ``rule_store_alembic_version``, so the store can live in the same database as
Airflow's metadata (whose Alembic uses ``alembic_version``).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "rule_store_alembic_version"
# pg_advisory_xact_lock key: two processes upgrading the same Postgres database take turns.
UPGRADE_LOCK_KEY = 0x52554C45  # "RULE"
# Alembic's ``context``/``op`` proxies are process-global: one migration command at a time per process.
_ALEMBIC_LOCK = threading.Lock()


def alembic_config(connection: sa.Connection | None = None, *, url: str | None = None) -> Any:
    """An Alembic ``Config`` for the packaged migrations, bound to ``connection`` (or ``url``)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def upgrade(connection: sa.Connection, revision: str = "head") -> None:
    """Migrate the database behind ``connection`` up to ``revision`` (within its transaction)."""
    from alembic import command

    with _ALEMBIC_LOCK:
        command.upgrade(alembic_config(connection), revision)


def downgrade(connection: sa.Connection, revision: str = "base") -> None:
    """Migrate down to ``revision`` (``base`` drops every table of the store)."""
    from alembic import command

    with _ALEMBIC_LOCK:
        command.downgrade(alembic_config(connection), revision)


def current_revision(connection: sa.Connection) -> str | None:
    """The revision the database is at, or None when the store was never migrated."""
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    revision: str | None = context.get_current_revision()
    return revision


def head_revision() -> str:
    """The newest revision shipped with this package."""
    from alembic.script import ScriptDirectory

    head: str | None = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships its migrations
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head
