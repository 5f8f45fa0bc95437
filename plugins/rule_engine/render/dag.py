"""Render a ``DagSpec`` as an ``airflow.sdk.DAG``; render a placeholder DAG that shows an error."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pendulum
from airflow.sdk import (
    DAG,
    Asset,
    AssetWatcher,
    BaseOperator,
    CronDataIntervalTimetable,
    CronTriggerTimetable,
)
from airflow.sdk.exceptions import AirflowFailException

from rule_compiler.settings import waiting_runs
from rule_engine.render.registry import operator_class

if TYPE_CHECKING:
    from rule_compiler.compiler import DagSpec
    from rule_compiler.events.watch import Watch

START_DATE = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
UNSUPPORTED_TRIGGERS: dict[str, str] = {}
#: Task kinds the format accepts and this release does not render yet: kind → why (the DAG becomes a
#: placeholder that says so).
UNSUPPORTED_TASK_KINDS: dict[str, str] = {}
#: Task kinds that wait (a deferral, a human answer): no execution timeout (their own deadline rules),
#: and a DAG with one runs one item per run, so its runs overlap (``waiting_runs()`` at once).
WAITING_TASK_KINDS = frozenset({"workflow_delay", "workflow_approval"})
#: The task that takes a workflow run's items (in a waiting workflow, one at a time across runs).
START_KIND = "workflow_start"
#: Task kinds mapped over a list in their params: kind → (param holding the list, operator argument,
#: the label of each mapped instance in the UI — our fixed template, never author text).
MAPPED_KINDS: dict[str, tuple[str, str, str]] = {
    "report_deliver": ("deliveries", "delivery", "{{ task.delivery['index'] }} {{ task.delivery['type'] }}"),
}


def render_dag(spec: DagSpec, spec_hash: str, *, pool: str | None = None) -> DAG:
    """One DAG for one spec, its tasks in ``pool`` when given; the hash is stamped into ``doc_md`` so
    Airflow's versioning sees edits."""
    if spec.schedule.kind in UNSUPPORTED_TRIGGERS:
        return render_error_dag(spec.dag_id, UNSUPPORTED_TRIGGERS[spec.schedule.kind], tags=spec.tags)
    waiting = sorted({t.task_id: t.kind for t in spec.tasks if t.kind in UNSUPPORTED_TASK_KINDS}.items())
    if waiting:
        task_id, kind = waiting[0]
        return render_error_dag(
            spec.dag_id, f"node '{task_id}': {UNSUPPORTED_TASK_KINDS[kind]}", tags=spec.tags
        )
    waits = any(task.kind in WAITING_TASK_KINDS for task in spec.tasks)
    dag = DAG(
        dag_id=spec.dag_id,
        schedule=_schedule(spec),
        start_date=start_date_in(spec.schedule.timezone),
        catchup=False,
        max_active_runs=waiting_runs() if waits else 1,
        tags=list(spec.tags),
        dag_display_name=spec.display_name or spec.dag_id,  # a spec compiled without one: the id
        description=(spec.description or spec.rule_id)[:200],
        doc_md=_doc_md(spec, spec_hash),
        is_paused_upon_creation=not spec.active,
        default_args=_default_args(spec),
    )
    tasks: dict[str, Any] = {}
    for task in spec.tasks:
        operator = operator_class(task.kind)
        extra: dict[str, Any] = {}
        if operator.takes_on_failure:
            extra["on_failure"] = task.on_failure
        if waits and task.kind == START_KIND:
            # runs overlap: one start at a time takes events past the cursor, so no two take the same
            extra["max_active_tis_per_dag"] = 1
        arguments: dict[str, Any] = dict(
            task_id=task.task_id,
            dag=dag,
            spec_params={**task.params, "kind": task.kind},
            spec_hash=spec_hash,
            retries=task.retries,
            retry_delay=dt.timedelta(seconds=task.retry_delay_seconds),
            retry_exponential_backoff=2.0,
            execution_timeout=(
                None if task.kind in WAITING_TASK_KINDS else dt.timedelta(seconds=task.timeout_seconds)
            ),
            trigger_rule=task.trigger_rule,
            task_display_name=task.display_name,
            **extra,
        )
        if pool is not None:  # the organization's own pool (docs/production.md, "Sharing the cluster")
            arguments["pool"] = pool
        if task.kind in MAPPED_KINDS:
            # one task instance per item (each report delivery retried and shown on its own)
            source, argument, label = MAPPED_KINDS[task.kind]
            items = list(task.params.get(source) or [])  # type: ignore[arg-type]
            mapped = operator.partial(**arguments, map_index_template=label)
            tasks[task.task_id] = mapped.expand(**{argument: items})
        else:
            tasks[task.task_id] = operator(**arguments)
    for task in spec.tasks:
        for upstream in task.upstream:
            tasks[upstream] >> tasks[task.task_id]
    return dag


