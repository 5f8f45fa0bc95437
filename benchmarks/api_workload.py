"""The API benchmark's data: a bulk-loaded automation log, the log queries it times, the plain-SQL
baseline of each, and the plan check (``EXPLAIN (ANALYZE, BUFFERS)``).

The log is generated inside Postgres (``INSERT ... SELECT ... FROM generate_series``), deterministic:
run ``g`` (1..rows) belongs to organization ``g % ORGANIZATIONS`` (``acme`` is number 0), to rule
``(g / ORGANIZATIONS) % RULES_PER_ORG`` of it, has a status drawn by a fixed hash of ``g`` (70 %
success, 20 % no_match, 5 % failed, 3 % partial, 2 % running), and started ``DAYS`` days before
``NOW`` plus ``g``'s share of them (the log is appended in time order, as runs write it). Every run
that matched (success, failed, partial) has one action result.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

ORGANIZATIONS = 10
RULES_PER_ORG = 50
DAYS = 90
NOW = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
ORG = "acme"
PAGE = 50
STATUSES = ("success", "no_match", "failed", "partial", "running")

_ORG_NAME = (
    f"CASE WHEN g % {ORGANIZATIONS} = 0 THEN '{ORG}' "
    f"ELSE 'org-' || lpad((g % {ORGANIZATIONS})::text, 2, '0') END"
)
_RULE_NAME = f"'rule-' || lpad(((g / {ORGANIZATIONS}) % {RULES_PER_ORG})::text, 3, '0')"
_BUCKET = "abs(hashint8(g) % 100)"
_STATUS = (
    f"CASE WHEN {_BUCKET} < 70 THEN 'success' WHEN {_BUCKET} < 90 THEN 'no_match' "
    f"WHEN {_BUCKET} < 95 THEN 'failed' WHEN {_BUCKET} < 98 THEN 'partial' ELSE 'running' END"
)
TRACE = '{"all":[{"field":"status","matched":true,"operator":"equals","value":"paid"},' + (
    '{"field":"total","matched":true,"operator":"gte","value":1000}],"matched":true}'
)

LOAD_RUNS = f"""
INSERT INTO automation_runs (organization, rule_name, dag_id, run_id, spec_hash, trigger_type,
    trigger_context_json, status, matched_count, trace_json, started_at, finished_at)
SELECT org, rule, 'rule__' || org || '__' || rule, 'bench__' || g, md5(rule) || md5(org), 'event',
    json_build_object('event_id', 'e' || g, 'table', 'orders', 'operation', 'updated')::text, status,
    CASE WHEN status IN ('success', 'failed', 'partial') THEN 1 ELSE 0 END,
    CASE WHEN status = 'running' THEN NULL ELSE :trace END,
    started, CASE WHEN status = 'running' THEN NULL ELSE started + interval '2 seconds' END
FROM (
    SELECT g, {_ORG_NAME} AS org, {_RULE_NAME} AS rule, {_STATUS} AS status,
        CAST(:start AS timestamptz) + (g * CAST(:step AS double precision)) * interval '1 second' AS started
    FROM generate_series(1, CAST(:rows AS bigint)) AS g
) AS runs
"""

LOAD_ACTIONS = """
INSERT INTO automation_action_results (run_pk, action_id, status, attempts, output_json, error, updated_at)
SELECT id, 'flag', CASE WHEN status = 'success' THEN 'success' ELSE 'failed' END,
    CASE WHEN status = 'success' THEN 1 ELSE 3 END,
    CASE WHEN status = 'success' THEN :output ELSE NULL END,
    CASE WHEN status = 'success' THEN NULL ELSE 'HTTP 503 from the orders service' END,
    finished_at
FROM automation_runs WHERE status IN ('success', 'failed', 'partial')
"""


def load_log(engine: sa.Engine, rows: int) -> dict[str, int]:
    """Fill an empty store's automation log with ``rows`` runs (and their action results); counts."""
    start = NOW - dt.timedelta(days=DAYS)
    with engine.begin() as conn:
        conn.execute(
            sa.text(LOAD_RUNS), {"start": start, "step": DAYS * 86400 / rows, "rows": rows, "trace": TRACE}
        )
        conn.execute(sa.text(LOAD_ACTIONS), {"output": '{"rows_updated":1}'})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE automation_runs"))
        conn.execute(sa.text("VACUUM ANALYZE automation_action_results"))
        return {
            "runs": conn.execute(sa.text("SELECT count(*) FROM automation_runs")).scalar_one(),
            "action_results": conn.execute(
                sa.text("SELECT count(*) FROM automation_action_results")
            ).scalar_one(),
            "runs_of_the_organization": conn.execute(
                sa.text("SELECT count(*) FROM automation_runs WHERE organization = :o"), {"o": ORG}
            ).scalar_one(),
        }


