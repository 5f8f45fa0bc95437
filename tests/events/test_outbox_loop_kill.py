"""The event trigger's read-and-advance loop SIGKILLed at each step over a burst of 1,000 events.

Each round starts the loop (``tests/events/outbox_loop.py``, the trigger's real producer) in a
subprocess with a fault point that kills it mid-burst, checks the invariant on what the dead process
left — the durable cursor is never past an event that was not emitted — and finally lets a clean run
finish: every event was emitted at least once (duplicates are allowed: the actions' ledgers make
them harmless) and the cursor reached the last one. Runs on the real Postgres (concurrent sequence,
LISTEN/NOTIFY) with the real capture trigger writing the outbox.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from rule_compiler.events import install
from rule_compiler.events.outbox_rows import cursor_position
from rule_compiler.events.reader import consumer_name
from rule_compiler.runtime.faults import AFTER_ENV, FAULTPOINT_ENV
from tests.conftest import ROOT

pytestmark = pytest.mark.postgres
BURST = 1_000
#: (fault point, how many hits pass before it fires). The loop reads batches of 20 (50 for the burst);
#: the rounds together use about 27 of them, so every round dies mid-burst.
KILLS = [
    (point, after)
    for after in (0, 3, 6)
    for point in ("outbox.after_read", "outbox.after_emit", "outbox.after_advance")
]


def _loop(url: str, emitted: Path, env: dict[str, str]) -> int:
    return subprocess.run(
        [sys.executable, "-m", "tests.events.outbox_loop", url, str(emitted)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'plugins'}", **env},
        timeout=120,
        capture_output=True,
        check=False,
    ).returncode


def _emitted(path: Path) -> set[int]:
    if not path.exists():
        return set()
    return {int(i) for line in path.read_text().splitlines() for i in line.split()}


def test_every_event_is_emitted_and_the_cursor_never_passes_an_unemitted_one(
    postgres_url: str, tmp_path: Path
) -> None:
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE orders (id INTEGER PRIMARY KEY, status TEXT)"))
    install(engine, "orders")
    with engine.begin() as conn:  # the burst: 1,000 events in ten transactions
        for start in range(0, BURST, 100):
            conn.execute(
                sa.text("INSERT INTO orders (id, status) SELECT g, 'new' FROM generate_series(:a, :b) g"),
                {"a": start + 1, "b": start + 100},
            )
    with engine.connect() as conn:
        all_ids = {int(r[0]) for r in conn.execute(sa.text("SELECT id FROM rule_engine_outbox"))}
    assert len(all_ids) == BURST
    emitted = tmp_path / "emitted.txt"
    for point, after in KILLS:
        code = _loop(postgres_url, emitted, {FAULTPOINT_ENV: point, AFTER_ENV: str(after)})
        assert code == -signal.SIGKILL, f"the loop failed ({code}) instead of being killed at {point}"
        with engine.connect() as conn:
            cursor = cursor_position(conn, consumer_name("orders"))
        done = _emitted(emitted)
        assert {i for i in all_ids if i <= cursor} <= done, f"cursor {cursor} passed unemitted events"
    assert _loop(postgres_url, emitted, {}) == 0
    assert _emitted(emitted) == all_ids
    with engine.connect() as conn:
        assert cursor_position(conn, consumer_name("orders")) == max(all_ids)
    engine.dispose()
