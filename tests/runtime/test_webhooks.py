"""Webhook deliveries against a real local receiver that verifies signatures independently."""

from __future__ import annotations

import datetime as dt
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from rule_engine.hooks.webhook_client import send_webhook
from rule_engine.operators.webhooks import RetryAfterPolicy, WebhookOperator

from rule_compiler.errors import PermanentActionError
from rule_compiler.runtime.idempotency import idempotency_key
from rule_compiler.runtime.webhook_requests import (
    MAX_RESPONSE_BYTES,
    Delivery,
    WebhookRequest,
    WebhookRetryableError,
    base_url_from_connection,
    build_request,
    check_headers,
    classify_response,
    delivery_row,
    parse_retry_after,
    parse_secrets,
    signature_headers,
)
from rule_compiler.store import RuleStore
from tests.security.receiver import Receiver, Reply, running_receiver, verify_signature

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OLD_SECRET = "whsec_" + "c2VjcmV0LW9mLXRoZS1vbGQta2V5LTEyMzQ1Njc4"
NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    monkeypatch.setenv("AUTOMATION_WEBHOOK_ALLOW_HOSTS", "127.0.0.1")
    with running_receiver(SECRET) as running:
        yield running


@pytest.fixture
def operator(tmp_path: Path) -> Iterator[WebhookOperator]:
    op = WebhookOperator(
        task_id="crm",
        spec_params={"rule_id": "acme/test", "kind": "call_webhook", "connection": "crm_api"},
        spec_hash="x",
        retries=3,
    )
    store = RuleStore(f"sqlite:///{tmp_path / 'store.db'}")
    op.__dict__["store"] = store
    store.upgrade()  # the delivery ledger is a rule store table (migration 0002)
    yield op
    store.close()


def _delivery(row: str | None = "[1]") -> Delivery:
    key = idempotency_key("acme/test", "manual__1", "crm", row)
    return Delivery(key, "acme/test", "crm", "manual__1", row)


def _request(receiver: Receiver, body: str = '{"order_id":"1"}') -> WebhookRequest:
    return WebhookRequest(
        "POST", f"{receiver.base_url}/hooks/orders", {"Content-Type": "application/json"}, body
    )


def test_signature_verifies_with_an_independent_implementation() -> None:
    key = idempotency_key("acme/test", "manual__1", "crm", "[1]")
    headers = signature_headers([SECRET, OLD_SECRET], key, dt.datetime.now(dt.UTC), '{"a":1}')
    assert headers["webhook-id"] == key and len(key) == 64
    assert headers["webhook-signature"].count("v1,") == 2  # one per secret during rotation
    assert verify_signature(SECRET, headers, b'{"a":1}')
    assert verify_signature(OLD_SECRET, headers, b'{"a":1}')
    assert not verify_signature(SECRET, headers, b'{"a":2}')
    assert not verify_signature("whsec_" + "QUFBQUFBQUFBQUFBQUFBQQ==", headers, b'{"a":1}')
    assert signature_headers([], key, NOW, "") == {}
    with pytest.raises(PermanentActionError) as caught:
        signature_headers(["whsec_%%%notbase64"], key, NOW, "")
    assert "notbase64" not in str(caught.value)


def test_request_is_rendered_in_the_sandbox_with_a_canonical_body() -> None:
    params = {
        "method": "post",
        "path": "/hooks/{{ record.kind }}",
        "headers": {"X-Order": "{{ record.id }}"},
        "body": {"total": "{{ record.total }}", "order_id": "{{ record.id }}", "n": 3},
    }
    request = build_request(
        params,
        {"record": {"id": 7, "total": "12.50", "kind": "orders"}},
        base_url="https://api.example.com/v1",
    )
    assert request.method == "POST"
    assert request.url == "https://api.example.com/v1/hooks/orders"
    assert request.headers == {"X-Order": "7", "Content-Type": "application/json"}
    assert request.body == '{"n":3,"order_id":"7","total":"12.50"}'
    with pytest.raises(PermanentActionError):
        check_headers({"webhook-signature": "v1,forged"})
    with pytest.raises(PermanentActionError):
        check_headers({"Host": "evil.example"})
    with pytest.raises(PermanentActionError):
        check_headers({"X-A": "1\r\nX-B: 2"})
    with pytest.raises(Exception, match=r"unsafe|undefined|access"):
        build_request({"body": "{{ ''.__class__ }}"}, {}, base_url="https://api.example.com")


