"""Author SQL (report queries, data triggers) must be one read-only query over catalog tables, made
only of what :mod:`rule_compiler.sql_allowlist` allows.

Parsed with a real SQL parser (sqlglot), never with regular expressions: exactly one statement, a
query (``SELECT``/``WITH``/set operations), and every node of its tree on the allow-list — functions
(aggregates, window, arithmetic, text, date/time, conditional, JSON reading), constructs and cast
types. Anything else is refused by name: a server function (``table_to_xml``, ``dblink_connect``,
``pg_advisory_lock``, ``current_setting``), a function that returns rows (``generate_series``), a
regular expression, a cast to ``regclass``, a system table (``pg_class``), a write anywhere in the
tree. The tables it reads are returned so validation can check them against the catalog. This is the
first line; at run time the query is checked again and runs in a read-only transaction with
statement and lock timeouts (:mod:`rule_compiler.runtime.data_query`), under the catalog's
restricted role when it names one. Values come in as bind parameters (``:start``), never as text.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ErrorLevel, ParseError, SqlglotError, TokenError
from sqlglot.tokenizer_core import Token, TokenType

from rule_compiler.errors import InvalidValueError
from rule_compiler.sql_allowlist import (
    ALLOWED_SUMMARY,
    CAST_TYPES,
    CONSTRUCTS,
    MAX_PAD_LENGTH,
    NAMED_FUNCTIONS,
    REFUSED_WITH_REASON,
    SESSION_KEYWORDS,
    SYSTEM_TABLE_PREFIXES,
    TYPED_FUNCTIONS,
)

_T = TypeVar("_T")
#: sqlglot dialect per catalog/SQLAlchemy dialect name.
DIALECTS = {"postgresql": "postgres", "postgres": "postgres", "sqlite": "sqlite", None: "postgres"}
#: The longest SQL text parsed (characters): what a report's inline ``sql`` may hold; also bounds
#: an ``sql_file``, which no model limits.
MAX_SQL_LENGTH = 50_000
#: How deeply parentheses, brackets and CASE may nest: the parser recurses about twenty Python frames
#: per level and runs on a fresh stack (:func:`_on_a_fresh_stack`), so this parses within Python's
#: default recursion limit.
MAX_NESTING = 32
#: How deeply brackets may nest: the parser's time doubles with each ``ARRAY[`` level.
MAX_BRACKET_NESTING = 4
_OPENERS = frozenset({TokenType.L_PAREN, TokenType.L_BRACKET, TokenType.CASE})
_CLOSERS = frozenset({TokenType.R_PAREN, TokenType.R_BRACKET, TokenType.END})
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

#: What a query may bind: the run's own times (never the wall clock).
QUERY_PARAMETERS = frozenset({"data_interval_start", "data_interval_end", "logical_date"})


class UnsafeQueryError(InvalidValueError):
    """The SQL is not one read-only query; the message says what to change."""


@dataclass(frozen=True)
class ReadOnlyQuery:
    """A checked query: the tables it reads and the bind parameters it expects."""

    tables: tuple[str, ...]
    parameters: tuple[str, ...]


def check_read_only(sql: str, dialect: str | None = None) -> ReadOnlyQuery:
    """Parse ``sql`` and prove it is one read-only query made only of allowed functions and
    constructs; raise :class:`UnsafeQueryError` (whose message names what to change) if not."""
    read = DIALECTS.get(dialect, dialect)
    tree = _parse(sql, str(read))
    for node in tree.walk():
        problem = _node_problem(node, str(read))
        if problem:
            raise UnsafeQueryError(problem)
    tables = sorted({t.name for t in tree.find_all(exp.Table) if t.name and not _names_a_cte(t)})
    qualified = [t.sql() for t in tree.find_all(exp.Table) if t.args.get("db") or t.args.get("catalog")]
    if qualified:
        raise UnsafeQueryError(
            f"name tables without a schema or database prefix ({', '.join(qualified)}): the catalog "
            "lists the tables of the connection's default schema"
        )
    system = [t for t in tables if t.lower().startswith(SYSTEM_TABLE_PREFIXES)]
    if system:
        raise UnsafeQueryError(
            f"the query reads {', '.join(repr(t) for t in system)}: system tables are not in the "
            "catalog, and only the catalog's tables may be read"
        )
    placeholders = list(tree.find_all(exp.Placeholder))
    if any(not p.name or p.name == "?" for p in placeholders):
        raise UnsafeQueryError("use named bind parameters (:data_interval_start), not positional ones (?)")
    parameters = sorted({p.name for p in placeholders})
    return ReadOnlyQuery(tables=tuple(tables), parameters=tuple(parameters))


def parse_query(sql: str, dialect: str | None = None) -> exp.Expr:
    """The one query statement of ``sql``, parsed as :func:`check_read_only` parses it (bounded, on a
    fresh stack) but not checked; :class:`UnsafeQueryError` when it is not one query."""
    return _parse(sql, str(DIALECTS.get(dialect, dialect)))


def _parse(sql: str, read: str) -> exp.Expr:
    """The one query statement of ``sql``; every way it fails to be one is an UnsafeQueryError."""
    if len(sql) > MAX_SQL_LENGTH:
        raise UnsafeQueryError(f"the SQL is {len(sql):,} characters long; at most {MAX_SQL_LENGTH:,}")
    try:
        statements = _on_a_fresh_stack(lambda: _statements(sql, read))
    except UnsafeQueryError:
        raise
    except TokenError:
        raise UnsafeQueryError(
            "the SQL cannot be read: a quote ('...' or \"...\"), a comment (/* ... */) or a "
            "dollar-quoted string ($$ ... $$) is not closed"
        ) from None
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        where = f" (line {first.get('line')}, column {first.get('col')})" if first else ""
        raise UnsafeQueryError(f"the SQL does not parse{where}: {first.get('description', exc)}") from None
    except (SqlglotError, RecursionError, ValueError) as exc:
        reason = "it nests too deeply" if isinstance(exc, RecursionError) else str(exc).splitlines()[0]
        raise UnsafeQueryError(f"the SQL cannot be checked: {reason[:200]}") from None
    if len(statements) != 1:
        raise UnsafeQueryError(f"give exactly one statement, not {len(statements)}")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        raise UnsafeQueryError(
            f"only a query (SELECT or WITH ... SELECT) may run here, not {tree.key.upper()}"
        )
    return tree


def _statements(sql: str, read: str) -> list[exp.Expr]:
    dialect = Dialect.get_or_raise(read)
    tokens = dialect.tokenize(sql)
    _check_nesting(tokens)
    return [s for s in dialect.parser().parse(tokens, sql) if s is not None]


def _on_a_fresh_stack(work: Callable[[], _T]) -> _T:
    """``work()`` run in a thread of its own: the parser recurses about twenty frames per nesting
    level, so it gets the whole recursion limit whatever the caller's depth (a worker's stack is
    deeper than the API's), and a query parses the same wherever it is checked."""
    outcome: list[tuple[bool, Any]] = []

    def run() -> None:
        try:
            outcome.append((True, work()))
        except BaseException as exc:  # handed to the caller below
            outcome.append((False, exc))

    thread = threading.Thread(target=run, name="author-sql-check", daemon=True)
    thread.start()
    thread.join()
    done, value = outcome[0]
    if not done:
        raise value
    result: _T = value
    return result


