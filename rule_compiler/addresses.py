"""Who a message may go to: a plain email address, or an in-app user name of the organization.

Shared by validation (a report's fixed ``to``), the runtime (recipients rendered per row) and the
Airflow side (owner notices, report deliveries), so every layer accepts the same recipients.
"""

from __future__ import annotations

import re

__all__ = ["is_address", "is_user_name"]

#: A pragmatic address check: one @, no spaces or angle brackets, a dot in the domain.
_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")
#: An in-app recipient: a user name of the organization (letters, digits and ``. _ @ + -``).
_USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,149}$")


def is_address(text: str) -> bool:
    """Whether ``text`` is one plain email address (``ops@example.com``)."""
    return bool(_ADDRESS.match(text))


def is_user_name(text: str) -> bool:
    """Whether ``text`` is a plausible user name for in-app messages (``sales-ops``, ``ann.lee``)."""
    return bool(_USER_NAME.match(text))
