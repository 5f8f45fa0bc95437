"""Alembic environment of the rule store (driven by ``rule_compiler.store.migrate``)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from rule_compiler.store.migrate import UPGRADE_LOCK_KEY, VERSION_TABLE
from rule_compiler.store.schema import metadata  # every table of the store


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": UPGRADE_LOCK_KEY})
        context.run_migrations()


def run_online() -> None:
    """Use the connection handed over in ``config.attributes``, else connect to the configured URL."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from rule_compiler.settings import store_url
    from rule_compiler.store._db import create_engine

    engine = create_engine(context.config.get_main_option("sqlalchemy.url") or store_url())
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


def run_offline() -> None:
    """Print the SQL (``alembic upgrade --sql``) instead of running it."""
    from rule_compiler.settings import store_url

    context.configure(
        url=context.config.get_main_option("sqlalchemy.url") or store_url(),
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
