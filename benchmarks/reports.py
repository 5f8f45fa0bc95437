"""Report streaming benchmark: a 1,000,000-row query result to CSV and to XLSX, against a plain
``csv.writer`` loop over the same cursor.

The source is a ``sales`` table of N rows (id, region, amount, sold_at, paid, note) in a temporary
SQLite file, or with ``--postgres URL`` in a temporary database on that server (dropped at the end;
there the columns are typed: numeric, timestamptz, boolean). Every path reads
``SELECT id, region, amount, sold_at, paid, note FROM sales ORDER BY id``:

1. ``baseline``: ``csv.writer(f).writerow(row)`` for each row of that query executed with
   ``stream_results=True, yield_per=5000`` — the cursor options of ``run_query_to_csv``, without its
   read-only transaction and timeout, value conversion (ISO dates, true/false), column typing and
   row cap;
2. ``csv``: :func:`rule_compiler.reporting.queries.run_query_to_csv` (what the report's query task does);
3. ``xlsx``: :func:`rule_compiler.reporting.render_format.render_format` ``"xlsx"`` from that CSV file (what
   the xlsx render task does: XlsxWriter in ``constant_memory`` mode, rows streamed from the file);
4. ``xlsx-plain`` (a reference, not a target): XlsxWriter ``constant_memory`` ``write_row`` for each
   row of the cursor, no styling or typing.

Each measurement runs in a fresh process, so its peak memory is its own: ``peak RSS`` is the
process's ``ru_maxrss`` at the end, ``growth`` its increase over the peak before the work (after
imports and connecting). rows/s = N / wall time of the work. Each output is checked to hold N data
rows (CSV lines; the XLSX sheets' dimensions) before anything is printed. ``--repeat`` runs of each
path alternate; the table shows medians. ratio = median(csv) / median(baseline).

    .venv/bin/python benchmarks/reports.py                          # 1,000,000 rows, SQLite (~2 min)
    .venv/bin/python benchmarks/reports.py --rows 100000 --repeat 3
    .venv/bin/python benchmarks/reports.py --postgres postgresql+psycopg2://postgres@127.0.0.1:5432/postgres
    .venv/bin/python benchmarks/reports.py --json result.json       # the table, and JSON into a file

Progress goes to stderr; the table (or ``--json -``) to stdout. Imports no Airflow.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench_common import add_json_option, emit, progress, temporary_postgres_database

ROOT = Path(__file__).resolve().parents[1]
QUERY = "SELECT id, region, amount, sold_at, paid, note FROM sales ORDER BY id"
YIELD_PER = 5_000
PATHS = {
    "baseline": "plain csv.writer loop over the cursor (baseline)",
    "csv": "report CSV: run_query_to_csv",
    "xlsx": "report XLSX: render from the CSV",
    "xlsx-plain": "plain XlsxWriter loop over the cursor (reference)",
}
SQLITE_FILL = """
INSERT INTO sales
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :rows)
SELECT i, 'region-' || (i % 7), (i % 1000) * 1.25, datetime('2026-01-01', '+' || i || ' seconds'),
       i % 2, 'order note ' || i
FROM n
"""
POSTGRES_FILL = """
INSERT INTO sales
SELECT g, 'region-' || (g % 7), (g % 1000) * 1.25,
       timestamptz '2026-01-01 00:00:00+00' + g * interval '1 second', g % 2 = 0, 'order note ' || g
