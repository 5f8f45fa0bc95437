"""Request and response models of ``/approvals`` and of cancelling a workflow's run (ADR 0011)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rule_engine.api.schemas import OutModel

ApprovalStatusName = Literal["waiting", "approved", "rejected", "timed_out", "cancelled"]
MAX_COMMENT = 2_000


class ApprovalAnswer(BaseModel):
    """An answer to an approval: ``approve`` or ``reject``, with an optional comment."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    comment: str = Field(default="", max_length=MAX_COMMENT)


class ApprovalPublic(OutModel):
    """One approval: what it asks (rendered from its item, for the organization's members), whom, by
    when, and how it was answered; where to answer it (ours, and Airflow's Required Actions page)."""

    id: int
    workflow: str
    node_id: str
    dag_id: str
    run_id: str
    subject: str
    body: str | None
    items: list[str]
    item_count: int
    assignees: list[str]
    status: ApprovalStatusName
    on_timeout: str
    deadline: dt.datetime | None
    created_at: dt.datetime
    answered_by: str | None
    answered_via: Literal["rest", "airflow", "timeout", "cancel"] | None
    answered_at: dt.datetime | None
    comment: str | None
    answer_url: str
    airflow_url: str


class RunCancelled(OutModel):
    """A waiting run, cancelled: marked in the automation log, then failed in Airflow."""

    run_id: str
    cancelled: bool
    tasks_ended: int = Field(description="tasks Airflow ended (running, deferred or awaiting input)")