@functools.cache
def start_date_in(timezone: str | None) -> pendulum.DateTime:
    """The DAG's start date, 2024-01-01 at midnight in the schedule's time zone (UTC without one): Airflow
    takes a DAG's time zone (``dag.timezone``, serialized with the DAG) from its start date's."""
    return pendulum.datetime(2024, 1, 1, tz=timezone or "UTC")


def _default_args(spec: DagSpec) -> dict[str, Any]:
    """Airflow's owner; with a rule owner, a failure notice to them (email or in-app, per run)."""
    args: dict[str, Any] = {"owner": spec.owner or "automation"}
    if spec.owner:
        from rule_engine.notifiers import OwnerFailureNotifier

        args["on_failure_callback"] = OwnerFailureNotifier(
            owner=spec.owner, organization=spec.organization, rule_id=spec.rule_id
        )
    return args


def _doc_md(spec: DagSpec, spec_hash: str) -> str:
    stamp = f"spec `{spec_hash}` · IR v{spec.ir_version} · compiler {spec.compiler_version}"
    return f"{spec.doc_md}\n---\n{stamp}\n"


def _cron_trigger(spec: DagSpec) -> Any:
    return CronTriggerTimetable(str(spec.schedule.cron), timezone=spec.schedule.timezone or "UTC")


def _cron_interval(spec: DagSpec) -> Any:
    # a data rule's sensor query reads the run's window (:data_interval_start/end), which
    # CronTriggerTimetable would leave empty; a report's run reads the interval since the previous run
    return CronDataIntervalTimetable(str(spec.schedule.cron), timezone=spec.schedule.timezone or "UTC")


#: IR schedule kind → the DAG's schedule (``manual``: none, runs start only when asked).
SCHEDULES: dict[str, Callable[[DagSpec], Any]] = {
    "event": lambda spec: [event_asset(spec)],
    "data": _cron_interval,
    "cron": _cron_trigger,
    "interval": _cron_interval,
    "manual": lambda spec: None,
}


def _schedule(spec: DagSpec) -> Any:
    return SCHEDULES[spec.schedule.kind](spec)


def event_asset(spec: DagSpec) -> Asset:
    """The asset of an event rule's watch (its table, operations and, for updates, fields: ADR 0008)."""
    from rule_compiler.events.watch import watch_of_spec

    watch = watch_of_spec(spec)
    if watch is None:  # kind "event" always names its table; a spec without one is malformed
        raise ValueError(f"{spec.dag_id}: an event schedule without a connection and table")
    return watch_asset(watch)


def watch_asset(watch: Watch) -> Asset:
    """The asset of a watch: every event rule with this watch schedules on it, and its one watcher
    (identical on every such rule) is the watch's one poller. A change the watch does not take
    never becomes an event of this asset, so it starts none of these rules' runs."""
    from rule_engine.triggers.outbox import OutboxEventTrigger  # only event rules pay for its imports

    return Asset(
        name=watch.asset_name,
        uri=watch.asset_uri,
        group="rule_engine",
        watchers=[
            AssetWatcher(name=watch.watcher_name, trigger=OutboxEventTrigger(**watch.trigger_kwargs()))
        ],
    )


class RenderErrorOperator(BaseOperator):
    """The one task of a placeholder DAG: fails with the reason the real DAG could not be built."""

    template_fields = ()
    ui_color = "#fce8e6"

    def __init__(self, *, reason: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reason = reason

    def execute(self, context: Any) -> None:
        raise AirflowFailException(self.reason)


def render_error_dag(dag_id: str, reason: str, *, tags: tuple[str, ...] = ()) -> DAG:
    """A DAG that exists only to say, in the UI, why the real one is missing."""
    safe_reason = reason.replace("<", "&lt;")
    dag = DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=START_DATE,
        catchup=False,
        tags=sorted({*tags, "automation", "render-error"}),
        description=f"NOT RUNNABLE: {reason}"[:200],
        doc_md=f"### This automation could not be rendered\n\n{safe_reason}\n",
        is_paused_upon_creation=True,
    )
    RenderErrorOperator(task_id="render_error", reason=reason, dag=dag)
    return dag
