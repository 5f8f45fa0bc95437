"""Retention at scale: the chunked purge of about 1,000,000 finished runs (and their action results) in
Postgres, archived to a local folder, side by side with one plain ``DELETE`` of the same rows.

The automation log is the analytics benchmark's (``analytics_workload.load_log``: 30 days of runs,
2 % still running). Both sides purge every run finished before the log's end (the others stay)
on identical copies of the database (``CREATE DATABASE ... TEMPLATE``), in the same run:

- **chunked**: ``RuleStore.purge_expired`` as the ``rule_engine_retention`` DAG runs it: ``--chunk``
  runs per transaction, each selected ``FOR UPDATE SKIP LOCKED``, archived (gzip JSON Lines) and
  deleted with its action results;
- **one DELETE**: ``DELETE FROM automation_runs WHERE ...`` in one transaction (the action results
  go by ``ON DELETE CASCADE``): what a purge without chunks would do.

Printed per side: total seconds, rows deleted per second, the number of transactions, and the
longest lock held (the longest transaction that deleted rows: nothing else can change those rows
meanwhile, and vacuum cannot reclaim anything behind it), with the ratio of the two. The purge is
also checked: the running runs and every action result of theirs are still there, and the archive
holds exactly the deleted runs.

    .venv/bin/python benchmarks/retention.py                 # about 1,000,000 runs (a few minutes)
    .venv/bin/python benchmarks/retention.py --rows 20000 --json -
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from analytics_workload import NOW, load_log
from bench_common import add_json_option, aligned, emit, progress, temporary_postgres_database

from rule_compiler.retention_settings import RetentionSettings
from rule_compiler.store import RuleStore
from rule_compiler.store.archive import FolderSink, read_rows
from rule_compiler.store.purge import target_named

DEFAULT_POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
#: 98 % of the generated runs finish: this many make about 1,000,000 finished runs to purge.
DEFAULT_ROWS = 1_020_408
ONE_DELETE = """
DELETE FROM automation_runs
WHERE finished_at < :cutoff AND status IN ('no_match', 'success', 'failed', 'partial')
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help=f"runs to load ({DEFAULT_ROWS:,})")
    parser.add_argument(
        "--chunk", type=int, default=1000, help="runs per transaction of the chunked purge (1000)"
    )
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="a server's admin URL")
    add_json_option(parser)
    return parser.parse_args(argv)


class Transactions:
    """Times every transaction on an engine that deleted something: the locks it held."""

    def __init__(self, engine: sa.Engine) -> None:
        self.seconds: list[float] = []
        self._open: dict[int, tuple[float, bool]] = {}
        sa.event.listen(engine, "begin", self._begin)
        sa.event.listen(engine, "before_cursor_execute", self._statement)
        sa.event.listen(engine, "commit", self._end)

    def _begin(self, conn: sa.Connection) -> None:
        self._open[id(conn)] = (time.perf_counter(), False)

    def _statement(self, conn: sa.Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        started = self._open.get(id(conn))
        if started is not None and statement.lstrip().upper().startswith("DELETE"):
            self._open[id(conn)] = (started[0], True)

    def _end(self, conn: sa.Connection) -> None:
        started, deleted = self._open.pop(id(conn), (0.0, False))
        if deleted:
            self.seconds.append(time.perf_counter() - started)


def copy_database(admin_url: str, source_url: str) -> str:
    """A copy of the database at ``source_url`` (no one may be connected to it meanwhile)."""
    source = sa.make_url(source_url).database
    name = f"{source}_copy_{uuid.uuid4().hex[:6]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{source}"'))
    admin.dispose()
    return sa.make_url(source_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, url: str) -> None:
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{sa.make_url(url).database}"'))
    admin.dispose()


def counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            "runs": conn.execute(sa.text("SELECT count(*) FROM automation_runs")).scalar_one(),
            "action_results": conn.execute(
                sa.text("SELECT count(*) FROM automation_action_results")
            ).scalar_one(),
            "kept": conn.execute(  # running, or finished after the cutoff
                sa.text(
                    "SELECT count(*) FROM automation_runs WHERE finished_at IS NULL OR finished_at >= :n"
                ),
                {"n": NOW},
            ).scalar_one(),
        }


def chunk_plan(engine: sa.Engine, chunk: int) -> list[str]:
    """``EXPLAIN ANALYZE`` of the first chunk's SELECT (rolled back: nothing stays locked)."""
    target = target_named("runs")
    query = (
        sa.select(target.table)
        .where(target.due(NOW))
        .order_by(target.table.c[target.key])
        .limit(chunk)
        .with_for_update(skip_locked=True)
    )
    compiled = query.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
    with engine.connect() as conn:
        lines = [row[0] for row in conn.execute(sa.text(f"EXPLAIN ANALYZE {compiled}"))]
        conn.rollback()
    return lines