def _check_nesting(tokens: list[Token]) -> None:
    depth = deepest = brackets = deepest_brackets = 0
    for token in tokens:
        if token.token_type in _OPENERS:
            depth += 1
            deepest = max(deepest, depth)
            if token.token_type == TokenType.L_BRACKET:
                brackets += 1
                deepest_brackets = max(deepest_brackets, brackets)
        elif token.token_type in _CLOSERS:
            depth -= 1
            brackets -= token.token_type == TokenType.R_BRACKET
    if deepest > MAX_NESTING:
        raise UnsafeQueryError(
            f"the SQL nests parentheses, brackets and CASE {deepest} levels deep; at most {MAX_NESTING}"
        )
    if deepest_brackets > MAX_BRACKET_NESTING:
        raise UnsafeQueryError(
            f"the SQL nests brackets (ARRAY[...], x[...]) {deepest_brackets} levels deep; "
            f"at most {MAX_BRACKET_NESTING}"
        )


def _node_problem(node: exp.Expr, read: str) -> str | None:
    """Why ``node`` may not appear in author SQL, or None when it may."""
    if isinstance(node, _WRITES):
        return f"the query must only read, but it contains {_describe(node)}"
    if isinstance(node, exp.Func):
        return _function_problem(node, read)
    if isinstance(node, exp.DataType):  # ``regclass`` and the like are a subclass (ObjectIdentifier)
        return _type_problem(node)
    if type(node) not in CONSTRUCTS:
        return f"{_construct_name(node)} is not allowed in author SQL"
    if isinstance(node, exp.Table) and not isinstance(node.this, exp.Identifier):
        if not isinstance(node.this, exp.Func):
            return "only a table name may follow FROM or JOIN"
        return _function_problem(node.this, read) or (
            f"{_written_name(node.this, read)}() in FROM: functions that return rows are not "
            "allowed; read the catalog's tables"
        )
    if isinstance(node, exp.Lateral) and not isinstance(node.this, exp.Subquery):
        return "LATERAL is allowed over a subquery only, not over a function"
    if isinstance(node, exp.With) and node.args.get("recursive"):
        return "WITH RECURSIVE is not allowed (it can generate rows without end); read the tables"
    if (
        isinstance(node, exp.Column)
        and read == "postgres"
        and not node.table
        and isinstance(node.this, exp.Identifier)
        and not node.this.quoted
        and node.name.lower() in SESSION_KEYWORDS
    ):
        return (
            f"{node.name} is Postgres' session {node.name.lower()} (a function, not a column); "
            f'to read a column of that name, quote it: "{node.name}"'
        )
    return None


