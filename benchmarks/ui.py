"""UI benchmark: the API calls the Automations pages make, with a large log in Postgres, against the same
answers in plain SQL; and the definitions page's time to interactive with 1,000 definitions, against a
bare page rendering the same table. Both sides of each case are measured in the same run, alternating.

The rule store is a temporary Postgres database (created on the ``--postgres`` server, dropped at the
end unless ``--keep``). Its automation log gets ``--rows`` runs (default 1,000,000; 5 organizations,
20 definitions each, 30 days up to 2026-11-24, as in ``benchmarks/analytics.py``), whose rollups are
built by ``RuleStore.rebuild_rollups``; ``acme``'s 20 definitions are stored too. Another
organization, ``tti``, gets ``--definitions`` (1,000) schedule rules, each with ``--tti-runs`` (20) runs
over the last 14 days. Requests go through the real app (``create_app``) with a real Airflow token
(a temporary ``AIRFLOW_HOME``, as in ``benchmarks/api.py``); the clock of ``GET /definitions`` is the
log's last day (2026-11-24), so its 14 days hold runs.

1. **API calls** (``--repeats`` (30) each, through FastAPI's ``TestClient``), ratio = API / plain SQL:
   - overview, 7 days by hour: ``GET /analytics?bucket=hour``; plain SQL: ``GROUP BY`` over the raw
     log with ``percentile_cont`` (``analytics_workload.raw_organization``);
   - overview, 30 days by day: the same by day;
   - definitions: ``GET /definitions`` (20 definitions, their last runs and 14 days); plain SQL: the
     definitions, ``DISTINCT ON (dag_id)`` for the last runs and a ``GROUP BY`` day of the raw log
     (the same last run ids are checked);
   - run explorer: ``GET /logs?dag_id=&run_id=`` then ``GET /logs/{id}``; plain SQL: the run by
     (dag_id, run_id) and its action results.
   Goal: p95 ≤ 300 ms for each.
2. **Time to interactive** (``--loads`` (15) page loads each, Debian's Chromium through Playwright,
   served by uvicorn on 127.0.0.1 with the ``_token`` cookie Airflow's UI sets; ``ui_tti.py``), from
   navigation start until everything is shown and the main thread has run a task after the next frame;
   ratio = page / bare:
   - ``/automations/ui/?page=definitions`` until the table holds all 1,000 rows, against a bare page
     that fetches the same ``GET /definitions`` and writes the same table with ``innerHTML``;
   - the designer with a stored 200-node workflow until React Flow has drawn and measured every node,
     against a bare React Flow page (``ui/bench/``) drawing the same stored workflow. Goal: ratio ≤ 1.5
     and under 1 s.

    .venv/bin/python benchmarks/ui.py                      # 1,000,000 runs (~6 min; needs ui/node_modules)
    .venv/bin/python benchmarks/ui.py --rows 20000 --repeats 5 --loads 3
    .venv/bin/python benchmarks/ui.py --json result.json

Progress goes to stderr; the table (or ``--json -``) to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from analytics_workload import DAYS, NOW, ORG, load_log, raw_organization
from api import compared, fail, prepare_airflow, timed
from bench_common import add_json_option, aligned, emit, progress, temporary_postgres_database
from ui_tti import NODES, WORKFLOW, bench_tti, big_workflow

DEFAULT_POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
GOAL_P95_MS = 300.0
VIEWER = "bench-viewer"
TTI_ORG = "tti"
TTI_USER = "bench-tti"
BOARD_DAYS = 14
WARM_UP = 3


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="automation-log runs to load (1,000,000)")
    parser.add_argument("--repeats", type=int, default=30, help="timed API calls per case, each side (30)")
    parser.add_argument("--definitions", type=int, default=1000, help="TTI page definitions (1,000)")
    parser.add_argument("--tti-runs", type=int, default=20, help="runs of each TTI definition (20)")
    parser.add_argument("--loads", type=int, default=15, help="timed page loads, each side (15)")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="a server's admin URL")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and database")
    add_json_option(parser)
    args = parser.parse_args(argv)
    for name in ("rows", "repeats", "definitions", "loads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


# -- the store ------------------------------------------------------------------------------------------


def put_definition(store: Any, organization: str, kind: str, name: str, source: dict[str, Any]) -> None:
    """A stored definition as the REST view stores one (its compiled spec is not what is measured)."""
    from rule_compiler.canonical import canonical_json, content_hash
    from rule_compiler.store import DefinitionWrite

    document = {"kind": kind, "name": name, "organization": organization, **source}
    spec = {"dag_id": f"{kind}__{organization}__{name}"}
    store.apply(
        DefinitionWrite(
            organization=organization,
            kind=kind,
            name=name,
            dag_id=spec["dag_id"],
            source=document,
            source_hash=content_hash(document),
            spec_json=canonical_json(spec),
            spec_hash=content_hash(spec),
            active=True,
            actor="bench",
            compiler_version="bench",
        )
    )


def schedule_rule(index: int) -> dict[str, Any]:
    return {
        "title": f"Escalate queue {index:04d}",
        "description": f"Every 15 minutes, escalate the open orders of queue {index} to urgent.",
        "owner": f"team-{index % 12:02d}",
        "trigger": {"type": "schedule", "cron": "*/15 * * * *", "timezone": "Europe/Berlin"},
    }


LOAD_TTI_RUNS = """
INSERT INTO automation_runs (organization, rule_name, dag_id, run_id, spec_hash, trigger_type,
    trigger_context_json, status, matched_count, evaluated_count, acted_count, ignored_count, started_at,
    finished_at)
