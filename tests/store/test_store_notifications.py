"""Notification bookkeeping on SQLite and Postgres: delivery records, the inbox, recipient preferences."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa

from rule_compiler.errors import StoreError
from rule_compiler.runtime.dispatch_plan import delivery_key
from rule_compiler.store import RuleStore
from rule_compiler.store import inbox as box
from rule_compiler.store import notifications as n
from rule_compiler.store import preferences as prefs_store
from rule_compiler.store.preferences import Preferences
from rule_compiler.store.tables import notification_deliveries, notification_inbox

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(hours=9)
MESSAGE = {"subject": "VIP order 42", "body": "Order 42 totals 1,200 EUR."}
T = TypeVar("T")


@pytest.fixture
def engine(store: RuleStore) -> Iterator[sa.Engine]:
    yield store.engine


def delivery(
    occurrence: str = "run-1",
    *,
    channel: str = "email",
    recipient: str = "ann@example.com",
    org: str = "acme",
) -> n.NotificationDelivery:
    return n.NotificationDelivery(
        idempotency_key=delivery_key(
            "rule-1", occurrence, "tell", "[42]", channel=channel, recipient=recipient
        ),
        organization=org,
        rule_id="rule-1",
        action_id="tell",
        occurrence_id=occurrence,
        row_key="[42]",
        channel=channel,
        recipient=recipient,
    )


def row_count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def in_threads(count: int, work: Callable[[], T]) -> list[T]:
    """Run ``work`` in ``count`` threads released at the same moment; every result (errors re-raised)."""
    barrier = threading.Barrier(count)
    results: list[T] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait()
        try:
            result = work()
        except BaseException as exc:
            with lock:
                errors.append(exc)
            return
        with lock:
            results.append(result)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]
    return results


# --- sending now ----------------------------------------------------------------------------------


def test_attempts_count_across_retries_and_a_sent_key_is_never_sent_again(engine: sa.Engine) -> None:
    d = delivery()
    assert n.start_delivery(engine, d, now=NOW, message=MESSAGE) == 1
    n.finish_delivery(engine, d.idempotency_key, status="retrying", now=NOW, error="SMTP 451")
    row = n.get_delivery(engine, d.idempotency_key)
    assert row is not None and (row.status, row.attempts, row.error) == ("retrying", 1, "SMTP 451")
    assert row.message == MESSAGE and row.sent_at is None

    assert n.start_delivery(engine, d, now=NOW + dt.timedelta(minutes=5)) == 2
    n.finish_delivery(engine, d.idempotency_key, status="sent", now=LATER)
    row = n.get_delivery(engine, d.idempotency_key)
    assert row is not None
    assert (row.status, row.attempts, row.sent_at, row.error, row.message) == ("sent", 2, LATER, None, None)
    assert row.created_at == NOW and row.delivery == d

    assert n.start_delivery(engine, d, now=LATER) is None
    assert (
        n.start_delivery(engine, d, now=LATER, status="deferred", message=MESSAGE, deliver_after=LATER)
        is None
    )
    n.finish_delivery(engine, d.idempotency_key, status="failed", now=LATER, error="late")
    assert n.get_delivery(engine, d.idempotency_key).status == "sent"  # type: ignore[union-attr]
    assert row_count(engine, notification_deliveries) == 1


def test_a_failed_delivery_may_be_attempted_again_and_errors_are_truncated(engine: sa.Engine) -> None:
    d = delivery()
    assert n.start_delivery(engine, d, now=NOW) == 1
    n.finish_delivery(engine, d.idempotency_key, status="failed", now=NOW, error="x" * 5_000)
    row = n.get_delivery(engine, d.idempotency_key)
    assert row is not None and row.status == "failed" and row.error == "x" * 2_000
    assert n.start_delivery(engine, d, now=LATER) == 2  # a cleared task tries once more
    assert n.get_delivery(engine, d.idempotency_key).status == "sending"  # type: ignore[union-attr]


def test_concurrent_starts_of_one_key_make_one_row_and_distinct_attempts(engine: sa.Engine) -> None:
    d = delivery()
    results = in_threads(6, lambda: n.start_delivery(engine, d, now=NOW, message=MESSAGE))
    assert sorted(r for r in results if r is not None) == [1, 2, 3, 4, 5, 6]
    assert row_count(engine, notification_deliveries) == 1
    assert n.get_delivery(engine, d.idempotency_key).attempts == 6  # type: ignore[union-attr]


def test_muted_is_recorded_once_and_never_sent(engine: sa.Engine) -> None:
    d = delivery(channel="slack", recipient="alerts")
    assert n.start_delivery(engine, d, now=NOW, status="muted", message=MESSAGE) == 0
    assert n.start_delivery(engine, d, now=NOW) is None
    row = n.get_delivery(engine, d.idempotency_key)
    assert row is not None and (row.status, row.attempts, row.sent_at) == ("muted", 0, None)


def test_a_retry_may_queue_a_delivery_whose_first_attempt_failed(engine: sa.Engine) -> None:
    d = delivery()
    assert n.start_delivery(engine, d, now=NOW) == 1
    n.finish_delivery(engine, d.idempotency_key, status="retrying", now=NOW, error="timeout")
    # Quiet hours began before the retry: it is queued with the message, keeping the attempt count.
    assert n.start_delivery(engine, d, now=NOW, status="deferred", message=MESSAGE, deliver_after=LATER) == 0
    row = n.get_delivery(engine, d.idempotency_key)
    assert row is not None
    assert (row.status, row.attempts, row.deliver_after, row.message) == ("deferred", 1, LATER, MESSAGE)


# --- deferred: the dispatcher ---------------------------------------------------------------------


def test_deferred_is_due_after_its_time_and_claimed_exactly_once(engine: sa.Engine) -> None:
    first, second = delivery("run-1"), delivery("run-2")
    assert (
        n.start_delivery(engine, second, now=NOW, status="deferred", message=MESSAGE, deliver_after=LATER)
        == 0
    )
    earlier = LATER - dt.timedelta(hours=1)
    assert (
        n.start_delivery(engine, first, now=NOW, status="deferred", message=MESSAGE, deliver_after=earlier)
        == 0
    )
    # A retried task queues nothing twice and does not send a queued message itself.
    assert (
        n.start_delivery(engine, first, now=NOW, status="deferred", message=MESSAGE, deliver_after=LATER)
        is None
    )
    assert n.start_delivery(engine, first, now=LATER) is None

    assert n.due_deliveries(engine, earlier - dt.timedelta(seconds=1)) == []
    assert n.claim_due(engine, first.idempotency_key, NOW) is None  # not due yet
    due = n.due_deliveries(engine, LATER)
    assert [r.idempotency_key for r in due] == [first.idempotency_key, second.idempotency_key]
    assert due[0].message == MESSAGE and due[0].deliver_after == earlier

    claims = in_threads(4, lambda: n.claim_due(engine, first.idempotency_key, LATER))
    assert sorted(claims, key=lambda c: c is None) == [1, None, None, None]
    assert [r.idempotency_key for r in n.due_deliveries(engine, LATER)] == [second.idempotency_key]
    n.finish_delivery(engine, first.idempotency_key, status="sent", now=LATER)
    assert n.claim_due(engine, first.idempotency_key, LATER) is None
    assert n.get_delivery(engine, first.idempotency_key).status == "sent"  # type: ignore[union-attr]


def test_only_a_failed_delivery_that_kept_its_message_is_claimed_for_redelivery_once(
    engine: sa.Engine,
) -> None:
    kept, bare = delivery("run-1"), delivery("run-2")
    assert n.start_delivery(engine, kept, now=NOW, message=MESSAGE) == 1  # the message kept until sent
    assert n.start_delivery(engine, bare, now=NOW) == 1
    assert n.claim_redelivery(engine, kept.idempotency_key, NOW) is None  # sending: not failed yet
    for item in (kept, bare):
        n.finish_delivery(engine, item.idempotency_key, status="failed", now=NOW, error="SMTP down")
    assert n.get_delivery(engine, kept.idempotency_key).message == MESSAGE  # type: ignore[union-attr]
    assert n.claim_redelivery(engine, bare.idempotency_key, LATER) is None  # nothing to send again

    claims = in_threads(4, lambda: n.claim_redelivery(engine, kept.idempotency_key, LATER))
    assert sorted(claims, key=lambda c: c is None) == [2, None, None, None]
    n.finish_delivery(engine, kept.idempotency_key, status="sent", now=LATER)
    row = n.get_delivery(engine, kept.idempotency_key)
    assert row is not None and (row.status, row.attempts, row.message) == ("sent", 2, None)
    assert n.claim_redelivery(engine, kept.idempotency_key, LATER) is None  # a sent one never again


def test_a_failed_dispatch_is_requeued_with_its_message(engine: sa.Engine) -> None:
    d = delivery()
    n.start_delivery(engine, d, now=NOW, status="deferred", message=MESSAGE, deliver_after=NOW)
    assert n.claim_due(engine, d.idempotency_key, NOW) == 1
    retry_at = NOW + dt.timedelta(minutes=10)
    assert n.requeue_delivery(engine, d.idempotency_key, deliver_after=retry_at, now=NOW, error="SMTP 421")
    row = n.get_delivery(engine, d.idempotency_key)
    assert row is not None
    assert (row.status, row.deliver_after, row.error, row.message) == (
        "deferred",
        retry_at,
        "SMTP 421",
        MESSAGE,
    )
    assert n.claim_due(engine, d.idempotency_key, retry_at) == 2
    # Rows sent now (never queued) are not the dispatcher's to requeue.
    direct = delivery("run-9")
    n.start_delivery(engine, direct, now=NOW, message=MESSAGE)
    assert not n.requeue_delivery(engine, direct.idempotency_key, deliver_after=retry_at, now=NOW)


# --- digests --------------------------------------------------------------------------------------


def test_digest_rows_are_batched_per_recipient_and_channel_once_due(engine: sa.Engine) -> None:
    def queue(d: n.NotificationDelivery, when: dt.datetime, subject: str) -> None:
        message = {"subject": subject, "body": "..."}
        assert n.start_delivery(engine, d, now=NOW, status="digest", message=message, deliver_after=when) == 0

    queue(delivery("r1"), LATER, "a1")
    queue(delivery("r2"), LATER, "a2")
    queue(delivery("r3", channel="in_app", recipient="ann@example.com"), LATER, "a-inbox")
    queue(delivery("r4", recipient="bob@example.com"), LATER + dt.timedelta(days=1), "b1")  # tomorrow's
    queue(delivery("r5", org="globex"), LATER, "g1")
    assert n.start_delivery(engine, delivery("r1"), now=NOW) is None  # queued: never sent directly

    assert n.digest_recipients(engine, LATER - dt.timedelta(seconds=1)) == []
    batches = n.digest_recipients(engine, LATER)
    summary = [
        (b.organization, b.recipient, b.channel, [(r.message or {}).get("subject") for r in b.rows])
        for b in batches
    ]
    assert summary == [
        ("acme", "ann@example.com", "email", ["a1", "a2"]),
        ("acme", "ann@example.com", "in_app", ["a-inbox"]),
        ("globex", "ann@example.com", "email", ["g1"]),
    ]
    assert n.mark_digested(engine, batches[0].keys, LATER) == 2
    assert n.mark_digested(engine, batches[0].keys, LATER) == 0  # exactly once
    assert n.mark_digested(engine, [], LATER) == 0
    row = n.get_delivery(engine, delivery("r1").idempotency_key)
    assert row is not None and (row.status, row.sent_at, row.message) == ("digested", LATER, None)
    remaining = n.digest_recipients(engine, LATER + dt.timedelta(days=1))
    assert [(b.organization, b.recipient, b.channel) for b in remaining] == [
        ("acme", "ann@example.com", "in_app"),
        ("acme", "bob@example.com", "email"),
        ("globex", "ann@example.com", "email"),
    ]


# --- listing and analytics ------------------------------------------------------------------------


def test_list_deliveries_filters_and_stats_count_every_record(engine: sa.Engine) -> None:
    sent, muted, deferred = delivery("r1"), delivery("r2", channel="slack", recipient="ops"), delivery("r3")
    n.start_delivery(engine, sent, now=NOW)
    n.finish_delivery(engine, sent.idempotency_key, status="sent", now=NOW)
    n.start_delivery(engine, muted, now=NOW, status="muted")
    n.start_delivery(engine, deferred, now=NOW, status="deferred", message=MESSAGE, deliver_after=LATER)
    n.start_delivery(engine, delivery("r4", org="globex"), now=NOW)

    assert [r.occurrence_id for r in n.list_deliveries(engine)] == ["r4", "r3", "r2", "r1"]
    assert [r.occurrence_id for r in n.list_deliveries(engine, organization="acme", channel="email")] == [
        "r3",
        "r1",
    ]
    assert [r.occurrence_id for r in n.list_deliveries(engine, status="muted")] == ["r2"]
    assert [r.occurrence_id for r in n.list_deliveries(engine, recipient="ops", rule_id="rule-1")] == ["r2"]
    assert [r.occurrence_id for r in n.list_deliveries(engine, limit=2, offset=1)] == ["r3", "r2"]
    assert n.list_deliveries(engine, rule_id="other") == []
    assert n.delivery_stats(engine, organization="acme") == {
        "email": {"deferred": 1, "sent": 1},
        "slack": {"muted": 1},
    }
    assert n.delivery_stats(engine)["email"] == {"deferred": 1, "sending": 1, "sent": 1}
    with pytest.raises(ValueError, match="unknown delivery status"):
        n.list_deliveries(engine, status="lost")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"idempotency_key": "not-a-key"}, "64 lowercase hex"),
        ({"channel": "pager"}, "unknown notification channel 'pager'"),
        ({"recipient": "x" * 321}, "at most 320"),
    ],
)
def test_bad_deliveries_are_refused_before_any_write(
    engine: sa.Engine, change: dict[str, Any], message: str
) -> None:
    bad = n.NotificationDelivery(**{**delivery().__dict__, **change})
    with pytest.raises(ValueError, match=message):
        n.start_delivery(engine, bad, now=NOW)
    with pytest.raises(ValueError, match="needs the rendered message and deliver_after"):
        n.start_delivery(engine, delivery(), now=NOW, status="deferred", message=MESSAGE)
    assert row_count(engine, notification_deliveries) == 0


def test_an_unmigrated_store_says_how_to_fix_it(sqlite_url: str) -> None:
    bare = RuleStore(sqlite_url)
    with pytest.raises(StoreError, match="rule-compiler db upgrade"):
        n.list_deliveries(bare.engine)
    bare.close()


# --- the inbox ------------------------------------------------------------------------------------


def add(engine: sa.Engine | sa.Connection, key: str, *, recipient: str = "ann", org: str = "acme") -> bool:
    return box.add_inbox_message(
        engine, idempotency_key=key, organization=org, recipient=recipient, rule_id="rule-1",
        subject=f"subject {key[:4]}", body="body", now=NOW,
    )  # fmt: skip


def key(i: int) -> str:
    return f"{i:064x}"


def test_inbox_messages_land_exactly_once(engine: sa.Engine) -> None:
    assert add(engine, key(1)) is True
    assert add(engine, key(1)) is False
    assert sorted(in_threads(5, lambda: add(engine, key(2)))) == [False, False, False, False, True]
    assert row_count(engine, notification_inbox) == 2
    messages = box.list_inbox(engine, organization="acme", recipient="ann")
    assert [m.idempotency_key for m in messages] == [key(2), key(1)]
    assert messages[0].read_at is None and messages[0].created_at == NOW


def test_inbox_insert_joins_the_callers_transaction(engine: sa.Engine) -> None:
    with pytest.raises(RuntimeError), engine.begin() as conn:
        assert add(conn, key(1)) is True
        assert add(conn, key(1)) is False  # a duplicate does not abort the transaction (Postgres)
        raise RuntimeError("the delivery record failed")
    assert row_count(engine, notification_inbox) == 0


def test_mark_read_touches_only_that_recipients_messages_in_that_org(engine: sa.Engine) -> None:
    for i, (org, recipient) in enumerate(
        [("acme", "ann"), ("acme", "ann"), ("globex", "ann"), ("acme", "bob")]
    ):
        add(engine, key(i), org=org, recipient=recipient)
    ids = {(m.organization, m.recipient, m.idempotency_key): m.id for m in _all_inbox(engine)}
    ann_first, bob, ann_globex = (
        ids[("acme", "ann", key(0))],
        ids[("acme", "bob", key(3))],
        ids[("globex", "ann", key(2))],
    )

    later = NOW + dt.timedelta(minutes=1)
    assert (
        box.mark_read(
            engine, organization="acme", recipient="ann", ids=[ann_first, bob, ann_globex], now=later
        )
        == 1
    )
    assert box.mark_read(engine, organization="acme", recipient="ann", ids=[], now=later) == 0
    assert [
        m.idempotency_key
        for m in box.list_inbox(engine, organization="acme", recipient="ann", unread_only=True)
    ] == [key(1)]
    assert box.mark_read(engine, organization="acme", recipient="ann", now=later) == 1
    assert box.mark_read(engine, organization="acme", recipient="ann", now=later) == 0
    assert box.count_unread(engine, organization="acme", recipient="ann") == 0
    assert box.count_unread(engine, organization="acme", recipient="bob") == 1
    assert box.count_unread(engine, organization="globex", recipient="ann") == 1
    read = box.list_inbox(engine, organization="acme", recipient="ann")
    assert {m.read_at for m in read} == {later}


def _all_inbox(engine: sa.Engine) -> list[box.InboxMessage]:
    return [
        m
        for org, recipient in [("acme", "ann"), ("globex", "ann"), ("acme", "bob")]
        for m in box.list_inbox(engine, organization=org, recipient=recipient)
    ]


# --- preferences ----------------------------------------------------------------------------------


def test_preferences_upsert_read_back_and_delete(engine: sa.Engine) -> None:
    assert prefs_store.get_preferences(engine, "acme", "ann@example.com") is None
    prefs = Preferences(
        organization="acme",
        recipient="ann@example.com",
        muted_channels=frozenset({"slack", "email"}),
        quiet_start=dt.time(22),
        quiet_end=dt.time(7, 30),
        timezone="Europe/Berlin",
        digest="daily",
        digest_hour=9,
    )
    prefs_store.set_preferences(engine, prefs, actor="ann", now=NOW)
    assert prefs_store.get_preferences(engine, "acme", "ann@example.com") == prefs
    assert prefs_store.get_preferences(engine, "globex", "ann@example.com") is None

    plain = Preferences(organization="acme", recipient="ann@example.com", timezone="Asia/Tokyo")
    prefs_store.set_preferences(engine, plain, actor="admin", now=LATER)
    assert prefs_store.get_preferences(engine, "acme", "ann@example.com") == plain
    with engine.connect() as conn:
        stored = conn.execute(
            sa.text("SELECT updated_by, muted_channels_json FROM notification_preferences")
        ).all()
    assert [tuple(r) for r in stored] == [("admin", "[]")]

    assert prefs_store.delete_preferences(engine, "acme", "ann@example.com") is True
    assert prefs_store.delete_preferences(engine, "acme", "ann@example.com") is False
    assert prefs_store.get_preferences(engine, "acme", "ann@example.com") is None
