"""The analytics benchmark's data and its two ways to answer: a bulk-loaded automation log, the
analytics read from the rollups, and the same numbers by a raw ``GROUP BY`` over the log.

The log is generated inside Postgres (``INSERT ... SELECT ... FROM generate_series``), deterministic:
run ``g`` (1..rows) belongs to organization ``g % ORGANIZATIONS`` (``acme`` is number 0) and to
definition ``(g / ORGANIZATIONS) % DEFINITIONS`` of it (the last ``WORKFLOWS`` are workflows), has a
status drawn by a fixed hash of ``g`` (65 % success, 20 % no_match, 8 % failed, 5 % partial, 2 %
running), tested ``1 + g % 50`` items, took a long-tailed duration (150 ms to about a minute) and
started ``DAYS`` days before ``NOW`` plus ``g``'s share of them. Every run that matched has a result
of its ``flag`` action (failed in failed runs, with one of five error classes, after 3 attempts); a
partial run also has a failed ``notify``.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from rule_compiler.store.rollups import duration_bin

ORGANIZATIONS = 5
DEFINITIONS = 20
WORKFLOWS = 4
DAYS = 30
NOW = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
ORG = "acme"
ERRORS = (
    "TimeoutError: the orders service did not answer in 30 s",
    "ConnectionError: connection refused",
    "HTTPStatusError: 503 from the orders service",
    "PermanentActionError: the row is gone",
    "OperationalError: could not obtain lock",
)

_ORG = f"CASE WHEN g % {ORGANIZATIONS} = 0 THEN '{ORG}' ELSE 'org-' || (g % {ORGANIZATIONS})::text END"
_DEF = f"((g / {ORGANIZATIONS}) % {DEFINITIONS})"
_KIND = f"CASE WHEN {_DEF} >= {DEFINITIONS - WORKFLOWS} THEN 'workflow' ELSE 'rule' END"
_PICK = "abs(hashint8(g) % 100)"
_STATUS = (
    f"CASE WHEN {_PICK} < 65 THEN 'success' WHEN {_PICK} < 85 THEN 'no_match' "
    f"WHEN {_PICK} < 93 THEN 'failed' WHEN {_PICK} < 98 THEN 'partial' ELSE 'running' END"
)
# a long tail: exp(5 + 6 u^2) ms for u uniform in [0, 1): 150 ms ... 60 s
_RUN_MS = "exp(5 + 6 * power(abs(hashint8(g * 31) % 10000) / 10000.0, 2))"
_STEP_MS = "exp(3 + 5 * power(abs(hashint8(g * 17) % 10000) / 10000.0, 2))"

LOAD_RUNS = f"""
INSERT INTO automation_runs (organization, rule_name, dag_id, run_id, spec_hash, trigger_type,
    trigger_context_json, status, matched_count, evaluated_count, acted_count, ignored_count, trace_json,
    started_at, finished_at)
SELECT org, name, kind || '__' || org || '__' || name, 'bench__' || g, md5(name) || md5(org), 'event',
    '{{}}', status, matched, evaluated,
    CASE WHEN status IN ('success', 'partial') THEN matched ELSE 0 END,
    CASE WHEN g % 4 = 0 THEN g % 7 ELSE 0 END,
    NULL, started,
    CASE WHEN status = 'running' THEN NULL ELSE started + run_ms * interval '1 millisecond' END
FROM (
    SELECT g, {_ORG} AS org, {_KIND} AS kind, 'def-' || lpad({_DEF}::text, 2, '0') AS name,
        {_STATUS} AS status, 1 + g % 50 AS evaluated,
        CASE WHEN {_PICK} BETWEEN 65 AND 84 THEN 0 ELSE 1 + g % 5 END AS matched, {_RUN_MS} AS run_ms,
        CAST(:start AS timestamptz) + (g * CAST(:step AS double precision)) * interval '1 second' AS started
    FROM generate_series(1, CAST(:rows AS bigint)) AS g
) AS runs
"""

LOAD_ACTIONS = f"""
INSERT INTO automation_action_results (run_pk, action_id, status, attempts, output_json, error,
    started_at, updated_at)
SELECT id, 'flag', CASE WHEN status = 'failed' THEN 'failed' ELSE 'success' END,
    CASE WHEN status = 'failed' THEN 3 ELSE 1 END,
    CASE WHEN status = 'failed' THEN NULL ELSE '{{"applied":' || matched_count || '}}' END,
    CASE WHEN status = 'failed' THEN (ARRAY[:e0, :e1, :e2, :e3, :e4])[1 + id % 5] ELSE NULL END,
    started_at + interval '100 milliseconds',
    started_at + interval '100 milliseconds' + {_STEP_MS.replace("g", "id")} * interval '1 millisecond'
