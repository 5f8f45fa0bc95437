"""Change events of application tables: capture (row triggers → outbox) and reading the outbox."""

from typing import TYPE_CHECKING

from rule_compiler._lazy import lazy_exports

if TYPE_CHECKING:
    from rule_compiler.events.capture import CaptureError, CaptureStatus, install, status, uninstall
    from rule_compiler.events.outbox_rows import NOTIFY_CHANNEL, OUTBOX_TABLE, event_from_row, read_events

__getattr__ = lazy_exports(
    __name__,
    {
        "CaptureError": "capture",
        "CaptureStatus": "capture",
        "install": "capture",
        "status": "capture",
        "uninstall": "capture",
        "NOTIFY_CHANNEL": "outbox_rows",
        "OUTBOX_TABLE": "outbox_rows",
        "event_from_row": "outbox_rows",
        "read_events": "outbox_rows",
    },
)

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
