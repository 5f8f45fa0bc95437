"""The REST view's limits and its platform administrators, read from the environment once per app."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

MiB = 1024 * 1024
MAX_BODY_ENV = "AUTOMATION_API_MAX_BODY_BYTES"
RATE_LIMIT_ENV = "AUTOMATION_API_RATE_LIMIT"
RATE_LIMIT_STORAGE_ENV = "AUTOMATION_API_RATE_LIMIT_STORAGE"
ADMINS_ENV = "AUTOMATION_API_ADMINS"


@dataclass(frozen=True)
class ApiSettings:
    """What :func:`rule_engine.api.create_app` needs besides the store.

    ``rate_limit`` is a `limits` rate string per user (``"300/minute"``; empty: no limit) kept in
    ``rate_limit_storage`` (a `limits` storage URI: ``rulestore://``, the default, counts in the rule
    store's database, shared by every api-server worker; ``memory://`` counts per api-server process;
    ``redis://host:6379`` and the other `limits` storages work too).
    ``platform_admins`` are Airflow usernames that act as admins in every organization: they create
    the first memberships.
    """

    max_body_bytes: int = 1 * MiB
    rate_limit: str = "300/minute"
    rate_limit_storage: str = "rulestore://"
    platform_admins: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_env(cls) -> ApiSettings:
        """Settings from ``AUTOMATION_API_*`` environment variables (defaults where unset)."""
        admins = os.environ.get(ADMINS_ENV, "")
        return cls(
            max_body_bytes=int(os.environ.get(MAX_BODY_ENV) or cls.max_body_bytes),
            rate_limit=os.environ.get(RATE_LIMIT_ENV, cls.rate_limit).strip(),
            rate_limit_storage=os.environ.get(RATE_LIMIT_STORAGE_ENV) or cls.rate_limit_storage,
            platform_admins=frozenset(name.strip() for name in admins.split(",") if name.strip()),
        )