def test_connection_base_urls_and_secrets() -> None:
    assert base_url_from_connection(host="https://api.example.com/v1") == "https://api.example.com/v1"
    assert (
        base_url_from_connection(host="api.example.com", schema="https", port=8443)
        == "https://api.example.com:8443"
    )
    assert base_url_from_connection(host="api.example.com", schema="crm") == "https://api.example.com"
    assert base_url_from_connection(host="http://127.0.0.1", port=8080) == "http://127.0.0.1:8080"
    with pytest.raises(PermanentActionError):
        base_url_from_connection(host=None, conn_id="crm_api")
    assert parse_secrets(f" {SECRET}  {OLD_SECRET} ") == [SECRET, OLD_SECRET]
    assert parse_secrets(None) == []


def test_classification() -> None:
    assert classify_response(200, None, NOW) is None and classify_response(204, None, NOW) is None
    for status in (500, 502, 503, 408):
        assert isinstance(classify_response(status, None, NOW), WebhookRetryableError)
    limited = classify_response(429, "30", NOW)
    assert isinstance(limited, WebhookRetryableError) and limited.retry_after == 30.0
    for status in (301, 302, 307, 400, 401, 403, 404, 410, 422):
        error = classify_response(status, None, NOW)
        assert isinstance(error, PermanentActionError) and not isinstance(error, WebhookRetryableError)
    assert parse_retry_after("Fri, 20 Nov 2026 12:01:00 GMT", NOW) == 60.0
    assert parse_retry_after("999999", NOW) == 3_600.0
    assert parse_retry_after("soon", NOW) is None


def test_same_key_twice_is_delivered_once(receiver: Receiver, operator: WebhookOperator) -> None:
    delivery = _delivery()
    assert operator._deliver(delivery, _request(receiver), [SECRET]) == ("delivered", 200)
    assert operator._deliver(delivery, _request(receiver), [SECRET]) == ("already_delivered", None)
    assert len(receiver.requests) == 1 and receiver.requests[0]["verified"]
    assert list(receiver.deliveries) == [delivery.idempotency_key]
    row = delivery_row(operator.store.engine, delivery.idempotency_key)
    assert row is not None and (row["status"], row["attempts"], row["response_status"]) == (
        "delivered",
        1,
        200,
    )
    assert row["response_body"] == '{"ok": true}'


def test_receiver_deduplicates_a_resend_with_the_same_id(receiver: Receiver) -> None:
    """Two processes that both send (the ledger lost a race) still produce one delivery."""
    key = _delivery().idempotency_key
    for _ in range(2):
        headers = {
            **_request(receiver).headers,
            **signature_headers([SECRET], key, dt.datetime.now(dt.UTC), "{}"),
        }
        assert (
            send_webhook(method="POST", url=f"{receiver.base_url}/h", headers=headers, body="{}").status
            == 200
        )
    assert len(receiver.requests) == 2 and len(receiver.deliveries) == 1


def test_server_error_then_success(receiver: Receiver, operator: WebhookOperator) -> None:
    receiver.replies.append(Reply(500, b"oops"))
    delivery = _delivery()
    with pytest.raises(WebhookRetryableError):
        operator._deliver(delivery, _request(receiver), [SECRET])
    row = delivery_row(operator.store.engine, delivery.idempotency_key)
    assert row is not None and (row["status"], row["attempts"], row["response_status"]) == (
        "retrying",
        1,
        500,
    )
    assert operator._deliver(delivery, _request(receiver), [SECRET]) == ("delivered", 200)
    ids = {r["headers"]["webhook-id"] for r in receiver.requests}
    assert ids == {delivery.idempotency_key} and len(receiver.requests) == 2  # the same id on the retry
    assert len(receiver.deliveries) == 1
    row = delivery_row(operator.store.engine, delivery.idempotency_key)
    assert row is not None and (row["status"], row["attempts"]) == ("delivered", 2)


