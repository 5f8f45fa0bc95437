"""How long the rule engine keeps its own rows, from the environment, checked against each other.

One variable per kind of row (``AUTOMATION_RETENTION_<TARGET>``, a duration such as ``90d``; ``never``
keeps the rows), read by the ``rule_engine_retention`` maintenance DAG and ``rule-compiler retention``:

========================  ============  ==========================================================
variable suffix           default       rows
========================  ============  ==========================================================
``RUNS``                  ``90d``       automation runs, with their action results and approvals
``NOTIFICATIONS``         ``30d``       notification deliveries that are finished
``INBOX``                 ``180d``      in-app messages
``WEBHOOKS``              ``30d``       webhook deliveries that are finished
``REPORTS``               ``90d``       report runs and report deliveries that are finished
``LEDGER``                ``30d``       the exactly-once ledger in each application database
``AUDIT``                 ``never``     audit rows (only a platform administrator sets this)
========================  ============  ==========================================================

A ledger or delivery row is what stops a redelivered event from applying its effect or sending its
message twice, and an event can be redelivered while it is still in the outbox
(``AUTOMATION_OUTBOX_RETENTION``) and while the run that took it still runs (``AUTOMATION_LONGEST_RUN``,
default ``7d``). So :meth:`RetentionSettings.from_env` refuses a ledger, delivery or run retention that
is not longer than the two together, naming the variables.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass

from rule_compiler.conditions.durations import DurationError, parse_duration
from rule_compiler.errors import ConfigurationError

PREFIX = "AUTOMATION_RETENTION_"
ARCHIVE_ENV = "AUTOMATION_RETENTION_ARCHIVE"
LONGEST_RUN_ENV = "AUTOMATION_LONGEST_RUN"
OUTBOX_ENV = "AUTOMATION_OUTBOX_RETENTION"
NEVER = "never"

#: target → its default retention (None: kept forever).
DEFAULTS: dict[str, str] = {
    "runs": "90d",
    "notifications": "30d",
    "inbox": "180d",
    "webhooks": "30d",
    "reports": "90d",
    "ledger": "30d",
    "audit": NEVER,
}
#: The targets whose rows stop a redelivered event from acting twice.
GUARDS = ("runs", "notifications", "webhooks", "ledger")
_DEFAULT_LONGEST_RUN = "7d"
_DEFAULT_OUTBOX = "7d"
_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off", ""}


@dataclass(frozen=True)
class RetentionSettings:
    """The retention of each target (None: kept forever) and whether purged rows are archived first."""

    retention: Mapping[str, dt.timedelta | None]
    archive: bool
    outbox: dt.timedelta
    longest_run: dt.timedelta

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RetentionSettings:
        """Read and check the variables; raises :class:`~rule_compiler.errors.ConfigurationError`
        naming each variable that is wrong."""
        env = os.environ if environ is None else environ
        problems: list[str] = []
        retention: dict[str, dt.timedelta | None] = {}
        for target, default in DEFAULTS.items():
            name = PREFIX + target.upper()
            value = (env.get(name) or default).strip().lower()
            if value == NEVER:
                retention[target] = None
                continue
            retention[target] = _duration(name, value, problems)
        outbox = _duration(OUTBOX_ENV, env.get(OUTBOX_ENV) or _DEFAULT_OUTBOX, problems)
        longest = _duration(LONGEST_RUN_ENV, env.get(LONGEST_RUN_ENV) or _DEFAULT_LONGEST_RUN, problems)
        archive = (env.get(ARCHIVE_ENV) or "").strip().lower()
        if archive not in _TRUE | _FALSE:
            problems.append(f"{ARCHIVE_ENV} must be true or false, not {archive[:40]!r}")
        if outbox is not None and longest is not None:
            floor = outbox + longest
            for target in GUARDS:
                kept = retention.get(target)
                if kept is not None and kept <= floor:
                    problems.append(
                        f"{PREFIX}{target.upper()} ({_days(kept)}) must be longer than "
                        f"{OUTBOX_ENV} + {LONGEST_RUN_ENV} ({_days(outbox)} + {_days(longest)}): an event "
                        "redelivered after its row was purged would act twice"
                    )
        if problems or outbox is None or longest is None:
            raise ConfigurationError("; ".join(problems))
        return cls(retention=retention, archive=archive in _TRUE, outbox=outbox, longest_run=longest)

    def cutoff(self, target: str, now: dt.datetime) -> dt.datetime | None:
        """The instant before which ``target``'s finished rows go, or None when they are kept forever."""
        kept = self.retention[target]
        return None if kept is None else now - kept


def _duration(name: str, value: str, problems: list[str]) -> dt.timedelta | None:
    try:
        return parse_duration(value)
    except DurationError as exc:
        problems.append(f"{name}: {exc} (or '{NEVER}' to keep the rows)")
        return None


def _days(value: dt.timedelta) -> str:
    seconds = int(value.total_seconds())
    return f"{seconds // 86_400}d" if seconds % 86_400 == 0 else f"{seconds // 3600}h"
