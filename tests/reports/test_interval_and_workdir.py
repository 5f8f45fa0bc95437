"""The data interval of a preview date (checked against Airflow's own CronDataIntervalTimetable),
and the run folder: safe names, the manifest's round trip."""

from __future__ import annotations

import datetime as dt
import json
import warnings
from pathlib import Path

import pytest

from rule_compiler.reporting.interval import interval_for_date
from rule_compiler.reporting.workdir import Manifest, QueryResult, read_manifest, run_workdir, write_manifest

UTC = dt.UTC


def test_a_weekly_report_previewed_on_any_day_reads_the_week_ending_that_monday() -> None:
    for day in (16, 18, 22):  # Monday to Sunday
        interval = interval_for_date("0 7 * * 1", "Europe/Berlin", dt.date(2026, 11, day))
        assert (interval.start, interval.end) == (
            dt.datetime(2026, 11, 9, 6, tzinfo=UTC),
            dt.datetime(2026, 11, 16, 6, tzinfo=UTC),
        )
        assert interval.logical_date == interval.start
    sunday_before = interval_for_date("0 7 * * 1", "Europe/Berlin", dt.date(2026, 11, 15))
    assert sunday_before.end == dt.datetime(2026, 11, 9, 6, tzinfo=UTC)


def test_a_daily_midnight_report_reads_the_date_itself() -> None:
    interval = interval_for_date("0 0 * * *", "America/New_York", dt.date(2026, 3, 8))  # DST starts
    assert (interval.start, interval.end) == (
        dt.datetime(2026, 3, 8, 5, tzinfo=UTC),
        dt.datetime(2026, 3, 9, 4, tzinfo=UTC),
    )


@pytest.mark.airflow
@pytest.mark.parametrize(
    ("cron", "zone"),
    [("0 7 * * 1", "Europe/Berlin"), ("0 0 * * *", "UTC"), ("30 * * * *", "Europe/Berlin"),
     ("0 9 1 * *", "America/New_York"), ("*/15 * * * *", "UTC"), ("0 6 * * 1-5", "Asia/Kolkata")],
)  # fmt: skip
def test_the_interval_is_the_one_airflow_infers_for_a_run_at_the_end_of_the_date(
    cron: str, zone: str
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import pendulum
        from airflow.timetables.interval import CronDataIntervalTimetable

    timetable = CronDataIntervalTimetable(cron, zone)
    for text in ("2026-03-29", "2026-10-25", "2026-11-16", "2026-11-20", "2026-12-31", "2027-02-28"):
        day = dt.date.fromisoformat(text)
        midnight = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=pendulum.timezone(zone))
        theirs = timetable.infer_manual_data_interval(run_after=pendulum.instance(midnight))
        ours = interval_for_date(cron, zone, day)
        assert (ours.start, ours.end) == (theirs.start, theirs.end), (cron, zone, text)


def test_run_folders_have_safe_distinct_names(tmp_path: Path) -> None:
    a = run_workdir(tmp_path, "report__acme__weekly-sales", "scheduled__2026-11-16T06:00:00+00:00")
    b = run_workdir(tmp_path, "report__acme__weekly-sales", "scheduled__2026-11-16T06_00_00_00_00")
    assert a.is_dir() and b.is_dir() and a != b
    assert a.parent == tmp_path / "report__acme__weekly-sales"
    assert ":" not in a.name and "+" not in a.name
    assert run_workdir(tmp_path, "d", "../../etc").parent == tmp_path / "d"


def test_the_manifest_round_trips_with_paths_relative_to_the_folder(tmp_path: Path) -> None:
    result = QueryResult(
        id="daily",
        columns=["day", "revenue"],
        row_count=2,
        truncated=True,
        path=tmp_path / "daily.csv",
        first_row=["2026-11-16", "10.50"],
        column_types=["date", "number"],
    )
    manifest = Manifest(
        report_id="acme/weekly-sales",
        interval_start="2026-11-09T06:00:00+00:00",
        interval_end="2026-11-16T06:00:00+00:00",
        logical_date="2026-11-09T06:00:00+00:00",
        parameters={"min_total": 0},
        results=[result],
        timezone="Europe/Berlin",
    )
    write_manifest(tmp_path, manifest)
    assert json.loads((tmp_path / "manifest.json").read_text())["results"][0]["path"] == "daily.csv"
    moved = tmp_path.rename(tmp_path.with_name(tmp_path.name + "-moved"))
    again = read_manifest(moved)
    assert again.results[0].path == moved / "daily.csv"
    assert again == Manifest(
        **{**manifest.__dict__, "results": [QueryResult(**{**result.__dict__, "path": moved / "daily.csv"})]}
    )
