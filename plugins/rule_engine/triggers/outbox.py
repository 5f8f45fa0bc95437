"""The event trigger: one poller per watch turns new outbox rows into asset events.

A watch (``rule_compiler.events.watch``, ADR 0008) is a table plus the operations and, for updates,
the changed columns its rules listen to. Every event rule with that watch schedules on the watch's
asset, whose :class:`AssetWatcher` holds an :class:`OutboxEventTrigger` with the same arguments, so
Airflow keeps one trigger per watch however many rules share it. The trigger's reader keeps only the
events the watch takes: a change no rule of the watch listens to never becomes an asset event, so it
never starts a run. The trigger runs in **ack mode** of Airflow's shared streams: the producer reads
batches after the watch's durable cursor (``rule_compiler.events.reader``), the trigger turns each
batch into one trigger event (ids only), and the producer moves the durable cursor only when Airflow
has confirmed the asset event persisted. A read that passed only refused events yields a batch
without ids, which the trigger turns into nothing; once Airflow's stream has moved past it, the
cursor moves past those events too. A crash at any point restarts from the cursor: events are handed
on at least once; the actions' ledgers make their effects exactly once.

On Postgres the producer LISTENs on the outbox channel and wakes at once; it polls every
``poll_interval`` seconds as well (and only polls on SQLite).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Hashable, Sequence
from typing import Any

import sqlalchemy as sa
from airflow.triggers.base import BaseEventTrigger, TriggerEvent
from airflow.triggers.shared_stream import AdvanceItem, SharedStreamProducer

from rule_compiler.events.outbox_rows import NOTIFY_CHANNEL
from rule_compiler.events.reader import OutboxReader
from rule_compiler.events.watch import Watch, start_cursor
from rule_compiler.runtime.faults import faultpoint
from rule_engine.hooks import app_database

CLASSPATH = "rule_engine.triggers.outbox.OutboxEventTrigger"
DEFAULT_POLL_INTERVAL = 2.0
DEFAULT_BATCH_SIZE = 500


class OutboxEventTrigger(BaseEventTrigger):
    """Asset events for new outbox rows of ``table`` in the database of Airflow connection
    ``connection`` — of the operations ``events`` only (all by default) and, for updates, only when
    one of ``fields`` changed (any change by default)."""

    def __init__(
        self,
        *,
        connection: str,
        table: str,
        events: list[str] | None = None,
        fields: list[str] | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.watch = Watch.of(connection, table, events, fields)
        self.connection = connection
        self.table = table
        self.poll_interval = poll_interval
        self.batch_size = batch_size

    def serialize(self) -> tuple[str, dict[str, Any]]:
        # the plain watch serializes as before ADR 0008, so its existing trigger row is kept
        return CLASSPATH, {
            **self.watch.trigger_kwargs(),
            "poll_interval": self.poll_interval,
            "batch_size": self.batch_size,
        }

    def shared_stream_key(self) -> Hashable:
        """One stream (one reader, one cursor) per watch: triggers of different watches never share
        one, so none of them can move another's cursor or miss its events."""
        if self.watch.everything:
            return ("rule_engine_outbox", self.connection, self.table)
        return ("rule_engine_outbox", self.connection, self.table, self.watch.filter_text)

    @classmethod
    def create_shared_stream_producer(cls, kwargs: dict[str, Any]) -> SharedStreamProducer:
        return OutboxProducer(**kwargs)

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        async for payload in shared_stream:
            if payload is not None:  # None: only refused events were passed; nothing to hand on
                yield TriggerEvent(payload)  # type: ignore[no-untyped-call]

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Outside a shared stream (never in the triggerer, which uses ack mode): read, yield, then move
        the cursor when the consumer asks for the next event."""
        producer = OutboxProducer(**self.serialize()[1])
        try:
            async for payload, through in producer.open_stream():
                if payload is not None:
                    yield TriggerEvent(payload)  # type: ignore[no-untyped-call]
                await producer.commit(through)
        finally:
            await producer.aclose()


class OutboxProducer(SharedStreamProducer):
    """Reads one watch's events from the outbox after its durable cursor; moves the cursor on
    confirmed batches. Yields ``(payload, through)``; the payload is None for a batch that only
    passed events the watch refuses."""

    def __init__(
        self,
        *,
        connection: str,
        table: str,
        events: list[str] | None = None,
        fields: list[str] | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        batch_size: int = DEFAULT_BATCH_SIZE,
        engine: sa.Engine | None = None,
    ) -> None:
        self.connection = connection
        self.poll_interval = poll_interval
        self.watch = Watch.of(connection, table, events, fields)
        self.reader = OutboxReader(
            table,
            consumer=self.watch.consumer,
            batch_size=batch_size,
            takes=None if self.watch.everything else self.watch.takes,
        )
        self._engine = engine
        self._listener: Any = None

    async def open_stream(self) -> AsyncIterator[tuple[Any, Any]]:
        engine = await self._get_engine()
        await asyncio.to_thread(self._start, engine)
        self._listener = await _listen(engine)
        while True:
            before = self.reader.position
            batch = await asyncio.to_thread(self.reader.next_batch, engine)
            if batch is not None:
                faultpoint("outbox.after_read")
                yield (batch.payload(self.connection) if batch.event_ids else None), batch.through
            elif self.reader.position == before:
                await self._wait()

    def _start(self, engine: sa.Engine) -> None:
        """Create the watch's cursor on its first start (:func:`start_cursor`), then resume from it."""
        with engine.begin() as conn:
            start_cursor(conn, self.watch)
        self.reader.start(engine)

    async def advance(self, batch: Sequence[AdvanceItem]) -> None:
        """Move the cursor past a batch every subscriber accepted; otherwise fail the stream so it
        restarts from the cursor (redelivery) instead of skipping an event."""
        for item in batch:
            outcome = item.outcome
            if not outcome.is_clean:
                self.reader.rewind()
                raise RuntimeError(
                    f"outbox events through id {item.broker_payload} of '{self.reader.table}' were not "
                    f"confirmed (acked={outcome.acked}, failed={outcome.failed}, "
                    f"rejected={outcome.rejected}); restarting from the durable cursor"
                )
        faultpoint("outbox.after_emit")  # Airflow has the asset events; the cursor has not moved
        await self.commit(max(int(item.broker_payload) for item in batch))
        faultpoint("outbox.after_advance")

    async def commit(self, through: int) -> None:
        engine = await self._get_engine()
        await asyncio.to_thread(self.reader.commit, engine, through)

    async def aclose(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None

    async def _get_engine(self) -> sa.Engine:
        if self._engine is None:
            # the plugin's one connection seam; off the event loop (it reads the Airflow connection)
            self._engine = await asyncio.to_thread(app_database.engine_for, self.connection)
        return self._engine

    async def _wait(self) -> None:
        """Until a NOTIFY arrives (Postgres) or ``poll_interval`` passes."""
        if self._listener is None:
            await asyncio.sleep(self.poll_interval)
            return
        try:
            async for _ in self._listener.notifies(timeout=self.poll_interval, stop_after=1):
                pass
        except Exception:  # a lost LISTEN connection: fall back to polling, reconnect next time
            await self.aclose()
            await asyncio.sleep(self.poll_interval)
            self._listener = await _listen(await self._get_engine())


async def _listen(engine: sa.Engine) -> Any:
    """An autocommit psycopg connection LISTENing on the outbox channel (Postgres), else None."""
    if engine.dialect.name != "postgresql":
        return None
    import psycopg

    url = engine.url
    try:
        conn = await psycopg.AsyncConnection.connect(
            host=url.host,
            port=url.port or 5432,
            dbname=url.database,
            user=url.username,
            password=url.password,
            autocommit=True,
        )
        await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
    except Exception:  # polling still delivers every event, only later
        return None
    return conn
