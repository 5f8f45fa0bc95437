"""The one ``Event`` model: the outbox row, the REST body, the rule tester's input.

See docs/architecture.md §3.6 for where events come from and how they are consumed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from rule_compiler.definitions.common import Identifier, StrictModel
from rule_compiler.definitions.trigger_types import EventOperation


class Event(StrictModel):
    """A change to one row of a watched table."""

    id: str | None = Field(default=None, max_length=200, description="unique per connection; idempotency")
    connection: Identifier | None = None
    table: Identifier
    operation: EventOperation
    key: dict[str, Any] | str | int | None = None
    new: dict[str, Any] | None = None
    old: dict[str, Any] | None = None
    changed_fields: list[str] | None = None
    occurred_at: datetime | None = None
    actor: str | None = Field(
        default=None,
        max_length=200,
        description="who made the change: the application's user its transaction named (capture "
        "triggers on Postgres read `SET LOCAL automation.actor`), or the caller of a pushed event "
        "(set by the REST view, never taken from the body)",
    )

    def changed(self) -> list[str]:
        """Columns whose value differs between ``old`` and ``new`` (or the recorded list)."""
        if self.changed_fields is not None:
            return list(self.changed_fields)
        old, new = self.old or {}, self.new or {}
        return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
