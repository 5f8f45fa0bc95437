"""The organization quotas the REST view enforces itself: events pushed per minute.

(The active-definitions quota is the store's: it is checked in the transaction that activates.)
"""

from __future__ import annotations

import math

from rule_compiler.clock import utcnow
from rule_compiler.errors import QuotaExceededError
from rule_compiler.store import RuleStore

EVENTS_WINDOW_SECONDS = 60


class EventQuotaError(QuotaExceededError):
    """The organization pushed its ``events_per_minute`` in this minute (HTTP 429, ``Retry-After``)."""

    def __init__(self, organization: str, quota: int, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(
            f"organization {organization!r} pushed its {quota} events of this minute (its quota, "
            f"events_per_minute); try again in {retry_after} s, or ask a platform admin to raise it"
        )


def charge_event(store: RuleStore, organization: str) -> None:
    """Count one pushed event against the organization's quota; EventQuotaError past it."""
    quota = store.organization_limits(organization).events_per_minute
    if quota is None:
        return
    hits, window_end = store.rate_limit_hit(f"org-events:{organization}", expiry_s=EVENTS_WINDOW_SECONDS)
    if hits > quota:
        wait = max(1, math.ceil((window_end - utcnow()).total_seconds()))
        raise EventQuotaError(organization, quota, wait)