SELECT :org, name, 'rule__' || :org || '__' || name, 'scheduled__' || r, md5(name), 'schedule', '{}',
    CASE WHEN (d * 7 + r) % 10 < 8 THEN 'success' WHEN (d * 7 + r) % 10 = 8 THEN 'failed' ELSE 'no_match' END,
    1, 10, 1, 0, started, started + interval '2 seconds'
FROM (
    SELECT d, r, 'q-' || lpad(d::text, 4, '0') AS name,
        CAST(:now AS timestamptz) - (r * 14.0 / :runs) * interval '1 day' AS started
    FROM generate_series(0, :definitions - 1) AS d, generate_series(1, :runs) AS r
) AS runs
"""


def load(store: Any, args: argparse.Namespace) -> dict[str, Any]:
    progress(f"loading {args.rows:,} automation-log runs into Postgres (generate_series)")
    load_s, counts = timed(lambda: load_log(store.engine, args.rows))
    for i in range(20):
        kind = "workflow" if i >= 16 else "rule"
        put_definition(
            store, ORG, kind, f"def-{i:02d}", {"owner": "sales-ops", "trigger": {"type": "manual"}}
        )
    progress(
        f"storing {args.definitions - 1:,} rules of {TTI_ORG} with {args.tti_runs} runs each, and a "
        f"{NODES}-node workflow"
    )
    for i in range(args.definitions - 1):
        put_definition(store, TTI_ORG, "rule", f"q-{i:04d}", schedule_rule(i))
    put_definition(store, TTI_ORG, "workflow", WORKFLOW, big_workflow(NODES))  # the designer's
    with store.engine.begin() as conn:
        conn.execute(
            sa.text(LOAD_TTI_RUNS),
            {"org": TTI_ORG, "now": NOW, "runs": args.tti_runs, "definitions": args.definitions - 1},
        )
    progress("building the rollups from the log (RuleStore.rebuild_rollups)")
    rebuild_s, rebuilt = timed(store.rebuild_rollups)
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("automation_runs", "automation_action_results", "analytics_runs", "definitions"):
            conn.execute(sa.text(f"VACUUM ANALYZE {table}"))
    progress(f"loaded in {load_s:.1f} s; rollups rebuilt in {rebuild_s:.1f} s")
    return {**counts, "load_s": load_s, "rebuild_s": rebuild_s, "rollup_rows": rebuilt}


# -- 1. the pages' API calls against plain SQL ---------------------------------------------------------------


def plain_board(conn: sa.Connection, organization: str, since: dt.datetime) -> dict[str, str | None]:
    """The definitions page's numbers written by hand over the raw log: dag_id -> the last run's id."""
    definitions = conn.execute(
        sa.text(
            "SELECT d.kind, d.name, d.dag_id, d.active, v.source_json FROM definitions d "
            "JOIN definition_versions v ON v.definition_id = d.id AND v.version = d.current_version "
            "WHERE d.organization = :o AND d.kind IN ('rule', 'workflow', 'report') AND d.deleted_at IS NULL"
        ),
        {"o": organization},
    ).all()
    last = dict(
        conn.execute(
            sa.text(
                "SELECT DISTINCT ON (dag_id) dag_id, run_id FROM automation_runs WHERE organization = :o "
                "ORDER BY dag_id, started_at DESC, id DESC"
            ),
            {"o": organization},
        ).all()
    )
    conn.execute(
        sa.text(
            "SELECT dag_id, date_trunc('day', started_at) AS day, "
            "count(*) FILTER (WHERE status <> 'running'), count(*) FILTER (WHERE status = 'success'), "
            "count(*) FILTER (WHERE status IN ('failed', 'partial')) "
            "FROM automation_runs WHERE organization = :o AND started_at >= :since GROUP BY 1, 2"
        ),
        {"o": organization, "since": since},
    ).all()
    return {row.dag_id: last.get(row.dag_id) for row in definitions}


def plain_run(conn: sa.Connection, dag_id: str, run_id: str) -> list[Any]:
    run = conn.execute(
        sa.text("SELECT * FROM automation_runs WHERE dag_id = :d AND run_id = :r"), {"d": dag_id, "r": run_id}
    ).one()
    return list(
        conn.execute(sa.text("SELECT * FROM automation_action_results WHERE run_pk = :p"), {"p": run.id})
    )


def api_cases(client: Any, headers: dict[str, str], engine: sa.Engine) -> list[tuple[str, Any, Any]]:
    """(case, the API call, the plain SQL), each returning something both sides must agree on."""
    week, month = NOW - dt.timedelta(days=7), NOW - dt.timedelta(days=DAYS)
    with engine.connect() as conn:
        dag_id, run_id = conn.execute(
            sa.text(
                "SELECT dag_id, run_id FROM automation_runs r WHERE organization = :o AND status = 'failed' "
                "AND EXISTS (SELECT 1 FROM automation_action_results a WHERE a.run_pk = r.id) "
                "ORDER BY started_at DESC LIMIT 1"
            ),
            {"o": ORG},
        ).one()

    def get(path: str, **params: Any) -> Any:
        response = client.get(f"/api/v1/{path}", params=params, headers=headers)
        if response.status_code != 200:
            fail(f"GET {path} {params}: {response.status_code} {response.text[:300]}")
        return response.json()

    def plain(query: Any) -> Any:
        def call() -> Any:
            with engine.connect() as conn:
                return query(conn)

        return call

    def explorer() -> Any:
        [run] = get("logs", dag_id=dag_id, run_id=run_id, limit=1)["items"]
        return len(get(f"logs/{run['id']}")["actions"])

    board_since = dt.datetime.combine(
        NOW.date() - dt.timedelta(days=BOARD_DAYS - 1), dt.time(), tzinfo=dt.UTC
    )
    return [
        (
            "overview, 7 days by hour",
            lambda: get("analytics", since=week.isoformat(), until=NOW.isoformat(), bucket="hour")["summary"][
                "runs"
            ],
            plain(lambda conn: raw_organization(conn, week, NOW, "hour")),
        ),
        (
            "overview, 30 days by day",
            lambda: get("analytics", since=month.isoformat(), until=NOW.isoformat(), bucket="day")["summary"][
                "runs"
            ],
            plain(lambda conn: raw_organization(conn, month, NOW, "day")),
        ),
        (
            "definitions (20, last run, 14 days)",
            lambda: {i["dag_id"]: (i["last_run"] or {}).get("run_id") for i in get("definitions")["items"]},
            plain(lambda conn: plain_board(conn, ORG, board_since)),
        ),
        (
            "run explorer (the run, its actions)",
            explorer,
            plain(lambda conn: len(plain_run(conn, dag_id, run_id))),
        ),
    ]


def bench_api(client: Any, headers: dict[str, str], engine: sa.Engine, repeats: int) -> list[dict[str, Any]]:
    results = []
    for name, through_api, plain in api_cases(client, headers, engine):
        for _ in range(WARM_UP):
            through_api()
            plain()
        api_times: list[float] = []
        plain_times: list[float] = []
        answers: dict[str, Any] = {}
        for i in range(repeats):
            pair = (("api", api_times, through_api), ("plain", plain_times, plain))
            for side, times, call in pair if i % 2 == 0 else pair[::-1]:
                elapsed, answers[side] = timed(call)
                times.append(elapsed)
        if name.startswith(("definitions", "run explorer")) and answers["api"] != answers["plain"]:
            fail(f"{name}: the API and plain SQL disagree: {answers['api']} != {answers['plain']}")
        measured = compared(api_times, plain_times)
        results.append({"case": name, **measured, "meets_goal": measured["api"]["p95_ms"] <= GOAL_P95_MS})
        api_p95, plain_p95 = measured["api"]["p95_ms"], measured["baseline"]["p95_ms"]
        progress(f"{name}: API p95 {api_p95:.1f} ms, plain SQL {plain_p95:.1f} ms")
    return results


# -- main ----------------------------------------------------------------------------------------------------


def table(result: dict[str, Any]) -> str:
    setup = result["setup"]
    lines = [
        f"UI benchmark: {setup['runs']:,} runs in Postgres {setup['postgres']}, "
        f"{setup['definitions']:,} definitions on the TTI page "
        f"(Python {setup['python']}, Airflow {setup['airflow']})",
        "",
        "1. The pages' API calls against the same answers in plain SQL (ratio = API / plain SQL; goal p95 "
        f"<= {GOAL_P95_MS:.0f} ms)",
    ]
    rows = [
        ["case", "API p50 ms", "API p95 ms", "SQL p50 ms", "SQL p95 ms", "ratio p50", "ratio p95", "goal"]
    ]
    for case in result["api"]:
        rows.append(
            [
                case["case"],
                f"{case['api']['p50_ms']:.1f}",
                f"{case['api']['p95_ms']:.1f}",
                f"{case['baseline']['p50_ms']:.1f}",
                f"{case['baseline']['p95_ms']:.1f}",
                f"{case['ratio_p50']:.2f}",
                f"{case['ratio_p95']:.2f}",
                "met" if case["meets_goal"] else "MISSED",
            ]
        )
    lines += aligned(rows)
    lines += [
        "",
        "2. Time to interactive (ratio = page / bare page; the designer's goal: ratio <= 1.5 and under 1 s)",
        *aligned(
            [
                [
                    "case",
                    "page p50 ms",
                    "page p95 ms",
                    "bare p50 ms",
                    "bare p95 ms",
                    "ratio p50",
                    "ratio p95",
                ],
                *(
                    [
                        tti["case"],
                        f"{tti['api']['p50_ms']:.0f}",
                        f"{tti['api']['p95_ms']:.0f}",
                        f"{tti['baseline']['p50_ms']:.0f}",
                        f"{tti['baseline']['p95_ms']:.0f}",
                        f"{tti['ratio_p50']:.2f}",
                        f"{tti['ratio_p95']:.2f}",
                    ]
                    for tti in result["tti"]
                ),
            ]
        ),
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace, work: Path, store_url: str) -> dict[str, Any]:
    prepare_airflow(work, store_url)
    progress("importing airflow and the REST view")
    import airflow
    from airflow.api_fastapi.app import init_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi.testclient import TestClient
    from rule_engine.api import create_app
    from rule_engine.api.api_settings import ApiSettings
    from rule_engine.api.routes import definition_board_routes

    from rule_compiler.store import RuleStore

    store = RuleStore(store_url)
    store.upgrade()
    store.put_membership(organization=ORG, username=VIEWER, role="viewer", actor="bench")
    store.put_membership(organization=TTI_ORG, username=TTI_USER, role="editor", actor="bench")
    counts = load(store, args)
    definition_board_routes.utcnow = lambda: NOW  # type: ignore[attr-defined]  # the log's last day
    with store.engine.connect() as conn:
        server_version = conn.execute(sa.text("SHOW server_version")).scalar_one()
    manager = init_auth_manager()
    tokens = {
        user: manager.generate_jwt(SimpleAuthManagerUser(username=user, role="viewer"))
        for user in (VIEWER, TTI_USER)
    }
    app = create_app(store, settings=ApiSettings(rate_limit=""), on_change=None)
    result: dict[str, Any] = {
        "setup": {
            "rows": args.rows,
            **counts,
            "definitions": args.definitions,
            "tti_runs": args.tti_runs,
            "repeats": args.repeats,
            "loads": args.loads,
            "postgres": server_version,
            "python": platform.python_version(),
            "airflow": airflow.__version__,
        }
    }
    with TestClient(app, raise_server_exceptions=True) as client:
        result["api"] = bench_api(
            client, {"Authorization": f"Bearer {tokens[VIEWER]}"}, store.engine, args.repeats
        )
    result["tti"] = bench_tti(
        app, tokens[TTI_USER], organization=TTI_ORG, definitions=args.definitions, loads=args.loads, work=work
    )
    store.close()
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="ui-bench-"))
    progress(f"working in {work}")
    try:
        with (
            temporary_postgres_database(args.postgres, "ui_bench", keep=args.keep) as store_url,
            contextlib.redirect_stdout(sys.stderr),
        ):
            result = run(args, work, store_url)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    emit(result, args.json, table)
    return result


if __name__ == "__main__":
    main()