FROM automation_runs WHERE status IN ('success', 'failed', 'partial');
INSERT INTO automation_action_results (run_pk, action_id, status, attempts, output_json, error,
    started_at, updated_at)
SELECT id, 'notify', 'failed', 2, NULL, 'SMTPException: 451 try again later',
    finished_at - interval '2 seconds', finished_at - interval '1 second'
FROM automation_runs WHERE status = 'partial'
"""


def load_log(engine: sa.Engine, rows: int) -> dict[str, int]:
    """Fill an empty store's automation log with ``rows`` runs and their action results; counts."""
    start = NOW - dt.timedelta(days=DAYS)
    errors = {f"e{i}": text for i, text in enumerate(ERRORS)}
    with engine.begin() as conn:
        conn.execute(sa.text(LOAD_RUNS), {"start": start, "step": DAYS * 86400 / rows, "rows": rows})
        for statement in LOAD_ACTIONS.split(";\n"):
            conn.execute(sa.text(statement), errors)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("automation_runs", "automation_action_results"):
            conn.execute(sa.text(f"VACUUM ANALYZE {table}"))
        return {
            "runs": conn.execute(sa.text("SELECT count(*) FROM automation_runs")).scalar_one(),
            "action_results": conn.execute(
                sa.text("SELECT count(*) FROM automation_action_results")
            ).scalar_one(),
            "runs_of_the_organization": conn.execute(
                sa.text("SELECT count(*) FROM automation_runs WHERE organization = :o"), {"o": ORG}
            ).scalar_one(),
        }


def analyze_rollups(engine: sa.Engine) -> dict[str, int]:
    """``VACUUM ANALYZE`` the rollup tables; their row counts."""
    counts = {}
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("analytics_runs", "analytics_steps", "analytics_durations", "analytics_errors"):
            conn.execute(sa.text(f"VACUUM ANALYZE {table}"))
            counts[table] = conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
    return counts


# -- the raw GROUP BY: the same numbers straight from the log ---------------------------------------------

_KIND_OF = "split_part(r.dag_id, '__', 1)"
_RUN_MS_OF = "extract(epoch FROM r.finished_at - r.started_at) * 1000"
_STEP_MS_OF = "extract(epoch FROM a.updated_at - a.started_at) * 1000"
# doubled braces: RAW_ERRORS goes through .format()
_ERROR_CLASS = r"coalesce(substring(a.error FROM '^([A-Za-z_][\w.]{{0,199}}):'), 'Error')"
_FINISHED = "r.status IN ('no_match', 'success', 'failed', 'partial')"


def _bucket(bucket: str) -> str:
    return f"date_trunc('{bucket}', r.started_at AT TIME ZONE 'UTC')"


RAW_RUNS = f"""
SELECT {{group}} r.status, count(*) AS runs, sum(r.evaluated_count) AS evaluated,
    sum(r.matched_count) AS matched, sum(r.acted_count) AS acted,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY {_RUN_MS_OF}) AS p50,
    percentile_cont(0.95) WITHIN GROUP (ORDER BY {_RUN_MS_OF}) AS p95
FROM automation_runs r
WHERE r.organization = :org AND r.started_at >= :since AND r.started_at < :until AND {_FINISHED} {{only}}
GROUP BY GROUPING SETS ({{sets}})
"""

RAW_STEPS = f"""
SELECT a.action_id AS step, a.status, count(*) AS results, sum(a.attempts) AS attempts,
    sum(CASE WHEN a.status = 'success' THEN coalesce((a.output_json::json ->> 'applied')::int, 0) ELSE 0 END)
        AS acted,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY {_STEP_MS_OF}) AS p50,
    percentile_cont(0.95) WITHIN GROUP (ORDER BY {_STEP_MS_OF}) AS p95
FROM automation_action_results a JOIN automation_runs r ON r.id = a.run_pk
WHERE r.organization = :org AND r.started_at >= :since AND r.started_at < :until
    AND {_KIND_OF} = :kind AND r.rule_name = :name AND a.status IN ('success', 'failed', 'skipped')
GROUP BY GROUPING SETS ((a.action_id, a.status), (a.action_id))
"""

RAW_ERRORS = f"""
SELECT {_KIND_OF} AS kind, r.rule_name AS name, a.action_id AS step, {_ERROR_CLASS} AS error_class,
    count(*) AS n, min(a.updated_at) AS first_seen, max(a.updated_at) AS last_seen
FROM automation_action_results a JOIN automation_runs r ON r.id = a.run_pk
WHERE r.organization = :org AND r.started_at >= :since AND r.started_at < :until AND a.status = 'failed'
    {{only}}
GROUP BY 1, 2, 3, 4 ORDER BY n DESC, 1, 2, 3, 4 LIMIT 10
"""


