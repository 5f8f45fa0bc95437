"""Subprocess for the kill test: the event trigger's read-and-advance loop over a real outbox.

``python -m tests.events.outbox_loop URL EMITTED_FILE`` runs the trigger's producer
(``OutboxProducer``, the code the triggerer runs) until the outbox is drained. "Emitting" —
Airflow persisting the asset event — is an fsynced line of ids in EMITTED_FILE; only after it does
the loop call ``advance`` with an acked outcome, as Airflow's ack mode does after the persist
confirmation. ``AUTOMATION_FAULTPOINT`` (``outbox.after_read`` / ``after_emit`` / ``after_advance``)
with ``AUTOMATION_FAULTPOINT_AFTER`` kills it mid-burst.
"""

from __future__ import annotations

import asyncio
import os
import sys

import sqlalchemy as sa
from airflow.triggers.shared_stream import AdvanceItem, AdvanceOutcome
from rule_engine.triggers.outbox import OutboxProducer

#: No new batch for this long: the outbox is drained and the loop exits.
IDLE_SECONDS = 3.0


async def main(url: str, emitted_path: str) -> None:
    engine = sa.create_engine(url)
    producer = OutboxProducer(
        connection="app", table="orders", poll_interval=0.05, batch_size=20, engine=engine
    )
    stream = producer.open_stream()
    while True:
        try:
            payload, through = await asyncio.wait_for(stream.__anext__(), IDLE_SECONDS)
        except TimeoutError:
            break  # drained: nothing new for a while
        with open(emitted_path, "a") as emitted:
            emitted.write(" ".join(payload["event_ids"]) + "\n")
            emitted.flush()
            os.fsync(emitted.fileno())
        await producer.advance([AdvanceItem(through, AdvanceOutcome(acked=1, failed=0))])
    await stream.aclose()
    await producer.aclose()
    engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
