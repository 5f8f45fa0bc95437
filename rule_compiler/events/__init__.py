"""Change events of application tables: capture (row triggers → outbox) and reading the outbox."""

from rule_compiler.events.capture import CaptureError, CaptureStatus, install, status, uninstall
from rule_compiler.events.outbox import NOTIFY_CHANNEL, OUTBOX_TABLE, event_from_row, read_events

__all__ = [
    "NOTIFY_CHANNEL",
    "OUTBOX_TABLE",
    "CaptureError",
    "CaptureStatus",
    "event_from_row",
    "install",
    "read_events",
    "status",
    "uninstall",
]
