"""The floor of benchmarks/workflow.py's run time: the workflow ``route-new-orders`` written by hand.

Same shape (start → is-big → make-high | make-normal → routed → stamp) and the same row changes, as
plain PythonOperator / BranchPythonOperator tasks with plain SQLAlchemy: no automation log, no
effect ledger, the ids of the orders passed between tasks through XCom. The benchmark copies this
file into its temporary dags folder; ``WORKFLOW_BENCH_APP_URL`` names the application database.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
from typing import Any

import sqlalchemy as sa
from airflow.providers.standard.operators.python import BranchPythonOperator, PythonOperator
from airflow.sdk import DAG

DAG_ID = "route_new_orders_by_hand"
URL_ENV = "WORKFLOW_BENCH_APP_URL"
BIG_STATUSES = ("paid",)  # the big-order template's defaults
BIG_TOTAL = 1000


@functools.cache
def engine() -> sa.Engine:
    return sa.create_engine(os.environ[URL_ENV])


def _ids(values: list[int]) -> sa.BindParameter[Any]:
    return sa.bindparam("ids", value=values, expanding=True)


def start(**context: Any) -> list[int]:
    """The orders the run's events created (the outbox rows named in the run's conf)."""
    event_ids = [int(event_id) for event_id in context["dag_run"].conf["event_ids"]]
    query = sa.text(
        "SELECT key_json FROM rule_engine_outbox "
        "WHERE id IN :ids AND table_name = 'orders' AND operation = 'created' ORDER BY id"
    ).bindparams(_ids(event_ids))
    with engine().connect() as conn:
        keys = [key if isinstance(key, dict) else json.loads(key) for (key,) in conn.execute(query)]
    return [int(key["id"]) for key in keys]


def is_big(ti: Any, **_: Any) -> list[str]:
    """Split the orders on status and total; follow the branches that received some."""
    order_ids = ti.xcom_pull(task_ids="start")
    query = sa.text("SELECT id, status, total FROM orders WHERE id IN :ids").bindparams(_ids(order_ids))
    with engine().connect() as conn:
        rows = conn.execute(query).all()
    big = [row.id for row in rows if row.status in BIG_STATUSES and row.total >= BIG_TOTAL]
    normal = [row.id for row in rows if row.id not in set(big)]
    ti.xcom_push(key="big", value=big)
    ti.xcom_push(key="normal", value=normal)
    return [task for task, ids in (("make-high", big), ("make-normal", normal)) if ids]


def set_priority(priority: str, branch: str, ti: Any, **_: Any) -> list[int]:
    order_ids = ti.xcom_pull(task_ids="is-big", key=branch)
    with engine().begin() as conn:
        conn.execute(
            sa.text("UPDATE orders SET priority = :p WHERE id IN :ids").bindparams(_ids(order_ids)),
            {"p": priority},
        )
    return list(order_ids)


def routed(ti: Any, **_: Any) -> list[int]:
    """The union of what the two branches handled (a skipped branch pushed nothing)."""
    arrived = ti.xcom_pull(task_ids=["make-high", "make-normal"])
    return sorted({order_id for ids in arrived if ids for order_id in ids})


def stamp(ti: Any, **_: Any) -> None:
    order_ids = ti.xcom_pull(task_ids="routed")
    note = sa.text(
        "UPDATE orders SET note = 'routed: order ' || CAST(id AS TEXT) || ' (' || status || ')' "
        "WHERE id IN :ids"
    )
    with engine().begin() as conn:
        conn.execute(note.bindparams(_ids(order_ids)))


with DAG(
    dag_id=DAG_ID,
    schedule=None,
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
):
    (
        PythonOperator(task_id="start", python_callable=start)
        >> BranchPythonOperator(task_id="is-big", python_callable=is_big)
        >> [
            PythonOperator(
                task_id="make-high",
                python_callable=set_priority,
                op_kwargs={"priority": "high", "branch": "big"},
            ),
            PythonOperator(
                task_id="make-normal",
                python_callable=set_priority,
                op_kwargs={"priority": "normal", "branch": "normal"},
            ),
        ]
        >> PythonOperator(
            task_id="routed", python_callable=routed, trigger_rule="none_failed_min_one_success"
        )
        >> PythonOperator(task_id="stamp", python_callable=stamp)
    )
