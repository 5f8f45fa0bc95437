"""A workflow's waiting nodes: ``delay`` (a deferrable wait) and ``approval`` (Airflow's human in the
loop), neither holding a worker slot while it waits (ADR 0011).

A waiting workflow's run carries one item (:mod:`rule_engine.operators.item_runs`). Both nodes gather
it as every node does, read its row for their templates (rendered in our sandbox, never by Airflow's
templater: ``template_fields`` is empty), record their outcome in the automation log under the node id
and pass the item on. A run cancelled over REST applies nothing after the wait.

- **delay**: the moment to wait for is computed when the node starts: ``duration`` from now, or
  ``until`` rendered from the item's row. A moment already past goes on at once, with a note in the
  trace. Otherwise the task defers to Airflow's ``DateTimeTrigger``: the triggerer resumes it.
- **approval**: a ``HITLBranchOperator`` with the options Approve and Reject. What Airflow shows under
  Required Actions names the workflow, the node and the item keys, not row values, unless
  ``$AUTOMATION_APPROVAL_VALUES`` is true; the subject and body rendered from the row go to the
  assignees (in-app notices, their preferences apply) and to our approvals inbox. The answer, from
  our REST route, Airflow's, or the timeout (``on_timeout``), sends the item along ``approved`` or
  ``rejected``; ``record_outcome`` is always followed.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Mapping
from typing import Any

from airflow.providers.standard.operators.hitl import HITLBranchOperator, HITLOperator
from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk import Param

from rule_compiler.clock import utcnow
from rule_compiler.compiler import OUTCOME_TASK
from rule_compiler.errors import PermanentActionError
from rule_compiler.runtime.rendering import render_for_action
from rule_compiler.settings import approval_values
from rule_engine.operators.actions import ItemReader, acted_on
from rule_engine.operators.base import NOTHING_ARRIVED
from rule_engine.operators.workflow_items import items_of, output_of

APPROVE = "Approve"
REJECT = "Reject"
#: An approval's branch (its connections' ``when``) → the option Airflow shows.
OPTIONS = {"approved": APPROVE, "rejected": REJECT}
MAX_COMMENT = 2_000
#: How many item keys an approval's Airflow subject names (its count is always whole).
SHOWN_KEYS = 5


class _WaitingNode(ItemReader):
    """What both waiting nodes share: gather the item (or skip), render over its row, record."""

    def rendered(self, context: Any, arrived: Mapping[str, Any], value: Any, what: str) -> list[Any]:
        """``value`` rendered in the sandbox over each item's row (one item per run: one value)."""
        matches = self.matches(context, arrived)
        rows = self.rows_of(matches) if self.spec_params.get("row_source") else [({}, None)] * len(matches)
        return [
            render_for_action(value, self.template_context(context, record, event), what)
            for record, event in rows
        ]

    def record(self, arrived: Mapping[str, Any], output: Mapping[str, Any], status: str = "success") -> None:
        self.store.record_action(
            int(arrived["run_pk"]),
            self.task_id,
            status=status,
            output={**acted_on(arrived), **output},
            started_at=self.attempt_started,
        )


class WorkflowDelayOperator(_WaitingNode):
    """Waits for ``duration`` from its start, or ``until`` a moment read from the item, on the triggerer."""

    ui_color = "#e6f4ea"

    def execute(self, context: Any) -> dict[str, Any]:
        arrived = self.received(context, NOTHING_ARRIVED)
        now = utcnow()
        seconds = self.spec_params.get("duration_seconds")
        if seconds is not None:
            moment = now + dt.timedelta(seconds=int(seconds))
        else:
            moment = max(
                _moment(text) for text in self.rendered(context, arrived, self.spec_params["until"], "until")
            )
        if moment <= now:
            note = f"{moment.isoformat()} had passed when the node started: it went on at once"
            self.log.info("%s", note)
            self.record(arrived, {"until": moment.isoformat(), "waited": False, "note": note})
            return arrived
        self.record(arrived, {"until": moment.isoformat(), "waiting": True}, status="running")
        self.log.info("waiting until %s without a worker slot (the triggerer resumes this task)", moment)
        self.defer(
            trigger=DateTimeTrigger(moment=moment),
            method_name="execute_complete",
            kwargs={"until": moment.isoformat()},
        )

    def execute_complete(self, context: Any, event: Any = None, until: str | None = None) -> dict[str, Any]:
        arrived = self.received(context, NOTHING_ARRIVED)
        self.attempt_started = None  # the wait began in execute: its record keeps that start
        self.record(arrived, {"until": until, "waited": True})
        self.log.info("waited until %s; the item goes on", until)
        return arrived


