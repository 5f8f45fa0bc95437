"""``benchmarks/scale.py schedule``: N schedule rules firing every minute, the scheduling delay against
the same number of DAGs written by hand.

Two runs of docker-compose.yaml's ``celery`` profile as local processes (scripts/compose_local.py),
one per side, each on fresh databases: first the loader (a dags folder holding a symlink to
``dags/automation_dags.py``), with N rules stored through the REST view (cron ``* * * * *``, a
condition that matches no row, so each run is cheap: the delay measured is the scheduler's, not the
workers'); then the floor, a dags folder holding one file with the same N DAGs written by hand
(generated from the stored specs, as ``benchmarks/parse.py`` does, 50 DAGs per file: Airflow keeps
each DAG's file source, and one 5.6 MB file of 1,000 DAGs failed to store). The demo's own definitions are
switched off on both sides. Deviations from the compose file: the dags folder, and the REST view's
per-user rate limit (off, so the 1,000 rules are stored in a minute or two).

After every DAG is parsed and unpaused, runs are watched for ``--minutes`` minutes. The delay of a
run is its ``start_date`` minus its ``run_after`` (the cron tick): what Airflow's
``dagrun.schedule_delay`` metric reports, read from the metadata database for every run whose tick
falls in the window. ratio = p50 (and p95) of the loader's delays / the floor's.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from bench_common import progress
from parse_floor import write_hand_written
from scale_events import API, ROOT, database_factory

from rule_compiler.store import RuleStore
from tests.cluster.celery_stack import Cluster, celery_stack

PREFIX = "every-minute"
FLOOR_FILE_DAGS = 50


def _rule(index: int) -> dict[str, Any]:
    return {
        "kind": "rule",
        "name": f"{PREFIX}-{index:04d}",
        "description": "benchmarks/scale.py schedule: fires every minute, matches nothing",
        "trigger": {
            "type": "schedule",
            "cron": "* * * * *",
            "target": {"connection": "app_db", "table": "orders"},
        },
        "conditions": {"all": [{"field": "id", "operator": "equals", "value": -1}]},
        "actions": [
            {
                "id": "note",
                "type": "update_record",
                "connection": "app_db",
                "table": "orders",
                "values": {"note": "x"},
            }
        ],
    }


def _switch_off_everything(client: httpx.Client) -> None:
    board = client.get(f"{API}/definitions", params={"limit": 1000}).json()
    for item in board["items"]:
        if item["state"] != "active":
            continue
        path = f"{API}/{item['kind']}s/{item['name']}"
        client.patch(path, json={"active": False}, headers={"If-Match": item["etag"]}).raise_for_status()


def _count_unpaused(client: httpx.Client) -> int:
    found = client.get("/api/v2/dags", params={"dag_id_pattern": f"%{PREFIX}%", "paused": False, "limit": 1})
    return int(found.json()["total_entries"])


def _delays(cluster: Cluster, start: float, minutes: int) -> list[float]:
    """Seconds from each run's cron tick to its start, for ticks in the window after ``start`` (epoch)."""
    rows = cluster.metadata.connect().execute(
        sa.text(
            "SELECT EXTRACT(EPOCH FROM (start_date - run_after)) FROM dag_run WHERE dag_id LIKE :p "
            "AND run_type = 'scheduled' AND start_date IS NOT NULL "
            "AND run_after >= to_timestamp(:a) AND run_after < to_timestamp(:b)"
        ),
        {"p": f"%{PREFIX}%", "a": start, "b": start + 60 * minutes},
    )
    return sorted(float(r[0]) for r in rows)


def _watch(cluster: Cluster, client: httpx.Client, rules: int, minutes: int) -> dict[str, Any]:
    cluster.wait_for(f"{rules} DAGs parsed and unpaused", lambda: _count_unpaused(client) >= rules, 1800, 5)
    start = (time.time() // 60 + 1) * 60  # the next full minute
    progress(f"  watching the runs of {minutes} minute(s) from the next tick")
    time.sleep(max(0.0, start + 60 * minutes + 90 - time.time()))  # the window, plus time to start its runs
    delays = _delays(cluster, start, minutes)
    expected = rules * minutes
    return {
        "runs_expected": expected,
        "runs_started": len(delays),
        "delay_p50_s": statistics.median(delays) if delays else None,
        "delay_p95_s": delays[int(0.95 * (len(delays) - 1))] if delays else None,
        "delay_max_s": delays[-1] if delays else None,
    }


def run_schedule(rules: int, minutes: int, work: Path, admin_url: str) -> dict[str, Any]:
    specs: list[Any] = []
    result: dict[str, Any] = {}
    for side in ("loader", "floor"):
        dags = work / side / "dags"
        dags.mkdir(parents=True)
        if side == "loader":
            (dags / "automation_dags.py").symlink_to(ROOT / "dags" / "automation_dags.py")
        else:
            # Files of 50 DAGs: Airflow stores each DAG's file source (dag_code), and one file of 1,000
            # DAGs (5.6 MB) made the DAG processor's insert of 1,000 copies fail for memory.
            for start in range(0, len(specs), FLOOR_FILE_DAGS):
                chunk = specs[start : start + FLOOR_FILE_DAGS]
                write_hand_written(
                    dags / f"hand_written_{start:05d}.py", chunk, f"{len(chunk)} rules by hand."
                )
        with database_factory(admin_url) as create:
            progress(f"{side}: starting the celery profile")
            # The REST view's per-user rate limit (300/minute) is off: 1,000 rules are stored at once.
            overrides = {"AIRFLOW__CORE__DAGS_FOLDER": str(dags), "AUTOMATION_API_RATE_LIMIT": ""}
            with celery_stack(work / side, create, overrides=overrides) as cluster:
                client = cluster.client()
                _switch_off_everything(client)
                if side == "loader":
                    progress(f"  storing {rules} rules through the REST view")
                    for index in range(rules):
                        client.post(f"{API}/rules", json=_rule(index)).raise_for_status()
                    store = RuleStore(cluster.store.url.render_as_string(hide_password=False))
                    specs = [s for s in store.loadable_specs() if PREFIX in s.dag_id]
                    store.close()
                result[side] = _watch(cluster, client, rules, minutes)
                progress(f"  {side}: {result[side]}")
    ratio = {
        key: result["loader"][key] / result["floor"][key]
        for key in ("delay_p50_s", "delay_p95_s")
        if result["loader"][key] and result["floor"][key]
    }
    return {"rules": rules, "minutes": minutes, **result, "ratio": ratio}
