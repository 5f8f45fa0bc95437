"""`rule-compiler webhooks deliveries` and `webhooks redeliver` against the loopback receiver.

A real `dag.test()` run fails its deliveries (the receiver answers 400); the ledger keeps each
request without signature or secret; after the receiver is fixed and the connection's secret
rotated, `redeliver` sends the stored request again with the same `webhook-id`, signed with the
current secret, and records the attempt.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from rule_engine.console_script import main

from rule_compiler.runtime.webhook_requests import DELIVERY_TABLE, deliveries, delivery_row
from rule_compiler.store import RuleStore
from tests.airflow.conftest import apply_rules, dagbag
from tests.airflow.test_webhook_runs import DAG_ID, RULE
from tests.security.receiver import Receiver, Reply, running_receiver

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]
OLD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NEW_SECRET = "whsec_" + "bmV3LXNpZ25pbmcta2V5LWFmdGVyLXJvdGF0aW9u"
SECRET_TEXTS = [s.removeprefix("whsec_") for s in (OLD_SECRET, NEW_SECRET)]


def _connect(monkeypatch: pytest.MonkeyPatch, receiver: Receiver, secret: str) -> None:
    connection = {"conn_type": "http", "host": receiver.base_url, "password": secret}
    monkeypatch.setenv("AIRFLOW_CONN_CRM_API", json.dumps(connection))
    receiver.secret = secret


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    monkeypatch.setenv("AUTOMATION_WEBHOOK_ALLOW_HOSTS", "127.0.0.1")
    with running_receiver(OLD_SECRET) as running:
        _connect(monkeypatch, running, OLD_SECRET)
        yield running


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_store(request: pytest.FixtureRequest) -> RuleStore:
    """The rule store (the CLI finds it through AUTOMATION_STORE_URL) on SQLite, then on Postgres."""
    store: RuleStore = request.getfixturevalue("store" if request.param == "sqlite" else "pg_store")
    return store


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()  # only what the command prints
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _rows(store: RuleStore) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(f"SELECT * FROM {DELIVERY_TABLE}"))]


def _no_secret(text: str) -> None:
    assert not any(secret in text for secret in SECRET_TEXTS)
    assert "webhook-signature" not in text.lower() and "v1," not in text


@pytest.mark.usefixtures("app_db")
def test_failed_deliveries_are_listed_and_redelivered_with_the_same_id(
    store: RuleStore,
    receiver: Receiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from airflow.utils.state import DagRunState

    path = tmp_path / "push-big-paid-orders.yaml"
    path.write_text(yaml.safe_dump(RULE))
    apply_rules(store, path)
    receiver.replies.extend(Reply(400, b'{"error": "unknown order"}') for _ in range(100))

    dag_run = dagbag().dags[DAG_ID].test()

    assert dag_run.state == DagRunState.FAILED
    failed = _rows(store)
    assert failed and {r["status"] for r in failed} == {"failed"}
    first_ids = [r["headers"]["webhook-id"] for r in receiver.requests]
    assert sorted(first_ids) == sorted(r["idempotency_key"] for r in failed)
    for failure in failed:  # the request is kept for redelivery, without signature or secret
        assert failure["organization"] == "acme"
        stored = json.loads(failure["request_json"])
        assert set(stored) == {"method", "headers", "body", "connection", "path"}
        assert (stored["method"], stored["connection"], stored["path"]) == (
            "POST",
            "crm_api",
            "/hooks/orders",
        )
        assert not any(name.lower().startswith("webhook-") for name in stored["headers"])
        assert json.loads(stored["body"])["source"] == "rules"
        _no_secret(failure["request_json"])

    code, listed = _cli(capsys, "webhooks", "deliveries", "--status", "failed")
    assert code == 0
    assert all(r["idempotency_key"][:12] in listed for r in failed) and "HTTP 400" in listed
    code, as_json = _cli(capsys, "webhooks", "deliveries", "--org", "acme", "--json")
    assert code == 0
    listed_json = json.loads(as_json)
    assert {d["key"] for d in listed_json} == {r["idempotency_key"] for r in failed}
    assert all(
        d["redeliverable"] and d["status"] == "failed" and d["response_status"] == 400 for d in listed_json
    )
    assert json.loads(_cli(capsys, "webhooks", "deliveries", "--org", "globex", "--json")[1]) == []
    assert json.loads(_cli(capsys, "webhooks", "deliveries", "--rule", "acme/other", "--json")[1]) == []
    by_rule = _cli(capsys, "webhooks", "deliveries", "--rule", "acme/push-big-paid-orders", "--limit", "2")[1]
    assert len(by_rule.splitlines()) == 3  # header and two rows
    assert json.loads(_cli(capsys, "webhooks", "deliveries", "--status", "delivered", "--json")[1]) == []

    # The receiver is fixed and the signing secret rotated; one delivery is sent again by key prefix.
    receiver.replies.clear()
    _connect(monkeypatch, receiver, NEW_SECRET)
    target = failed[0]
    key = target["idempotency_key"]
    seen_before = len(receiver.requests)

    code, out = _cli(capsys, "webhooks", "redeliver", key[:16])

    assert code == 0, out
    assert "delivered" in out and key in out
    _no_secret(out)
    (resent,) = receiver.requests[seen_before:]
    assert resent["verified"] and resent["headers"]["webhook-id"] == key  # the same id, the new secret
    assert resent["path"] == "/hooks/orders"
    assert resent["body"] == json.loads(target["request_json"])["body"].encode()
    assert list(receiver.deliveries) == [key]
    row = delivery_row(store.engine, key)
    assert row is not None and (row["status"], row["attempts"], row["response_status"]) == (
        "delivered",
        2,
        200,
    )
    assert {r["status"] for r in _rows(store) if r["idempotency_key"] != key} == {"failed"}

    # Already delivered: refused without --force; with it, sent once more under the same id.
    code, out = _cli(capsys, "webhooks", "redeliver", key)
    assert code == 2 and "already delivered" in out and "--force" in out
    assert len(receiver.requests) == seen_before + 1
    code, out = _cli(capsys, "webhooks", "redeliver", key, "--force")
    assert code == 0, out
    assert receiver.requests[-1]["headers"]["webhook-id"] == key and receiver.requests[-1]["verified"]
    row = delivery_row(store.engine, key)
    assert row is not None and (row["status"], row["attempts"]) == ("delivered", 3)
    _no_secret(json.dumps(_rows(store), default=str))


def _insert_delivery(store: RuleStore, key: str, *, request: dict[str, Any] | None, status: str) -> None:
    import datetime as dt

    with store.engine.begin() as conn:
        conn.execute(
            deliveries.insert().values(
                idempotency_key=key,
                rule_id="acme/push",
                action_id="crm",
                occurrence_id="manual__1",
                row_key="[1]",
                status=status,
                attempts=1,
                response_status=500 if status != "delivered" else 200,
                updated_at=dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC),
                organization="acme",
                request_json=json.dumps(request) if request is not None else None,
            )
        )


def test_a_redelivery_the_receiver_rejects_again_is_recorded(
    any_store: RuleStore, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    key = "a" * 64
    request = {"method": "POST", "headers": {}, "body": '{"n":1}', "connection": "crm_api", "path": "/h"}
    _insert_delivery(any_store, key, request=request, status="retrying")
    receiver.replies.append(Reply(503, b"still down"))

    code, out = _cli(capsys, "webhooks", "redeliver", key)

    assert code == 1 and "HTTP 503" in out and "retrying" in out
    assert receiver.requests[0]["verified"] and receiver.requests[0]["headers"]["webhook-id"] == key
    row = delivery_row(any_store.engine, key)
    assert row is not None and (row["status"], row["attempts"], row["response_status"]) == (
        "retrying",
        2,
        503,
    )


def test_unknown_keys_and_keys_without_a_stored_request_are_refused(
    any_store: RuleStore, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    _insert_delivery(any_store, "b" * 64, request=None, status="failed")  # recorded before requests were kept
    _insert_delivery(any_store, "c" * 63 + "1", request={"method": "POST", "url": "x"}, status="failed")
    _insert_delivery(any_store, "c" * 63 + "2", request={"method": "POST", "url": "x"}, status="failed")

    for key, message in [
        ("d" * 64, "no webhook delivery has the key"),
        ("dddd", "no webhook delivery has the key"),
        ("b" * 64, "no stored request"),
        ("c" * 12, "names several deliveries"),
    ]:
        code, out = _cli(capsys, "webhooks", "redeliver", key)
        assert code == 2 and message in out, (key, out)
    assert receiver.requests == []
    row = delivery_row(any_store.engine, "b" * 64)
    assert row is not None and row["attempts"] == 1  # a refusal records nothing


def test_an_unsigned_plain_url_call_is_redelivered_unsigned(
    store: RuleStore, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    key = "e" * 64
    url = f"{receiver.base_url}/open/hook?team=ops"
    request = {"method": "PUT", "headers": {"X-Team": "ops"}, "body": "{}", "connection": None, "url": url}
    _insert_delivery(store, key, request=request, status="failed")

    code, out = _cli(capsys, "webhooks", "redeliver", key[:8])

    assert code == 0, out
    (sent,) = receiver.requests
    assert (sent["method"], sent["path"], sent["headers"]["x-team"]) == ("PUT", "/open/hook?team=ops", "ops")
    assert not any(name.startswith("webhook-") for name in sent["headers"])  # no connection, no secret
