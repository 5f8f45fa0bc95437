"""Failure-rate alerts, sent (ADR 0014): run every five minutes by the ``rule_engine_notifications``
DAG's ``check_failure_rates`` task, and callable directly (tests, a one-off check).

The windows to alert come from :func:`rule_compiler.runtime.failure_alerts.due_alerts` (computed from
the analytics rollups and claimed once in the store); each goes to the definition's owner as an owner
failure notice does (:class:`rule_engine.notifiers.FailureRateNotifier`: email to an address, else the
in-app inbox), recorded in the notification deliveries, so a notice that could not be sent can be
redelivered.
"""

from __future__ import annotations

import datetime as dt
import logging

from rule_compiler import settings
from rule_compiler.clock import utcnow
from rule_compiler.runtime.failure_alerts import Crossing, deployment_default, due_alerts
from rule_compiler.store import RuleStore
from rule_engine.notices import describe
from rule_engine.notifiers import FailureRateNotifier

log = logging.getLogger(__name__)


def check_failure_rates(store: RuleStore, now: dt.datetime | None = None) -> dict[str, int]:
    """Alert every window that crossed its threshold and was not alerted yet; counts per outcome."""
    counts = {"alerted": 0, "failed": 0}
    for crossing in due_alerts(store, now or utcnow(), deployment_default(settings.failure_alerts())):
        try:
            notifier(crossing).send({})
        except Exception as exc:  # recorded on the delivery (redeliverable); the others go on
            counts["failed"] += 1
            log.warning("failure-rate alert of %s failed: %s", crossing.watched.name, describe(exc))
            continue
        counts["alerted"] += 1
    return counts


def notifier(crossing: Crossing) -> FailureRateNotifier:
    target = crossing.watched
    return FailureRateNotifier(
        owner=target.owner,
        organization=target.organization,
        rule_id=f"{target.organization}/{target.name}",
        alert={
            "kind": target.kind,
            "failed": crossing.summary.failed,
            "runs": crossing.runs,
            "rate": f"{crossing.rate:.0%}",
            "threshold": f"{target.alerts.failure_rate:.0%}",
            "window_start": crossing.window_start.isoformat(),
            "window_end": crossing.window_end.isoformat(),
        },
    )
