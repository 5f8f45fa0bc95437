"""``rule-compiler report run``: the demo weekly-sales report rendered for a date against the demo
SQLite database, from its file and from the store; the files are parsed back and their rows checked
against the demo's seed data, computed here in Python."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pypdf
import pytest
import sqlalchemy as sa

from rule_compiler.cli import main
from tests.conftest import DEMO_CATALOG, ROOT
from tests.demo_db import demo_db_module

DEMO_NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
REPORT = ROOT / "include" / "reports" / "weekly-sales.yaml"
# --date 2026-11-23 (a Monday): the week that ends there at 07:00 Berlin.
START, END = dt.datetime(2026, 11, 16, 6, tzinfo=dt.UTC), dt.datetime(2026, 11, 23, 6, tzinfo=dt.UTC)


@pytest.fixture
def app_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'demo_app.db'}"
    engine = sa.create_engine(url)
    demo_db_module().create_demo_db(engine, DEMO_NOW)
    engine.dispose()
    return url


def _expected_daily(min_total: Decimal) -> dict[str, tuple[int, Decimal]]:
    """What the report's `daily` query must return, from the seed rows."""
    _, orders = demo_db_module().seed_rows(DEMO_NOW)
    days: dict[str, list[Decimal]] = defaultdict(list)
    for order in orders:
        total = order["total"]
        counted = total is not None and total >= min_total and order["status"] not in ("cancelled", "void")
        if counted and START <= order["created_at"] < END:
            days[order["created_at"].date().isoformat()].append(total)
    return {day: (len(totals), sum(totals, Decimal(0))) for day, totals in sorted(days.items())}


def _run(tmp_path: Path, app_url: str, *extra: str, name: str = str(REPORT)) -> int:
    return main(
        [
            "--store",
            f"sqlite:///{tmp_path / 'store.db'}",
            "report",
            "run",
            name,
            "--date",
            "2026-11-23",
            "--connection-url",
            f"app_db={app_url}",
            "--out",
            str(tmp_path / "out"),
            *extra,
        ]
    )


def _daily_rows(out: Path) -> dict[str, tuple[int, Decimal]]:
    with zipfile.ZipFile(out / "weekly-sales.csv.zip") as archive:
        header, *rows = csv.reader(io.StringIO(archive.read("daily.csv").decode("utf-8")))
    assert header == ["day", "orders", "revenue"]
    return {day: (int(count), Decimal(revenue)) for day, count, revenue in rows}


def _assert_daily(actual: dict[str, tuple[int, Decimal]], expected: dict[str, tuple[int, Decimal]]) -> None:
    assert actual.keys() == expected.keys()
    for day, (count, revenue) in expected.items():
        assert actual[day][0] == count and float(actual[day][1]) == pytest.approx(float(revenue))


def test_renders_every_format_of_the_report_file(
    tmp_path: Path, app_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(tmp_path, app_url, "--catalog", str(DEMO_CATALOG)) == 0
    out = tmp_path / "out"
    expected = _expected_daily(Decimal(0))
    assert len(expected) > 2
    printed = capsys.readouterr().out
    assert "16 Nov 2026, 07:00 → 23 Nov 2026, 07:00 (Europe/Berlin)" in printed
    assert f"query daily: {len(expected)} rows" in printed
    assert f"rendered 4 files in {out} (nothing was delivered)" in printed
    for name in ("weekly-sales.csv.zip", "weekly-sales.xlsx", "weekly-sales.html", "weekly-sales.pdf"):
        assert f"{out / name}" in printed and (out / name).stat().st_size > 0

    _assert_daily(_daily_rows(out), expected)

    book = openpyxl.load_workbook(out / "weekly-sales.xlsx", read_only=True)
    assert book.sheetnames == ["daily", "top-customers", "About"]
    sheet_rows = list(book["daily"].iter_rows(values_only=True))
    assert sheet_rows[0] == ("day", "orders", "revenue")
    assert [row[1] for row in sheet_rows[1:]] == [count for count, _ in expected.values()]

    html = (out / "weekly-sales.html").read_text(encoding="utf-8")
    assert "<h1>Weekly sales</h1>" in html and html.count("data:image/png;base64,") == 1
    assert "<h2>Top customers</h2>" in html

    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(out / "weekly-sales.pdf").pages)
    assert "Weekly sales" in text and "Revenue per day" in text and next(iter(expected)) in text


def test_renders_a_stored_report_with_a_parameter_and_one_format(
    tmp_path: Path, app_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = ["--store", f"sqlite:///{tmp_path / 'store.db'}"]
    assert main([*store, "db", "upgrade"]) == 0
    assert main([*store, "catalog", "apply", str(DEMO_CATALOG)]) == 0
    assert main([*store, "apply", str(REPORT)]) == 0
    capsys.readouterr()
    assert (
        _run(tmp_path, app_url, "--param", "min_total=1000", "--format", "csv", name="acme/weekly-sales") == 0
    )
    printed = capsys.readouterr().out
    assert "rendered 1 file" in printed and not (tmp_path / "out" / "weekly-sales.pdf").exists()
    expected = _expected_daily(Decimal(1000))
    assert expected != _expected_daily(Decimal(0))
    _assert_daily(_daily_rows(tmp_path / "out"), expected)
    assert _run(tmp_path, app_url, "--org", "acme", "--format", "csv", name="weekly-sales") == 0


def test_errors_say_what_to_change(tmp_path: Path, app_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    cases: list[tuple[list[str], str]] = [
        (["--param", "min_totl=5"], "the report has no parameter 'min_totl' (its parameters: min_total)"),
        (["--param", "min_total=lots"], "parameter 'min_total': 'lots' is not a number"),
        (["--date", "23/11/2026"], "--date '23/11/2026' is not a date (YYYY-MM-DD)"),
    ]
    for extra, message in cases:
        assert _run(tmp_path, app_url, "--catalog", str(DEMO_CATALOG), *extra) == 2
        assert message in capsys.readouterr().err
    no_url = main(["report", "run", str(REPORT), "--date", "2026-11-23", "--catalog", str(DEMO_CATALOG),
                   "--out", str(tmp_path / "o")])  # fmt: skip
    assert no_url == 2 and "connection 'app_db': give --connection-url app_db=URL" in capsys.readouterr().err
    assert _run(tmp_path, app_url, name="acme/no-such-report") == 2
    assert "rule store" in capsys.readouterr().err


def test_an_invalid_report_file_lists_its_problems(tmp_path: Path, app_url: str, capsys: Any) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(REPORT.read_text().replace("type: bar, x: day", "type: bar, x: dya"))
    assert _run(tmp_path, app_url, "--catalog", str(DEMO_CATALOG), name=str(bad)) == 1
    assert "charts[0].x: query 'daily' returns no column 'dya'" in capsys.readouterr().out


@pytest.mark.airflow
def test_the_plugins_command_reads_the_airflow_connection(
    tmp_path: Path, app_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from rule_engine.console_script import main as airflow_main

    database = sa.make_url(app_url).database
    monkeypatch.setenv("AIRFLOW_CONN_APP_DB", json.dumps({"conn_type": "sqlite", "host": database}))
    out = tmp_path / "out"
    args = [
        "report",
        "run",
        str(REPORT),
        "--date",
        "2026-11-23",
        "--catalog",
        str(DEMO_CATALOG),
        "--out",
        str(out),
    ]
    assert airflow_main([*args, "--format", "csv"]) == 0
    assert "rendered 1 file" in capsys.readouterr().out
    _assert_daily(_daily_rows(out), _expected_daily(Decimal(0)))