# -- the timed log queries -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One kind of filtered log query: its name and how to draw the filters of one request."""

    name: str
    rule: bool = False
    statuses: tuple[str, ...] = ()
    days: int | None = None  # a time range of this many days

    def params(self, rng: random.Random) -> dict[str, Any]:
        """The query parameters of one request (``status`` a list; times ISO 8601)."""
        params: dict[str, Any] = {"limit": PAGE}
        if self.rule:
            params["rule"] = f"rule-{rng.randrange(RULES_PER_ORG):03d}"
        if self.statuses:
            params["status"] = list(self.statuses)
        if self.days is not None:
            since = NOW - dt.timedelta(days=rng.randrange(self.days, DAYS))
            params["since"] = since.isoformat()
            params["until"] = (since + dt.timedelta(days=self.days)).isoformat()
        return params


CASES = (
    Case("organization (newest first)"),
    Case("+ rule", rule=True),
    Case("+ status failed", statuses=("failed",)),
    Case("+ time range (1 day)", days=1),
    Case("+ rule, status, time range (7 days)", rule=True, statuses=("failed", "partial"), days=7),
)

_COLUMNS = (
    "id, organization, rule_name, dag_id, run_id, spec_hash, trigger_type, trigger_context_json, status, "
    "matched_count, trace_json, started_at, finished_at"
)


def baseline(conn: sa.Connection, params: dict[str, Any]) -> list[int]:
    """The same page as plain SQL through SQLAlchemy (runs, then their action results): the run ids."""
    where = ["organization = :org"]
    values: dict[str, Any] = {"org": ORG, "limit": params["limit"] + 1}
    if "rule" in params:
        where.append("rule_name = :rule")
        values["rule"] = params["rule"]
    if "status" in params:
        where.append("status IN :statuses")
        values["statuses"] = tuple(params["status"])
    if "since" in params:
        where.append("started_at >= :since AND started_at < :until")
        values["since"] = dt.datetime.fromisoformat(params["since"])
        values["until"] = dt.datetime.fromisoformat(params["until"])
    runs = sa.text(
        f"SELECT {_COLUMNS} FROM automation_runs WHERE {' AND '.join(where)} "
        "ORDER BY started_at DESC, id DESC LIMIT :limit"
    )
    if "statuses" in values:
        runs = runs.bindparams(sa.bindparam("statuses", expanding=True))
    rows = conn.execute(runs, values).all()[: params["limit"]]
    if rows:
        conn.execute(
            sa.text(
                "SELECT run_pk, action_id, status, attempts, output_json, error, updated_at "
                "FROM automation_action_results WHERE run_pk IN :ids ORDER BY run_pk, id"
            ).bindparams(sa.bindparam("ids", expanding=True)),
            {"ids": [row.id for row in rows]},
        ).all()
    return [row.id for row in rows]


# -- plans ---------------------------------------------------------------------------------------------------

_INDEX_NODE = re.compile(r"(Index Scan|Index Only Scan|Bitmap Index Scan)(?: Backward)?(?: using| on) (\w+)")


@contextmanager
def captured_statements(engine: sa.Engine) -> Iterator[list[tuple[str, Any]]]:
    """The SQL statements (with their parameters) ``engine`` executes inside the block."""
    statements: list[tuple[str, Any]] = []

    def seen(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        statements.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)


def explain(engine: sa.Engine, statement: str, parameters: Any) -> dict[str, Any]:
    """``EXPLAIN (ANALYZE, BUFFERS)`` of a captured statement: the plan and the indexes it used."""
    with engine.connect() as conn:
        lines = [
            row[0] for row in conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", parameters)
        ]
        conn.rollback()
    indexes = sorted({match.group(2) for line in lines for match in _INDEX_NODE.finditer(line)})
    seq_scans = [line.strip() for line in lines if "Seq Scan" in line]
    return {
        "plan": lines,
        "indexes": indexes,
        "seq_scans": seq_scans,
        "uses_index": bool(indexes) and not seq_scans,
    }
