"""A `limits` storage in the rule store's database: one rate-limit budget for every api-server worker.

Registered with `limits` under the scheme ``rulestore://`` (its storage classes register themselves
by ``STORAGE_SCHEME``), so ``storage_from_string("rulestore://")`` builds one over the configured
store (``AUTOMATION_STORE_URL``); the app passes its own store. Counters live in the store's
``api_rate_limits`` table (:mod:`rule_compiler.store.rate_limits`): works on SQLite and Postgres,
needs no Redis or Memcached. Supports the fixed-window strategy only.
"""

from __future__ import annotations

import time

from limits.storage import Storage

from rule_compiler.errors import StoreError
from rule_compiler.store import RuleStore

SCHEME = "rulestore"


class RuleStoreStorage(Storage):
    """Fixed-window counters in the rule store (``rulestore://``); ``store``: default the configured one."""

    STORAGE_SCHEME = [SCHEME]

    def __init__(
        self,
        uri: str | None = None,
        wrap_exceptions: bool = False,
        store: RuleStore | None = None,
        **options: float | str | bool,
    ) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.store = store if store is not None else RuleStore()

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return StoreError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        hits, _ = self.store.rate_limit_hit(key, expiry_s=expiry, amount=amount)
        return hits

    def get(self, key: str) -> int:
        window = self.store.rate_limit_window(key)
        return 0 if window is None else window[0]

    def get_expiry(self, key: str) -> float:
        window = self.store.rate_limit_window(key)
        return time.time() if window is None else window[1].timestamp()

    def check(self) -> bool:
        try:
            self.store.ping()
        except StoreError:
            return False
        return True

    def reset(self) -> int | None:
        return self.store.rate_limit_clear()

    def clear(self, key: str) -> None:
        self.store.rate_limit_clear(key)
