"""What the notification store modules share: one translated transaction, key and page checks."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from rule_compiler.store._db import Database

MAX_PAGE = 1_000
_KEY = re.compile(r"^[0-9a-f]{64}$")


@contextmanager
def transaction(engine: sa.Engine, *, write: bool = False) -> Iterator[sa.Connection]:
    """One transaction with the store's error translation (and ``BEGIN IMMEDIATE`` for SQLite writes)."""
    with Database(engine.url.render_as_string(hide_password=True), engine).transaction(write=write) as conn:
        yield conn


def check_key(key: str) -> None:
    if not isinstance(key, str) or not _KEY.match(key):
        raise ValueError("an idempotency key is 64 lowercase hex characters (a SHA-256 digest)")


def check_page(limit: int, offset: int, *, cap: int = MAX_PAGE) -> None:
    if not 1 <= limit <= cap:
        raise ValueError(f"limit must be between 1 and {cap}, not {limit}")
    if offset < 0:
        raise ValueError(f"offset must not be negative, not {offset}")