def chunked(url: str, chunk: int, folder: Path) -> dict[str, Any]:
    store = RuleStore(url)
    plan = chunk_plan(store.engine, chunk)
    before = counts(store.engine)
    timer = Transactions(store.engine)
    settings = RetentionSettings.from_env({"AUTOMATION_RETENTION_RUNS": "15d"})
    started = time.perf_counter()
    (result,) = store.purge_expired(
        settings,
        now=NOW + dt.timedelta(days=15),
        actor="benchmark",
        sink=FolderSink(folder),
        chunk=chunk,
        targets=["runs"],
        progress=lambda r: progress(f"chunked: {r.purged:,} runs in {r.chunks:,} chunks"),
    )
    total = time.perf_counter() - started
    after = counts(store.engine)
    archived = sum(len(read_rows(path.read_bytes())) for path in folder.rglob("*.jsonl.gz"))
    store.close()
    problems = []
    if archived != result.purged:
        problems.append(f"the archive holds {archived:,} runs, {result.purged:,} were deleted")
    if after["runs"] != before["kept"] or after["kept"] != before["kept"]:
        problems.append(
            f"left {after}, expected only the {before['kept']:,} runs not finished before the cutoff"
        )
    deleted = before["runs"] + before["action_results"] - after["runs"] - after["action_results"]
    return {
        **_side("chunked, archived", total, deleted, timer.seconds, problems),
        "runs_deleted": result.purged,
        "chunk_plan": plan,
    }


def one_delete(url: str) -> dict[str, Any]:
    engine = sa.create_engine(url)
    before = counts(engine)
    timer = Transactions(engine)
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(sa.text(ONE_DELETE), {"cutoff": NOW})
    total = time.perf_counter() - started
    after = counts(engine)
    engine.dispose()
    deleted = before["runs"] + before["action_results"] - after["runs"] - after["action_results"]
    return _side("one DELETE", total, deleted, timer.seconds, [])


def _side(name: str, total: float, deleted: int, locks: list[float], problems: list[str]) -> dict[str, Any]:
    return {
        "side": name,
        "seconds": total,
        "rows_deleted": deleted,
        "rows_per_second": deleted / total if total else 0.0,
        "transactions": len(locks),
        "longest_lock_ms": max(locks, default=0.0) * 1000,
        "median_lock_ms": statistics.median(locks) * 1000 if locks else 0.0,
        "problems": problems,
    }


def table(result: dict[str, Any]) -> str:
    rows = [["side", "seconds", "rows deleted", "rows/s", "transactions", "median lock", "longest lock"]]
    for side in result["sides"]:
        rows.append([
            side["side"], f"{side['seconds']:.1f}", f"{side['rows_deleted']:,}",
            f"{side['rows_per_second']:,.0f}", f"{side['transactions']:,}",
            f"{side['median_lock_ms']:.0f} ms", f"{side['longest_lock_ms']:.0f} ms",
        ])  # fmt: skip
    lines = [
        f"retention: {result['rows']['runs']:,} runs, {result['rows']['action_results']:,} action results "
        f"({result['machine']})",
        "",
        *aligned(rows),
        "",
        f"longest lock, chunked / one DELETE: {result['longest_lock_ratio']:.4f}",
        f"time, chunked / one DELETE: {result['time_ratio']:.1f}x",
        "",
        "the first chunk's SELECT:",
        *(f"    {line}" for line in result["sides"][0]["chunk_plan"]),
    ]
    lines += [f"PROBLEM: {problem}" for side in result["sides"] for problem in side["problems"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with temporary_postgres_database(args.postgres, "retention_bench") as url:
        store = RuleStore(url)
        store.upgrade()
        progress(f"loading {args.rows:,} runs")
        loaded = load_log(store.engine, args.rows)
        progress(f"loaded {loaded}")
        store.close()
        copy = copy_database(args.postgres, url)
        try:
            with tempfile.TemporaryDirectory(prefix="retention-archive-") as folder:
                progress(f"chunked purge, {args.chunk:,} runs per transaction, archived to {folder}")
                sides = [chunked(url, args.chunk, Path(folder))]
            progress("one DELETE on the copy")
            sides.append(one_delete(copy))
        finally:
            drop_database(args.postgres, copy)
    result = {
        "rows": loaded,
        "chunk": args.chunk,
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
        "sides": sides,
        "longest_lock_ratio": sides[0]["longest_lock_ms"] / max(sides[1]["longest_lock_ms"], 1e-9),
        "time_ratio": sides[0]["seconds"] / max(sides[1]["seconds"], 1e-9),
    }
    emit(result, args.json, table)
    return 1 if any(side["problems"] for side in sides) else 0


if __name__ == "__main__":
    raise SystemExit(main())