def test_client_error_is_permanent(receiver: Receiver, operator: WebhookOperator) -> None:
    receiver.replies.append(Reply(400, b'{"error": "bad order"}'))
    delivery = _delivery()
    with pytest.raises(PermanentActionError, match="HTTP 400") as caught:
        operator._deliver(delivery, _request(receiver), [SECRET])
    assert not isinstance(caught.value, WebhookRetryableError)
    row = delivery_row(operator.store.engine, delivery.idempotency_key)
    assert row is not None and row["status"] == "failed" and row["response_body"] == '{"error": "bad order"}'


def test_too_many_requests_honours_retry_after(receiver: Receiver, operator: WebhookOperator) -> None:
    receiver.replies.append(Reply(429, b"slow down", {"Retry-After": "7"}))
    with pytest.raises(WebhookRetryableError) as caught:
        operator._deliver(_delivery(), _request(receiver), [SECRET])
    assert caught.value.retry_after == 7.0
    decision = RetryAfterPolicy().evaluate(caught.value, try_number=1, max_tries=3)
    assert decision.retry_delay == dt.timedelta(seconds=7)
    assert RetryAfterPolicy().evaluate(WebhookRetryableError("x"), 1, 3).retry_delay is None
    assert operator.retry_policy is not None


def test_oversize_response_is_truncated(receiver: Receiver, operator: WebhookOperator) -> None:
    receiver.replies.append(Reply(200, b"x" * (4 * MAX_RESPONSE_BYTES)))
    response = send_webhook(method="POST", url=f"{receiver.base_url}/big", headers={}, body="{}")
    assert response.status == 200 and response.truncated and len(response.body) == MAX_RESPONSE_BYTES
    receiver.replies.append(Reply(200, b"y" * (2 * MAX_RESPONSE_BYTES)))
    delivery = _delivery("[2]")
    operator._deliver(delivery, _request(receiver), [SECRET])
    row = delivery_row(operator.store.engine, delivery.idempotency_key)
    assert row is not None and len(row["response_body"]) <= 1_001


def test_redirect_is_refused_and_not_followed(receiver: Receiver, operator: WebhookOperator) -> None:
    receiver.replies.append(Reply(302, b"", {"Location": f"{receiver.base_url}/elsewhere"}))
    with pytest.raises(PermanentActionError, match="302"):
        operator._deliver(_delivery(), _request(receiver), [SECRET])
    assert [r["path"] for r in receiver.requests] == ["/hooks/orders"]


def test_timeout_is_retryable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOMATION_WEBHOOK_ALLOW_HOSTS", "127.0.0.1")
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    accepted: list[Any] = []
    thread = threading.Thread(target=lambda: accepted.append(silent.accept()), daemon=True)
    thread.start()
    try:
        with pytest.raises(WebhookRetryableError, match="timed out"):
            send_webhook(
                method="POST",
                url=f"http://127.0.0.1:{silent.getsockname()[1]}/",
                headers={},
                body="{}",
                timeout=1,
            )
    finally:
        for conn, _ in accepted:
            conn.close()
        silent.close()


def test_connection_refused_is_retryable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOMATION_WEBHOOK_ALLOW_HOSTS", "127.0.0.1")
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with pytest.raises(WebhookRetryableError, match="connection failed"):
        send_webhook(method="POST", url=f"http://127.0.0.1:{port}/", headers={}, body="{}")


def test_ledger_table_lives_in_the_rule_store(operator: WebhookOperator, receiver: Receiver) -> None:
    operator._deliver(_delivery("[3]"), _request(receiver), [SECRET])
    assert sa.inspect(operator.store.engine).has_table("rule_engine_webhook_deliveries")