def _function_problem(node: exp.Expr, read: str) -> str | None:
    if isinstance(node, exp.Anonymous):
        allowed = str(node.name).lower() in NAMED_FUNCTIONS
    else:
        allowed = type(node) in TYPED_FUNCTIONS
    if not allowed:
        name = _written_name(node, read)
        reason = REFUSED_WITH_REASON.get(name) or REFUSED_WITH_REASON.get(_class_name(node))
        if reason:
            return f"function {name}() is not allowed in author SQL: {reason}"
        return f"function {name}() is not allowed in author SQL; allowed: {ALLOWED_SUMMARY}"
    if isinstance(node, exp.Pad):
        length = node.args.get("expression")
        if not (isinstance(length, exp.Literal) and length.is_int and int(length.name) <= MAX_PAD_LENGTH):
            return (
                f"{'lpad' if node.args.get('is_left') else 'rpad'}() takes a length of at most "
                f"{MAX_PAD_LENGTH:,} written as a number"
            )
    return None


def _type_problem(node: exp.DataType) -> str | None:
    if type(node) is exp.DataType and node.this in CAST_TYPES:
        return None
    written = node.sql(dialect="postgres").lower()
    return (
        f"a cast to {written} is not allowed in author SQL; cast to a number, text, boolean, "
        "date, time, timestamp, interval, uuid or JSON type"
    )


def _written_name(node: exp.Expr, read: str) -> str:
    """The function's name as SQL spells it (sqlglot keeps classes, not the text written)."""
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    try:
        text = node.sql(dialect=read, unsupported_level=ErrorLevel.IGNORE)
    except (SqlglotError, RecursionError, ValueError):  # pragma: no cover - generation of a parsed node
        return _class_name(node)
    name = text.split("(", 1)[0].strip().lower()
    return name if name.replace("_", "").isalnum() else _class_name(node)


def _class_name(node: exp.Expr) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in type(node).__name__).lstrip("_")


def _construct_name(node: exp.Expr) -> str:
    named = {
        exp.SimilarTo: "SIMILAR TO (a regular expression; use LIKE or ILIKE)",
        exp.Dot: "a qualified name (schema.function() or (row).field)",
        exp.Parameter: "a positional or $ parameter (use named ones: :data_interval_start)",
        exp.TableSample: "TABLESAMPLE",
    }
    return named.get(type(node), type(node).__name__.upper())


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
