"""What the benchmark scripts share: progress lines on stderr, a throwaway Postgres database, the
``--json`` option and the aligned table of results."""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_started = time.perf_counter()


def progress(message: str) -> None:
    """``[   12.3 s] message`` on stderr, timed from the script's start."""
    print(f"[{time.perf_counter() - _started:7.1f} s] {message}", file=sys.stderr, flush=True)


def seconds(values: list[float]) -> str:
    """A list of durations, four decimals each."""
    return "[" + ", ".join(f"{value:.4f}" for value in values) + "]"


@contextmanager
def temporary_postgres_database(admin_url: str, prefix: str, *, keep: bool = False) -> Iterator[str]:
    """The URL of a new, empty database on the server of ``admin_url``; dropped afterwards unless ``keep``."""
    import sqlalchemy as sa

    url = sa.make_url(admin_url)
    if url.get_backend_name() != "postgresql":
        raise SystemExit(f"needs a postgresql URL, not {url.drivername}")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    progress(f"postgres: created the temporary database {name}")
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        if keep:
            progress(f"postgres: kept the temporary database {name}")
        else:
            with admin.connect() as conn:
                conn.execute(
                    sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                    {"n": name},
                )
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
            progress(f"postgres: dropped the temporary database {name}")
        admin.dispose()


def emit(result: dict[str, Any], json_arg: str | None, table: Callable[[dict[str, Any]], str]) -> None:
    """Print the result's table (``--json -``: the JSON instead); ``--json FILE`` also writes the JSON."""
    output = json.dumps(result, indent=2, default=str)
    if json_arg in (None, "-"):
        print(output if json_arg == "-" else table(result))
    else:
        Path(json_arg).write_text(output + "\n", encoding="utf-8")
        print(table(result))


def add_json_option(parser: argparse.ArgumentParser) -> None:
    """``--json [PATH]``: the result as JSON on stdout instead of the table, or into PATH (:func:`emit`)."""
    parser.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="PATH",
        help="machine-readable result: on stdout instead of the table (no PATH or '-'), or into PATH",
    )


def aligned(rows: Sequence[Sequence[str]], *, rule: bool = True) -> list[str]:
    """The rows as left-aligned columns two spaces apart; ``rule``: a dashed line under the first row."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    if rule:
        lines.insert(1, "  ".join("-" * width for width in widths))
    return lines