@dataclass
class Numbers:
    """What both ways answer, keyed for comparison: counts per (scope, status), percentiles per scope,
    and the top errors."""

    counts: dict[tuple[Any, ...], tuple[int, ...]]
    percentiles: dict[tuple[Any, ...], tuple[float | None, float | None]]
    errors: list[tuple[Any, ...]]


def raw_organization(conn: sa.Connection, since: dt.datetime, until: dt.datetime, bucket: str) -> Numbers:
    """The organization's overview by a raw GROUP BY: per definition, per bucket, in total."""
    sets = f"({_KIND_OF}, r.rule_name, r.status), (r.status, {_bucket(bucket)}), (r.status), "
    sets += f"({_KIND_OF}, r.rule_name), ({_bucket(bucket)}), ()"
    group = f"{_KIND_OF} AS kind, r.rule_name AS name, {_bucket(bucket)} AS start,"
    query = RAW_RUNS.format(group=group, only="", sets=sets)
    params = {"org": ORG, "since": since, "until": until}
    numbers = Numbers({}, {}, [])
    for row in conn.execute(sa.text(query), params):
        scope = (
            ("definition", row.kind, row.name)
            if row.name is not None
            else ("bucket", _utc(row.start))
            if row.start is not None
            else ("total",)
        )
        if row.status is None:
            numbers.percentiles[scope] = (row.p50, row.p95)
        else:
            numbers.counts[(*scope, row.status)] = (row.runs, row.evaluated, row.matched, row.acted)
    numbers.errors = _raw_errors(conn, params, "")
    return numbers


RAW_TRIGGERS = f"""
SELECT {_KIND_OF} AS kind, r.rule_name AS name, count(*) AS runs, sum(r.evaluated_count) AS events,
    sum(r.ignored_count) AS ignored, sum(r.matched_count) AS matched
FROM automation_runs r
WHERE r.organization = :org AND r.started_at >= :since AND r.started_at < :until AND {_FINISHED}
GROUP BY 1, 2
"""


def trigger_watches() -> dict[tuple[str, str], tuple[str, str]]:
    """What each generated definition watches: the rules a table, the workflows another."""
    watches = {}
    for index in range(DEFINITIONS):
        kind = "workflow" if index >= DEFINITIONS - WORKFLOWS else "rule"
        watches[(kind, f"def-{index:02d}")] = ("bench_db", "customers" if kind == "workflow" else "orders")
    return watches


def raw_triggers(conn: sa.Connection, since: dt.datetime, until: dt.datetime) -> Numbers:
    """Trigger analytics by a raw GROUP BY: per event rule, runs, events, dropped, matched."""
    rows = conn.execute(sa.text(RAW_TRIGGERS), {"org": ORG, "since": since, "until": until})
    return Numbers(
        {
            ("trigger", row.kind, row.name, "all"): (row.runs, row.events, row.ignored, row.matched)
            for row in rows
        },
        {},
        [],
    )


def rollup_triggers(found: Any) -> Numbers:
    counts: dict[tuple[Any, ...], tuple[int, ...]] = {}
    for rule in found.rules:
        values = (rule.runs, rule.events, rule.ignored, rule.matched)
        counts[("trigger", rule.kind, rule.name, "all")] = counts[("trigger", rule.kind, rule.name, "*")] = (
            values
        )
    return Numbers(counts, {}, [])


def raw_definition(
    conn: sa.Connection, since: dt.datetime, until: dt.datetime, bucket: str, *, kind: str, name: str
) -> Numbers:
    """One definition's detail by a raw GROUP BY: per bucket, in total, per step, its errors."""
    sets = f"(r.status, {_bucket(bucket)}), (r.status), ({_bucket(bucket)}), ()"
    only = f"AND {_KIND_OF} = :kind AND r.rule_name = :name"
    query = RAW_RUNS.format(group=f"{_bucket(bucket)} AS start,", only=only, sets=sets)
    params = {"org": ORG, "since": since, "until": until, "kind": kind, "name": name}
    numbers = Numbers({}, {}, [])
    for row in conn.execute(sa.text(query), params):
        scope = ("bucket", _utc(row.start)) if row.start is not None else ("total",)
        if row.status is None:
            numbers.percentiles[scope] = (row.p50, row.p95)
        else:
            numbers.counts[(*scope, row.status)] = (row.runs, row.evaluated, row.matched, row.acted)
    for row in conn.execute(sa.text(RAW_STEPS), params):
        if row.status is None:
            numbers.percentiles[("step", row.step)] = (row.p50, row.p95)
        else:
            numbers.counts[("step", row.step, row.status)] = (row.results, row.attempts, row.acted)
    numbers.errors = _raw_errors(conn, params, only)
    return numbers


