"""Named fault points: a test hook that kills the process at a chosen step of an action.

Effects call :func:`faultpoint` at the steps where a crash matters (before an effect, between the
effect and its commit or record, after it). Nothing happens unless the environment variable
``AUTOMATION_FAULTPOINT`` names that point: then the process SIGKILLs itself, as a worker lost to
the OOM killer or a node failure would die — no ``finally``, no rollback, no atexit. The chaos tests
(``tests/airflow/test_chaos.py``, ADR 0004) use it to prove that Airflow's retry after such a
crash still gives exactly one effect. With ``AUTOMATION_FAULTPOINT_ONCE`` naming a file, the point
fires only if it can create that file, so the retry (same environment) runs through. With
``AUTOMATION_FAULTPOINT_AFTER=N`` the point lets N hits pass in this process and fires on the next
(to crash in the middle of a batch).

Points: ``records.before_effect``, ``records.after_effect_before_commit``, ``records.after_commit``,
``webhooks.before_send``, ``webhooks.after_send_before_record``, ``webhooks.after_record``,
``outbox.after_read``, ``outbox.after_emit``, ``outbox.after_advance`` (the event trigger's loop).
Never set these variables in a deployment.
"""

from __future__ import annotations

import os
import signal

FAULTPOINT_ENV = "AUTOMATION_FAULTPOINT"
ONCE_ENV = "AUTOMATION_FAULTPOINT_ONCE"
AFTER_ENV = "AUTOMATION_FAULTPOINT_AFTER"
POINTS = (
    "records.before_effect",
    "records.after_effect_before_commit",
    "records.after_commit",
    "webhooks.before_send",
    "webhooks.after_send_before_record",
    "webhooks.after_record",
    "outbox.after_read",
    "outbox.after_emit",
    "outbox.after_advance",
)
_hits: dict[str, int] = {}


def faultpoint(name: str) -> None:
    """SIGKILL this process if ``AUTOMATION_FAULTPOINT`` is ``name`` (once per marker file); else nothing."""
    if os.environ.get(FAULTPOINT_ENV) != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] <= int(os.environ.get(AFTER_ENV) or 0):
        return
    marker = os.environ.get(ONCE_ENV)
    if marker:
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            return  # already fired once: let the retry through
    os.kill(os.getpid(), signal.SIGKILL)
