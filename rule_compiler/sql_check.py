"""Author SQL (data triggers, later reports) must be one read-only statement over catalog tables.

Parsed with a real SQL parser (sqlglot), never with regular expressions: exactly one statement, a
query (``SELECT``/``WITH``/set operations) and nothing that writes anywhere in its tree — no data-
modifying CTE, no ``SELECT ... INTO``, no locking reads — and no function with side effects or
file/network access. The tables it reads are returned so validation can check them against the
catalog. This is the first line; at run time the query also runs in a read-only transaction.
Values come in as bind parameters (``:start``), never as text.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

#: sqlglot dialect per catalog/SQLAlchemy dialect name.
DIALECTS = {"postgresql": "postgres", "postgres": "postgres", "sqlite": "sqlite", None: "postgres"}
_WRITES = (
    exp.Insert,
    exp.Update,
    exp.Delete,
    exp.Merge,
    exp.Create,
    exp.Drop,
    exp.Alter,
    exp.Command,
    exp.Into,
    exp.Lock,
    exp.Copy,
    exp.TruncateTable,
    exp.Grant,
    exp.Set,
    exp.Use,
    exp.Transaction,
    exp.Commit,
    exp.Rollback,
    exp.Pragma,
    exp.Attach,
    exp.Detach,
)
#: Functions a read-only query has no business calling (side effects, sleeps, files, network, config).
FORBIDDEN_FUNCTIONS = frozenset(
    {
        "pg_sleep", "pg_sleep_for", "pg_sleep_until", "set_config", "nextval", "setval",
        "pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file", "lo_import", "lo_export",
        "lo_from_bytea", "lo_put", "dblink", "dblink_exec", "pg_terminate_backend", "pg_cancel_backend",
        "pg_reload_conf", "pg_rotate_logfile", "pg_advisory_lock", "pg_advisory_xact_lock",
        "txid_current", "pg_notify", "query_to_xml", "load_extension", "readfile", "writefile",
        "edit", "fts3_tokenizer", "randomblob", "zeroblob",
    }
)  # fmt: skip


#: What a query may bind: the run's own times (never the wall clock).
QUERY_PARAMETERS = frozenset({"data_interval_start", "data_interval_end", "logical_date"})


class UnsafeQueryError(ValueError):
    """The SQL is not one read-only query; the message says what to change."""


@dataclass(frozen=True)
class ReadOnlyQuery:
    """A checked query: the tables it reads and the bind parameters it expects."""

    tables: tuple[str, ...]
    parameters: tuple[str, ...]


def check_read_only(sql: str, dialect: str | None = None) -> ReadOnlyQuery:
    """Parse ``sql`` and prove it is one read-only query; raise :class:`UnsafeQueryError` if not."""
    read = DIALECTS.get(dialect, dialect)
    try:
        statements = [s for s in sqlglot.parse(sql, read=read) if s is not None]
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        where = f" (line {first.get('line')}, column {first.get('col')})" if first else ""
        raise UnsafeQueryError(f"the SQL does not parse{where}: {first.get('description', exc)}") from None
    if len(statements) != 1:
        raise UnsafeQueryError(f"give exactly one statement, not {len(statements)}")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        raise UnsafeQueryError(
            f"only a query (SELECT or WITH ... SELECT) may run here, not {tree.key.upper()}"
        )
    for node in tree.walk():
        if isinstance(node, _WRITES):
            raise UnsafeQueryError(f"the query must only read, but it contains {_describe(node)}")
        if isinstance(node, exp.Func):
            name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
            if name in FORBIDDEN_FUNCTIONS:
                raise UnsafeQueryError(f"function {name}() is not allowed in a read-only query")
    tables = sorted({t.name for t in tree.find_all(exp.Table) if t.name and not _names_a_cte(t)})
    qualified = [t.sql() for t in tree.find_all(exp.Table) if t.args.get("db") or t.args.get("catalog")]
    if qualified:
        raise UnsafeQueryError(
            f"name tables without a schema or database prefix ({', '.join(qualified)}): the catalog "
            "lists the tables of the connection's default schema"
        )
    placeholders = list(tree.find_all(exp.Placeholder))
    if any(not p.name or p.name == "?" for p in placeholders):
        raise UnsafeQueryError("use named bind parameters (:data_interval_start), not positional ones (?)")
    parameters = sorted({p.name for p in placeholders})
    return ReadOnlyQuery(tables=tuple(tables), parameters=tuple(parameters))


def _names_a_cte(table: exp.Table) -> bool:
    """Whether ``table`` refers to a CTE visible where it appears, not to a real table of that name.

    Visible: the CTEs of every enclosing ``WITH`` — from inside a CTE's own body only the earlier
    ones (all of them under ``WITH RECURSIVE``). A same-named reference anywhere else reads the real
    table, so it must be checked against the catalog like any other.
    """
    if table.args.get("db") or table.args.get("catalog"):
        return False
    child: exp.Expr = table
    node = table.parent
    while node is not None:
        if isinstance(node, exp.Query):
            with_ = next((v for v in node.args.values() if isinstance(v, exp.With)), None)
            if with_ is not None:
                ctes = list(with_.expressions)
                if child is with_ and not with_.args.get("recursive"):
                    inside = next(i for i, c in enumerate(ctes) if _contains(c, table))
                    ctes = ctes[:inside]
                if table.name in {cte.alias_or_name for cte in ctes}:
                    return True
        child, node = node, node.parent
    return False


def _contains(tree: exp.Expr, node: exp.Expr) -> bool:
    return any(found is node for found in tree.find_all(type(node)))  # identity: equal nodes are not it


def _describe(node: exp.Expression) -> str:
    if isinstance(node, exp.Into):
        return "SELECT ... INTO (which creates a table)"
    if isinstance(node, exp.Lock):
        return "a locking clause (FOR UPDATE/SHARE)"
    return f"a {node.key.upper()} statement"
