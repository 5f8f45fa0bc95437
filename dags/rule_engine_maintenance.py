"""Airflow DAG file: the rule engine's own housekeeping dags.

- ``rule_engine_notifications``: every five minutes it sends notifications deferred by recipients'
  quiet hours, then the daily digests that are due, and tells the owners of rules and workflows whose
  failure rate crossed their alert threshold (once per window, ADR 0014).
- ``rule_engine_outbox_purge``: once a day it deletes the change events that the event triggers
  have handed on and that are older than ``AUTOMATION_OUTBOX_RETENTION`` (default ``7d``), in every
  application database an active event rule watches.
- ``rule_engine_retention``: once a day it purges the rule store's finished runs, deliveries, report
  runs and in-app messages older than their ``AUTOMATION_RETENTION_*`` setting (archived first when
  ``AUTOMATION_RETENTION_ARCHIVE`` is true), audit rows only when ``AUTOMATION_RETENTION_AUDIT`` is
  set, and the ledger rows of the application databases record actions write to.

Cheap to parse: the operators import their machinery only when they run.
"""

import datetime as dt

from airflow.sdk import DAG, CronTriggerTimetable
from rule_engine.operators.dispatch import (
    DISPATCHER_DAG_ID,
    CheckFailureRatesOperator,
    DispatchDeferredOperator,
    DispatchDigestsOperator,
)
from rule_engine.operators.outbox_purge import OUTBOX_PURGE_DAG_ID, OutboxPurgeOperator
from rule_engine.operators.store_retention import (
    RETENTION_DAG_ID,
    LedgerRetentionOperator,
    StoreRetentionOperator,
)

with DAG(
    dag_id=DISPATCHER_DAG_ID,
    schedule=CronTriggerTimetable("*/5 * * * *", timezone="UTC"),
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=False,  # notices wait on it: it runs without a click
    tags=["automation", "rule-engine"],
    description="Sends deferred notifications (quiet hours), daily digests and failure-rate alerts.",
    doc_md=__doc__,
    default_args={"owner": "automation", "retries": 1, "retry_delay": dt.timedelta(minutes=1)},
):
    deferred = DispatchDeferredOperator(task_id="send_deferred", execution_timeout=dt.timedelta(minutes=4))
    digests = DispatchDigestsOperator(
        task_id="send_digests", execution_timeout=dt.timedelta(minutes=4), trigger_rule="all_done"
    )
    deferred >> digests
    CheckFailureRatesOperator(task_id="check_failure_rates", execution_timeout=dt.timedelta(minutes=4))

with DAG(
    dag_id=OUTBOX_PURGE_DAG_ID,
    schedule=CronTriggerTimetable("17 3 * * *", timezone="UTC"),
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=False,  # outboxes grow without it
    tags=["automation", "rule-engine"],
    description="Deletes consumed change events older than AUTOMATION_OUTBOX_RETENTION (default 7d).",
    doc_md=__doc__,
    default_args={"owner": "automation", "retries": 1, "retry_delay": dt.timedelta(minutes=10)},
):
    OutboxPurgeOperator(task_id="purge_outboxes", execution_timeout=dt.timedelta(hours=1))

with DAG(
    dag_id=RETENTION_DAG_ID,
    schedule=CronTriggerTimetable("41 2 * * *", timezone="UTC"),
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=False,  # the automation log grows without it
    tags=["automation", "rule-engine"],
    description="Purges (and archives) finished runs, deliveries and report runs past their retention.",
    doc_md=__doc__,
    default_args={"owner": "automation", "retries": 2, "retry_delay": dt.timedelta(minutes=10)},
):
    StoreRetentionOperator(task_id="purge_store", execution_timeout=dt.timedelta(hours=3))
    LedgerRetentionOperator(task_id="purge_ledgers", execution_timeout=dt.timedelta(hours=1))