def _moment(text: Any) -> dt.datetime:
    """A rendered ``until``: an ISO 8601 date or date and time (without a zone: UTC)."""
    value = str(text).strip()
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise PermanentActionError(
            f"until rendered to {value[:80]!r}, which is not a date and time (ISO 8601, such as "
            "2026-12-24T09:00:00+01:00)"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


class WorkflowApprovalOperator(_WaitingNode, HITLBranchOperator):
    """Asks its assignees; the item goes on along ``approved`` or ``rejected`` (never both skipped, as
    ``ApprovalOperator``'s reject would do to every task after it)."""

    template_fields = ()
    ui_color = "#fef7e0"

    def __init__(self, *, spec_params: Mapping[str, Any], spec_hash: str, **kwargs: Any) -> None:
        assignees = [str(name) for name in spec_params.get("assignees") or []]
        super().__init__(
            spec_params=spec_params,
            spec_hash=spec_hash,
            subject=f"Approval {kwargs.get('task_id', '')}",  # replaced when the task runs
            options=[APPROVE, REJECT],
            defaults=[OPTIONS[str(spec_params.get("on_timeout") or "rejected")]],
            multiple=False,
            params={"comment": Param("", type="string", maxLength=MAX_COMMENT, title="Comment")},
            assigned_users=[{"id": name, "name": name} for name in assignees],
            response_timeout=dt.timedelta(seconds=int(spec_params.get("timeout_seconds") or 86_400)),
            **kwargs,
        )

    def execute(self, context: Any) -> None:
        from rule_compiler.store import ApprovalRequest

        arrived = self.received(context, NOTHING_ARRIVED)
        params = self.spec_params
        subject = " ".join(str(self.rendered(context, arrived, params["subject"], "subject")[0]).split())
        body = params.get("body")
        body_text = str(self.rendered(context, arrived, body, "body")[0]) if body else None
        workflow = self.rule_id.split("/", 1)[1]
        items = acted_on(arrived)
        assert self.response_timeout is not None  # noqa: S101 - always set by __init__
        deadline = utcnow() + self.response_timeout
        approval = self.store.open_approval(
            ApprovalRequest(
                organization=self.rule_id.split("/", 1)[0],
                workflow=workflow,
                dag_id=self.dag_id,
                run_id=str(context["run_id"]),
                node_id=self.task_id,
                run_pk=int(arrived["run_pk"]),
                assignees=tuple(params.get("assignees") or ()),
                subject=subject,
                body=body_text,
                items=tuple(items["keys"]),
                item_count=int(items["items"]),
                on_timeout=str(params.get("on_timeout") or "rejected"),
                deadline=deadline,
            )
        )
        if approval_values():
            self.subject, self.body = subject, body_text
        else:
            self.subject, self.body = self._neutral(items, approval.id, deadline)
        self.record(arrived, {"approval_id": approval.id, "waiting": True}, status="running")
        self._notify(context, approval.id, subject, body_text, deadline)
        self.log.info(
            "approval %s waits for %s until %s", approval.id, ", ".join(approval.assignees), deadline
        )
        HITLOperator.execute(self, context)

    def _neutral(self, items: Mapping[str, Any], approval_id: int, deadline: dt.datetime) -> tuple[str, str]:
        """What Airflow shows: the workflow, the node, the item keys and counts; never row values."""
        keys = list(items["keys"])
        shown = ", ".join(keys[:SHOWN_KEYS]) + (" …" if len(keys) > SHOWN_KEYS else "")
        count = int(items["items"])
        subject = (
            f"Approve {self.rule_id} at {self.task_id}? {count} item{'s' if count != 1 else ''}: {shown}"
        )
        body = (
            f"Workflow `{self.rule_id}`, approval node `{self.task_id}` (approval {approval_id}).\n\n"
            f"Items: {count} ({shown}). Answer by {deadline.isoformat()}; without an answer it is "
            f"**{self.spec_params.get('on_timeout') or 'rejected'}**.\n\n"
            "The assignees read the full request in their notifications and in the approvals inbox "
            f"(`GET /automations/api/v1/approvals/{approval_id}`)."
        )
        return subject[:1_000], body

    def _notify(
        self, context: Any, approval_id: int, subject: str, body: str | None, deadline: dt.datetime
    ) -> None:
        """An in-app notice to each assignee (their preferences apply) with where to answer; never fails
        the task (the inbox lists the approval anyway)."""
        from rule_compiler.runtime.dispatch_plan import delivery_key
        from rule_compiler.store.notifications import NotificationDelivery
        from rule_engine.channel_senders import ChannelSenders
        from rule_engine.notices import Notice, deliver

        links = self._links(context, approval_id)
        text = "\n\n".join(
            part
            for part in (
                body,
                f"Workflow {self.rule_id}, node {self.task_id}. Answer by {deadline.isoformat()}.",
                links,
            )
            if part
        )
        message = {"subject": f"Approval needed: {subject}"[:1_000], "body": text, "html": _html(text)}
        run_id = str(context["run_id"])
        notice_id = f"approval:{self.task_id}"
        organization = self.rule_id.split("/", 1)[0]
        try:
            senders = ChannelSenders()
            for name in self.spec_params.get("assignees") or []:
                key = delivery_key(self.rule_id, run_id, notice_id, None, channel="in_app", recipient=name)
                delivery = NotificationDelivery(
                    idempotency_key=key,
                    organization=organization,
                    rule_id=self.rule_id,
                    action_id=notice_id,
                    occurrence_id=run_id,
                    row_key=None,
                    channel="in_app",
                    recipient=name,
                )
                outcome = deliver(self.store.engine, Notice(delivery, message), senders)
                self.log.info("approval notice to %s: %s", name, outcome)
        except Exception as exc:  # the approval waits in the inbox even when a notice fails
            self.log.warning("an approval notice could not be sent: %s", exc)

    def _links(self, context: Any, approval_id: int) -> str:
        try:
            airflow_page = self.generate_link_to_ui(task_instance=context["ti"])
        except ValueError:  # no [api] base_url: the REST route alone
            return f"Answer: POST /automations/api/v1/approvals/{approval_id}/answer"
        base = airflow_page.split("/dags/", 1)[0]
        return (
            f"Answer in the Airflow UI: {airflow_page}\n"
            f"or over REST: POST {base}/automations/api/v1/approvals/{approval_id}/answer"
        )

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        arrived = self.received(context, NOTHING_ARRIVED)
        self.attempt_started = None  # the wait began in execute: its record keeps that start
        answer = HITLOperator.execute_complete(self, context=context, event=event)
        chosen = list(answer["chosen_options"])
        decision = "approved" if chosen == [APPROVE] else "rejected"
        timed_out = bool(event.get("timedout"))
        responder = answer.get("responded_by_user") or {}
        answered_by = str(responder.get("name") or responder.get("id") or "") or None
        comment = str((answer.get("params_input") or {}).get("comment") or "")[:MAX_COMMENT] or None
        via = "timeout" if timed_out else "airflow"
        approval = self.store.find_approval(
            dag_id=self.dag_id, run_id=str(context["run_id"]), node_id=self.task_id
        )
        status = "timed_out" if timed_out else decision
        if approval is not None and not self.store.settle_approval(
            approval.id, status=status, answered_by=answered_by, via=via, comment=comment
        ):
            via = approval.answered_via or via  # answered over our route first: it settled the row
        self.log.info("approval %s: %s (by %s, via %s)", self.task_id, decision, answered_by or "nobody", via)
        run_pk, spec_hash = int(arrived["run_pk"]), str(arrived["spec_hash"])
        items = items_of(arrived)
        events = "matched_events" in arrived
        branches = {
            when: output_of(run_pk, spec_hash, items if when == decision else [], events=events)
            for when in OPTIONS
        }
        self.record(
            arrived,
            {
                "decision": decision,
                "timed_out": timed_out,
                "answered_by": answered_by,
                "via": via,
                "comment": comment,
            },
        )
        output = {"run_pk": run_pk, "spec_hash": spec_hash, "branches": branches, "decision": decision}
        # pushed first: skipping the branch not taken ends this task's execution
        context["ti"].xcom_push(key="return_value", value=output)
        targets = (self.spec_params.get("branches") or {}).get(decision, [])
        self.do_branch(context, [OUTCOME_TASK, *targets])
        return output


def _html(text: str) -> str:
    return "<br>".join(html.escape(line) for line in text.splitlines())
