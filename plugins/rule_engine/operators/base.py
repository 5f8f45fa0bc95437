"""What every rule-engine task shares: its spec params, the rule store, and the run's identity."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from rule_compiler.store import RuleStore

EVALUATE_TASK_ID = "evaluate_conditions"
#: Why a workflow node is skipped when its connections delivered nothing.
NOTHING_ARRIVED = "no items reached this node"


def refuse_cancelled(store: RuleStore, run_pk: int) -> None:
    """Skip (no effect) when the run was cancelled (REST or CLI; ADR 0011)."""
    if store.run_cancelled(run_pk):
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException("the run was cancelled: no effect is applied after a cancel")


class RuleTaskOperator(BaseOperator):
    """Base of the rule-engine operators. Nothing here is templated by Airflow: authors' text never
    reaches Airflow's Jinja (whose context exposes ``conn`` and ``var``); we render it in our sandbox."""

    template_fields = ()
    ui_color = "#e8f0fe"
    #: Whether the operator takes the action's ``on_failure`` (``fail`` or ``continue``).
    takes_on_failure = False

    def __init__(self, *, spec_params: Mapping[str, Any], spec_hash: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec_params = dict(spec_params)
        self.spec_hash = spec_hash

    @cached_property
    def store(self) -> RuleStore:
        from rule_compiler.store import RuleStore

        return RuleStore()

    @property
    def rule_id(self) -> str:
        return str(self.spec_params["rule_id"])

    @property
    def definition_kind(self) -> str:
        """The kind of the definition this task belongs to (``rule``, ``workflow``): part of its keys."""
        return str(self.spec_params.get("definition_kind") or "rule")

    def query_role(self, conn_id: str) -> str | None:
        """The restricted role the organization's current catalog names for author SQL on ``conn_id``
        (read at run time: a platform administrator's change applies to what was registered before)."""
        from rule_compiler.catalog import query_role_of

        organization = self.rule_id.split("/", 1)[0]
        return query_role_of(self.store.get_catalog(organization), conn_id)

    @staticmethod
    def occurrence_id(context: Mapping[str, Any]) -> str:
        """The run this effect belongs to (event ids take its place for event rules)."""
        return str(context["run_id"])

    @staticmethod
    def run_time(context: Mapping[str, Any]) -> dt.datetime:
        """The run's logical time (never the wall clock), for durations like ``older_than: 3d``."""
        moment = context.get("logical_date")
        if moment is None:
            moment = context["dag_run"].run_after
        return dt.datetime.fromisoformat(str(moment)) if not isinstance(moment, dt.datetime) else moment

    def pin_to_run_version(self, run_spec_hash: str | None) -> None:
        """Use the params of the spec version the run started with, if the rule was edited mid-run."""
        if not run_spec_hash or run_spec_hash == self.spec_hash:
            return
        from rule_compiler.compiler import DagSpec

        stored = self.store.spec_by_hash(run_spec_hash)
        task = None
        if stored is not None:
            task = next(
                (t for t in DagSpec.model_validate_json(stored).tasks if t.task_id == self.task_id), None
            )
        if task is None:
            self.log.warning(
                "the rule changed mid-run and spec %s has no task %s; using the current version",
                run_spec_hash,
                self.task_id,
            )
            return
        self.log.info(
            "the rule changed mid-run; executing the version the run started with (%s)", run_spec_hash
        )
        self.spec_params = {**task.params, "kind": task.kind}
        self.spec_hash = run_spec_hash

    #: When this attempt received its items (set by :meth:`received`): the start of the duration its
    #: automation-log entry records for the analytics; None in a process that resumed a deferred task.
    attempt_started: dt.datetime | None = None

    @property
    def in_workflow(self) -> bool:
        """A node of a workflow: its items come from the connections into it (``inputs``)."""
        return "inputs" in self.spec_params

    def received(self, context: Mapping[str, Any], nothing: str) -> dict[str, Any]:
        """:meth:`evaluation`, pinned to the spec version the run started with; skipped (``nothing``
        says why) when no items arrived. A run cancelled (REST or CLI) is skipped too: no effect is
        applied after a cancel (ADR 0011)."""
        from airflow.sdk.exceptions import AirflowSkipException

        self.attempt_started = dt.datetime.now(dt.UTC)
        arrived = self.evaluation(context)
        if arrived is None:
            raise AirflowSkipException(nothing)
        self.pin_to_run_version(arrived.get("spec_hash"))
        refuse_cancelled(self.store, int(arrived["run_pk"]))
        return arrived

    def evaluation(self, context: Mapping[str, Any]) -> dict[str, Any] | None:
        """What this task acts on: ``run_pk``, ``spec_hash`` and ``matched_keys`` (ids, never row data).

        A rule's tasks read its ``evaluate_conditions``; a workflow node gathers what its connections
        delivered (None: nothing did); a workflow's ``record_outcome`` reads its ``start_task``.
        """
        if self.in_workflow:
            from rule_engine.operators.workflow_items import gather

            return gather(context["ti"], self.spec_params["inputs"])
        start = self.spec_params.get("start_task") or EVALUATE_TASK_ID
        value = context["ti"].xcom_pull(task_ids=start)
        return value if isinstance(value, dict) else None
