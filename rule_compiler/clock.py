"""The one clock: the current time, timezone-aware, in UTC.

Rows are stamped, keys and quiet hours decided, with :func:`utcnow` (or with a ``now`` the caller
passes in, as every pure decision takes: conditions, preferences, report intervals). No module keeps
a clock of its own.
"""

from __future__ import annotations

import datetime as dt

__all__ = ["utcnow"]


def utcnow() -> dt.datetime:
    """The current time, timezone-aware, in UTC."""
    return dt.datetime.now(dt.UTC)