def _raw_errors(conn: sa.Connection, params: dict[str, Any], only: str) -> list[tuple[Any, ...]]:
    rows = conn.execute(sa.text(RAW_ERRORS.format(only=only)), params)
    return [(r.kind, r.name, r.step, r.error_class, r.n, _utc(r.first_seen), _utc(r.last_seen)) for r in rows]


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


# -- the rollups' answer in the same shape ----------------------------------------------------------------


def rollup_organization(found: Any) -> Numbers:
    """``organization_analytics``'s answer keyed as :func:`raw_organization`'s."""
    numbers = Numbers({}, {}, [])
    scopes = [(("total",), found.summary)]
    scopes += [(("definition", d.kind, d.name), d.summary) for d in found.definitions]
    scopes += [(("bucket", p.start), p.summary) for p in found.series]
    _summaries(numbers, scopes)
    numbers.errors = _errors(found.errors)
    return numbers


def rollup_definition(found: Any) -> Numbers:
    """``definition_analytics``'s answer keyed as :func:`raw_definition`'s."""
    numbers = Numbers({}, {}, [])
    _summaries(
        numbers, [(("total",), found.summary)] + [(("bucket", p.start), p.summary) for p in found.series]
    )
    for step in found.steps:
        numbers.percentiles[("step", step.step)] = (step.p50_ms, step.p95_ms)
        for status in ("success", "failed", "skipped"):
            results = getattr(step, status)
            if results:
                share = step.attempts if results == step.results else None
                numbers.counts[("step", step.step, status)] = (
                    results,
                    share,
                    step.acted if status == "success" else 0,
                )
    numbers.errors = _errors(found.errors)
    return numbers


def _summaries(numbers: Numbers, scopes: list[tuple[tuple[Any, ...], Any]]) -> None:
    for scope, summary in scopes:
        numbers.percentiles[scope] = (summary.p50_ms, summary.p95_ms)
        for status in ("no_match", "success", "failed", "partial"):
            if getattr(summary, status):
                numbers.counts[(*scope, status)] = (getattr(summary, status), None, None, None)
        numbers.counts[(*scope, "*")] = (summary.runs, summary.evaluated, summary.matched, summary.acted)


def _errors(errors: Any) -> list[tuple[Any, ...]]:
    return [(e.kind, e.name, e.step, e.error_class, e.count, e.first_seen, e.last_seen) for e in errors]


def compare(raw: Numbers, rollup: Numbers) -> list[str]:
    """Where the two answers differ: counts must be equal; each percentile must fall within one
    histogram bin of ``percentile_cont``'s."""
    problems = _compare_counts(raw, rollup) + _compare_percentiles(raw, rollup)
    if raw.errors != rollup.errors:
        problems.append(f"top errors: rollups {rollup.errors[:3]}..., raw {raw.errors[:3]}...")
    return problems


def _compare_counts(raw: Numbers, rollup: Numbers) -> list[str]:
    expected = dict(raw.counts)
    totals: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for key, values in raw.counts.items():
        if key[0] != "step":
            for i, value in enumerate(values):
                totals[(*key[:-1], "*")][i] += int(value or 0)
    expected |= {key: tuple(values) for key, values in totals.items()}
    problems = []
    for key in sorted(set(expected) | set(rollup.counts), key=repr):
        got, want = rollup.counts.get(key), expected.get(key)
        if (
            got is None
            or want is None
            or any(g is not None and g != int(w) for g, w in zip(got, want, strict=True))
        ):
            problems.append(f"counts of {key}: rollups {got}, raw {want}")
    return problems


def _compare_percentiles(raw: Numbers, rollup: Numbers) -> list[str]:
    problems = []
    for key, exact_pair in raw.percentiles.items():
        mine = rollup.percentiles.get(key)
        if mine is None:
            problems.append(f"percentiles of {key}: missing in the rollups")
            continue
        for label, exact, estimate in zip(("p50", "p95"), exact_pair, mine, strict=True):
            if exact is None or estimate is None:
                if exact != estimate:
                    problems.append(f"{label} of {key}: rollups {estimate}, raw {exact}")
            elif abs(duration_bin(float(estimate)) - duration_bin(float(exact))) > 1:
                problems.append(f"{label} of {key}: rollups {estimate:.1f} ms, raw {float(exact):.1f} ms")
    return problems