FROM generate_series(1, :rows) AS g
"""

# -- the child: one measurement in its own process ----------------------------------------------------


def _max_rss_kib() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # macOS reports bytes, Linux KiB


def child(path: str, url: str, workdir: Path) -> dict[str, Any]:
    import sqlalchemy as sa

    sys.path.insert(0, str(ROOT))
    from rule_compiler.reporting.queries import run_query_to_csv
    from rule_compiler.reporting.render_format import render_format
    from rule_compiler.reporting.workdir import Manifest, read_manifest, write_manifest

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    before = _max_rss_kib()
    start = time.perf_counter()
    if path == "baseline":
        target = workdir / "baseline.csv"
        with engine.connect() as conn, target.open("w", encoding="utf-8", newline="") as out:
            result = conn.execution_options(stream_results=True, yield_per=YIELD_PER).execute(sa.text(QUERY))
            writer = csv.writer(out)
            writer.writerow(list(result.keys()))
            for row in result:
                writer.writerow(row)
    elif path == "csv":
        target = workdir / "sales.csv"
        result = run_query_to_csv(
            engine, QUERY, {}, query_id="sales", row_limit=10**9, timeout=3_600, path=target
        )
    elif path == "xlsx":
        target = render_format("xlsx", workdir, read_manifest(workdir), title="sales", description="",
                               charts=[], template=None)  # fmt: skip
    elif path == "xlsx-plain":
        import xlsxwriter

        target = workdir / "plain.xlsx"
        book = xlsxwriter.Workbook(str(target), {"constant_memory": True, "remove_timezone": True})
        sheet = book.add_worksheet("sales")
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=YIELD_PER).execute(sa.text(QUERY))
            sheet.write_row(0, 0, list(result.keys()))
            for number, row in enumerate(result, start=1):
                sheet.write_row(number, 0, row)
        book.close()
    else:
        raise SystemExit(f"unknown path {path}")
    seconds = time.perf_counter() - start
    engine.dispose()
    if path == "csv":  # the query task's manifest, which the xlsx render reads
        day = "2026-01-01T00:00:00+00:00"
        write_manifest(workdir, Manifest("bench/sales", day, day, day, {}, [result]))
    return {
        "path": path,
        "seconds": seconds,
        "peak_rss_kib": _max_rss_kib(),
        "rss_before_kib": before,
        "file": str(target),
        "bytes": target.stat().st_size,
    }


# -- the parent ----------------------------------------------------------------------------------------


@contextmanager
def source(args: argparse.Namespace, folder: Path) -> Iterator[tuple[str, str]]:
    """(backend, URL) of a database holding the ``sales`` table with ``--rows`` rows."""
    import sqlalchemy as sa

    if args.postgres:
        with temporary_postgres_database(args.postgres, "reports_bench") as url:
            engine = sa.create_engine(url)
            with engine.begin() as conn:
                conn.execute(
                    sa.text(
                        "CREATE TABLE sales (id bigint PRIMARY KEY, region text, amount numeric(12, 2), "
                        "sold_at timestamptz, paid boolean, note text)"
                    )
                )
                conn.execute(sa.text(POSTGRES_FILL), {"rows": args.rows})
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(sa.text("VACUUM ANALYZE sales"))
            engine.dispose()
            yield "postgres", url
        return
    url = f"sqlite:///{folder / 'sales.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE sales (id INTEGER PRIMARY KEY, region TEXT, amount NUMERIC, sold_at TEXT, "
                "paid INTEGER, note TEXT)"
            )
        )
        conn.execute(sa.text(SQLITE_FILL), {"rows": args.rows})
    engine.dispose()
    yield "sqlite", url


def measure(path: str, url: str, workdir: Path) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", path, "--url", url, "--workdir", str(workdir)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{path} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def count_rows(file: Path, *, skip_last_sheet: bool) -> int:
    """Data rows in an output: CSV lines after the header; the XLSX sheets' dimensions less their
    header rows (without the last sheet, the report's ``About``, when ``skip_last_sheet``)."""
    if file.suffix == ".csv":
        with file.open(encoding="utf-8", newline="") as handle:
            return sum(1 for _ in csv.reader(handle)) - 1
    with zipfile.ZipFile(file) as archive:
        sheets = sorted(
            (n for n in archive.namelist() if re.fullmatch(r"xl/worksheets/sheet\d+\.xml", n)),
            key=lambda name: int(re.sub(r"\D", "", name)),
        )
        total = 0
        for name in sheets[:-1] if skip_last_sheet else sheets:
            head = archive.open(name).read(4_000).decode("utf-8", "replace")
            found = re.search(r'<dimension ref="A1:[A-Z]+(\d+)"', head)
            total += int(found.group(1)) - 1 if found else 0
        return total


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="reports-bench-") as temporary:
        return _run_in(args, Path(temporary))


def _run_in(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    progress(f"building the source: {args.rows:,} rows ({'postgres' if args.postgres else 'sqlite'})")
    results: dict[str, list[dict[str, Any]]] = {path: [] for path in PATHS}
    with source(args, folder) as (backend, url):
        for repetition in range(1, args.repeat + 1):
            workdir = folder / f"run-{repetition}"
            workdir.mkdir()
            for path, label in PATHS.items():
                progress(f"run {repetition}/{args.repeat}: {label}")
                measured = measure(path, url, workdir)
                rows = count_rows(Path(measured["file"]), skip_last_sheet=path == "xlsx")
                if rows != args.rows:
                    raise SystemExit(f"{path} wrote {rows:,} rows, not {args.rows:,}")
                progress(
                    f"  {measured['seconds']:.2f} s, {args.rows / measured['seconds']:,.0f} rows/s, "
                    f"peak RSS {measured['peak_rss_kib'] / 1024:.0f} MiB"
                )
                results[path].append(measured)
    summaries = []
    for path, runs in results.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        summaries.append(
            {
                "path": path,
                "label": PATHS[path],
                "seconds": seconds,
                "times_s": [r["seconds"] for r in runs],
                "rows_per_s": args.rows / seconds,
                "peak_rss_mib": max(r["peak_rss_kib"] for r in runs) / 1024,
                "growth_mib": max(r["peak_rss_kib"] - r["rss_before_kib"] for r in runs) / 1024,
                "file_mib": runs[-1]["bytes"] / 1024 / 1024,
            }
        )
    baseline = summaries[0]["seconds"]
    for summary in summaries:
        summary["vs_baseline"] = summary["seconds"] / baseline
    return {
        "setup": {
            "rows": args.rows,
            "repeat": args.repeat,
            "backend": backend,
            "query": QUERY,
            "python": platform.python_version(),
            "machine": platform.machine(),
        },
        "paths": summaries,
        "ratio_csv": summaries[1]["seconds"] / baseline,
    }


def table(result: dict[str, Any]) -> str:
    setup = result["setup"]
    lines = [
        f"{setup['rows']:,} rows from {setup['backend']}, median of {setup['repeat']} run(s) per path",
        "",
        f"{'path':52} {'seconds':>8} {'rows/s':>10} {'vs baseline':>12} {'peak RSS':>9} {'growth':>8} "
        f"{'file':>9}",
    ]
    for path in result["paths"]:
        lines.append(
            f"{path['label']:52} {path['seconds']:8.2f} {path['rows_per_s']:10,.0f} "
            f"{path['vs_baseline']:11.2f}x {path['peak_rss_mib']:6.0f} MiB {path['growth_mib']:4.0f} MiB "
            f"{path['file_mib']:5.1f} MiB"
        )
    lines += ["", f"ratio (report CSV / baseline) = {result['ratio_csv']:.2f}x"]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the result (1000000)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each path, alternating (1)")
    parser.add_argument("--postgres", metavar="URL", help="read from a temporary database on this server")
    add_json_option(parser)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rows < 1 or args.repeat < 1:
        parser.error("--rows and --repeat must be at least 1")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.child:
        measured = child(args.child, args.url, args.workdir)
        print(json.dumps(measured))
        return measured
    result = run(args)
    emit(result, args.json, table)
    return result


if __name__ == "__main__":
    main()
