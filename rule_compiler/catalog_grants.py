"""The Postgres statements that make a query role able to SELECT only the catalog's tables.

Author SQL runs as the catalog's ``query_role`` of its connection (``SET LOCAL ROLE``), so what that
role may read is what author SQL may read, whatever the SQL check misses. Pure: the statements come
from the catalog alone; a database owner or superuser runs them in the connection's database
(``rule-compiler catalog grants ... | psql``). They are safe to run again after the catalog changes:
the role is created only when missing, and every grant it holds in the schema is revoked before the
catalog's tables are granted, so a table that left the catalog leaves the role's reach too.
"""

from __future__ import annotations

from rule_compiler.catalog import Catalog
from rule_compiler.definitions.common import IDENTIFIER_RE, MAX_NAME_LENGTH
from rule_compiler.errors import InvalidValueError


class GrantsError(InvalidValueError):
    """The statements cannot be written for these names; the message says why."""


def quote_identifier(name: str) -> str:
    """``name`` as a Postgres quoted identifier (always quoted: ``Orders`` stays ``Orders``)."""
    return '"' + name.replace('"', '""') + '"'


def grant_statements(
    catalog: Catalog,
    conn_id: str,
    role: str,
    *,
    schema: str = "public",
    grant_to: str | None = None,
) -> list[str]:
    """The statements (each ending in ``;``, comments as ``--`` lines) that give ``role`` SELECT on
    exactly the tables the catalog lists for database connection ``conn_id`` in ``schema``, and
    nothing else; ``grant_to``: the connection's login user, which must be able to switch to it."""
    for what, name in (("role", role), ("schema", schema), ("user", grant_to)):
        if name is not None and (len(name) > MAX_NAME_LENGTH or not IDENTIFIER_RE.fullmatch(name)):
            raise GrantsError(f"the {what} {name[:80]!r} is not a plain identifier (letters, digits, _)")
    connection = catalog.connections.get(conn_id)
    if connection is None:
        known = ", ".join(sorted(c for c, v in catalog.connections.items() if v.kind == "database"))
        raise GrantsError(
            f"the catalog of {catalog.organization} has no connection '{conn_id}' "
            f"(its database connections: {known or 'none'})"
        )
    if connection.kind != "database":
        raise GrantsError(f"connection '{conn_id}' is a {connection.kind} connection, not a database")
    quoted_role, quoted_schema = quote_identifier(role), quote_identifier(schema)
    tables = [f"{quoted_schema}.{quote_identifier(table)}" for table in sorted(connection.tables)]
    lines = [
        f"-- Query role {role} for author SQL (report queries, data triggers) of organization "
        f"{catalog.organization} on connection {conn_id}: SELECT on the catalog's tables only.",
        "-- Run as the database owner or a superuser, in the database the connection points at.",
        "DO $$ BEGIN",
        f"    CREATE ROLE {quoted_role} NOLOGIN;",
        "EXCEPTION WHEN duplicate_object THEN",
        f"    RAISE NOTICE 'role {role} exists: its grants are reset below';",
        "END $$;",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {quoted_schema} FROM {quoted_role};",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {quoted_schema} FROM {quoted_role};",
        f"REVOKE CREATE ON SCHEMA {quoted_schema} FROM {quoted_role};",
        f"GRANT USAGE ON SCHEMA {quoted_schema} TO {quoted_role};",
    ]
    if tables:
        lines.append(f"GRANT SELECT ON TABLE {', '.join(tables)} TO {quoted_role};")
    else:
        lines.append(f"-- the catalog lists no table for {conn_id}: the role may read nothing")
    lines += [
        "-- Postgres 14 and older let every role CREATE in schema public, and the run-time check",
        "-- refuses a query role that may create; there, also run (Postgres 15 does this already):",
        "-- REVOKE CREATE ON SCHEMA public FROM PUBLIC;",
    ]
    if grant_to is not None:
        lines.append(f"GRANT {quoted_role} TO {quote_identifier(grant_to)};")
    else:
        lines.append(
            f"-- and let the connection's login user switch to the role: GRANT {quoted_role} TO <user>;"
        )
    lines.append(
        f"-- Then a platform administrator sets `query_role: {role}` on connection {conn_id} in the "
        "catalog (PUT /catalog or `rule-compiler catalog apply`)."
    )
    return lines
