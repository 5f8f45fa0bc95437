"""The rate limit counts in the rule store (``rulestore://``, the default): two app instances over one
store database, as two api-server workers, share one budget, on SQLite and Postgres; a window that
has ended starts again; concurrent hits never lose a count; ``memory://`` still counts per worker."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter
from rule_engine.api import create_app
from rule_engine.api.api_settings import ApiSettings
from rule_engine.api.rate_limit_storage import RuleStoreStorage

from rule_compiler.settings import STORE_URL_ENV
from rule_compiler.store import RuleStore, migrate, rate_limits

Workers = Callable[..., list[TestClient]]


@pytest.fixture
def shared_url(any_db_url: str) -> str:
    """A migrated store database with a viewer ``vera`` and an editor ``ed`` in acme."""
    store = RuleStore(any_db_url)
    store.upgrade()
    for username, role in (("vera", "viewer"), ("ed", "editor")):
        store.put_membership(organization="acme", username=username, role=role, actor="setup")
    store.close()
    return any_db_url


@pytest.fixture
def workers(shared_url: str) -> Iterator[Workers]:
    """``workers(n, rate_limit=..., ...)``: n apps, each with its own RuleStore (engine) on one database."""
    with ExitStack() as stack:

        def start(count: int, **settings: Any) -> list[TestClient]:
            clients = []
            for _ in range(count):
                store = RuleStore(shared_url)
                stack.callback(store.close)
                app = create_app(store, settings=ApiSettings(**settings), on_change=None)
                clients.append(stack.enter_context(TestClient(app, raise_server_exceptions=False)))
            return clients

        yield start


def _get(client: TestClient, token: str) -> int:
    return int(client.get("/api/v1/rules", headers={"Authorization": f"Bearer {token}"}).status_code)


def test_two_workers_share_one_budget(workers: Workers, issue_token: Callable[[str], str]) -> None:
    first, second = workers(2, rate_limit="3/minute")
    vera = issue_token("vera")
    assert [_get(first, vera) for _ in range(3)] == [200, 200, 200]
    limited = second.get("/api/v1/rules", headers={"Authorization": f"Bearer {vera}"})
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert _get(first, vera) == 429
    assert _get(second, issue_token("ed")) == 200  # another user's budget is their own


def test_memory_storage_still_counts_per_worker(workers: Workers, issue_token: Callable[[str], str]) -> None:
    first, second = workers(2, rate_limit="2/minute", rate_limit_storage="memory://")
    vera = issue_token("vera")
    assert [_get(first, vera) for _ in range(3)] == [200, 200, 429]
    assert _get(second, vera) == 200


def test_an_ended_window_starts_again(workers: Workers, issue_token: Callable[[str], str]) -> None:
    first, second = workers(2, rate_limit="2 per 3 seconds")
    vera = issue_token("vera")
    assert [_get(first, vera), _get(second, vera), _get(first, vera)] == [200, 200, 429]
    limited = second.get("/api/v1/rules", headers={"Authorization": f"Bearer {vera}"})
    time.sleep(int(limited.headers["Retry-After"]) + 0.2)
    assert [_get(second, vera), _get(first, vera), _get(second, vera)] == [200, 200, 429]


def test_a_hit_after_the_window_ends_resets_the_count(shared_url: str) -> None:
    store = RuleStore(shared_url)
    t0 = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
    end = t0 + dt.timedelta(seconds=60)
    with store.engine.begin() as conn:
        assert rate_limits.hit(conn, "k", expiry_s=60, amount=1, now=t0) == (1, end)
        assert rate_limits.hit(conn, "k", expiry_s=60, amount=2, now=t0 + dt.timedelta(seconds=59)) == (
            3,
            end,
        )
        assert rate_limits.window(conn, "k", t0 + dt.timedelta(seconds=59)) == (3, end)
        assert rate_limits.window(conn, "k", end) is None  # ended: nothing counts any more
        later = end + dt.timedelta(seconds=1)
        assert rate_limits.hit(conn, "k", expiry_s=60, amount=1, now=later) == (
            1,
            later + dt.timedelta(seconds=60),
        )
        assert rate_limits.hit(conn, "other", expiry_s=60, amount=1, now=later)[0] == 1
        assert rate_limits.clear(conn, "k") == 1
        assert rate_limits.window(conn, "k", later) is None
    store.close()


def test_concurrent_hits_from_many_connections_never_lose_a_count(shared_url: str) -> None:
    stores = [RuleStore(shared_url) for _ in range(4)]  # four workers, each with its own engine

    def hit(i: int) -> int:
        return stores[i % 4].rate_limit_hit("busy", expiry_s=600)[0]

    with ThreadPoolExecutor(max_workers=8) as pool:
        counts = list(pool.map(hit, range(200)))
    assert sorted(counts) == list(range(1, 201))  # every hit saw its own count: increments are atomic
    assert stores[0].rate_limit_window("busy") is not None
    assert stores[0].rate_limit_window("busy")[0] == 200  # type: ignore[index]
    for store in stores:
        store.close()


def test_rulestore_is_a_registered_limits_scheme(shared_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STORE_URL_ENV, shared_url)
    storage = storage_from_string("rulestore://")
    assert isinstance(storage, RuleStoreStorage)
    assert storage.check()
    limiter = FixedWindowRateLimiter(storage)
    item = parse("2/minute")
    assert [limiter.hit(item, "u") for _ in range(3)] == [True, True, False]
    stats = limiter.get_window_stats(item, "u")
    assert stats.remaining == 0 and 0 < stats.reset_time - time.time() <= 60
    other_worker = RuleStore(shared_url)
    assert other_worker.rate_limit_window(item.key_for("u")) is not None  # in that database
    assert storage.reset() == 1
    assert limiter.get_window_stats(item, "u").remaining == 2
    other_worker.close()
    storage.store.close()
    assert not RuleStoreStorage(store=RuleStore("sqlite:////nonexistent-dir/x.db")).check()


def test_a_store_that_cannot_count_answers_503(tmp_path: Path, issue_token: Callable[[str], str]) -> None:
    store = RuleStore(f"sqlite:///{tmp_path / 'old.db'}")
    with store.engine.begin() as conn:
        migrate.upgrade(conn, "0004")  # memberships and the log, but no api_rate_limits table yet
    store.put_membership(organization="acme", username="vera", role="viewer", actor="setup")
    headers = {"Authorization": f"Bearer {issue_token('vera')}"}
    for rate_limit, expected in (("", 200), ("3/minute", 503)):
        app = create_app(store, settings=ApiSettings(rate_limit=rate_limit), on_change=None)
        with TestClient(app, raise_server_exceptions=False) as client:
            response = client.get("/api/v1/me", headers=headers)  # reads what 0004 has: memberships
        assert response.status_code == expected, (rate_limit, response.text)
    assert response.headers["Retry-After"] == "5"
    store.close()
