"""Failures surface as the store's own errors, with the URL's password masked."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from rule_compiler import settings
from rule_compiler.errors import ConflictError, StoreError, StoreUnavailableError
from rule_compiler.store import ApplyResult, RuleStore
from rule_compiler.store._db import Database

UNREACHABLE = "postgresql+psycopg2://postgres:s3cret-pw@127.0.0.1:1/x"

ApplyRule = Callable[..., ApplyResult]


def test_creating_a_store_does_not_connect() -> None:
    store = RuleStore(UNREACHABLE)
    assert store.url == "postgresql+psycopg2://postgres:***@127.0.0.1:1/x"
    assert "s3cret" not in repr(store)


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.loadable_specs(),
        lambda s: s.upgrade(),
        lambda s: s.start_run(
            organization="acme",
            rule_name="r",
            dag_id="d",
            run_id="x",
            spec_hash="h",
            trigger_type="manual",
            trigger_context={},
        ),
    ],
    ids=["read", "upgrade", "write"],
)
def test_unreachable_database_is_store_unavailable(call) -> None:
    store = RuleStore(UNREACHABLE)
    with pytest.raises(StoreUnavailableError) as caught:
        call(store)
    message = str(caught.value)
    assert "cannot reach the rule store at postgresql+psycopg2://postgres:***@127.0.0.1:1/x" in message
    assert "s3cret" not in message
    assert isinstance(caught.value.__cause__, sa.exc.OperationalError)


def test_unopenable_sqlite_file_is_store_unavailable(tmp_path: Path) -> None:
    store = RuleStore(f"sqlite:///{tmp_path / 'missing-dir' / 'store.db'}")
    with pytest.raises(StoreUnavailableError, match="cannot reach the rule store at sqlite:///"):
        store.list()


def test_store_without_tables_says_to_upgrade(any_db_url: str) -> None:
    store = RuleStore(any_db_url)
    with pytest.raises(StoreError, match="has no schema") as caught:
        store.loadable_specs()
    assert "rule-compiler db upgrade" in str(caught.value)
    assert not isinstance(caught.value, StoreUnavailableError)
    store.close()


def test_invalid_url_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="invalid rule store URL"):
        RuleStore("not a url").list()
    with pytest.raises(StoreError, match="cannot use rule store URL"):
        RuleStore("nosuchdialect://host/db").list()


def test_default_url_comes_from_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'from-env.db'}"
    monkeypatch.setenv(settings.STORE_URL_ENV, url)
    store = RuleStore()
    store.upgrade()
    assert store.url == url
    assert (tmp_path / "from-env.db").exists()
    store.close()


def test_lost_connection_and_integrity_errors_are_translated() -> None:
    db = Database("postgresql://u:pw@h/db")
    lost = sa.exc.OperationalError(
        "SELECT 1", {}, Exception("server closed the connection"), connection_invalidated=True
    )
    assert isinstance(db.translate(lost), StoreUnavailableError)
    duplicate = sa.exc.IntegrityError("INSERT", {}, Exception("duplicate key value"))
    conflict = db.translate(duplicate)
    assert isinstance(conflict, ConflictError)
    assert "postgresql://u:***@h/db" in str(conflict) and "duplicate key value" in str(conflict)


def test_an_engine_can_be_passed_in(sqlite_url: str, apply_rule: ApplyRule) -> None:
    engine = sa.create_engine(sqlite_url)
    store = RuleStore(engine=engine)
    store.upgrade()
    assert apply_rule(store).status == "created"
    assert store.engine is engine
    engine.dispose()
