"""Run folders are removed once nothing was written to them for the retention: only the report's
own, never the current run's, never a symlink or a file. (In a real run:
tests/airflow/test_report_storage_and_cleanup.py.)"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
from pathlib import Path

import pytest

from rule_compiler.reporting.workdir import (
    RETENTION_ENV,
    run_workdir,
    sweep_run_workdirs,
    workdir_retention,
)

DAG = "report__acme__weekly-sales"
DAY = 86_400.0
WEEK = dt.timedelta(days=7)


def _folder(base: Path, run_id: str, age_days: float, now: float, dag_id: str = DAG) -> Path:
    """A run folder with a CSV, everything last written ``age_days`` before ``now``."""
    folder = run_workdir(base, dag_id, run_id)
    (folder / "daily.csv").write_text("day,revenue\n", encoding="utf-8")
    moment = now - age_days * DAY
    os.utime(folder / "daily.csv", (moment, moment))
    os.utime(folder, (moment, moment))
    return folder


def test_folders_older_than_the_retention_go_and_recent_ones_stay(tmp_path: Path) -> None:
    now = time.time()
    old = _folder(tmp_path, "scheduled__2026-10-05T06:00:00+00:00", 30, now)
    week_and_a_bit = _folder(tmp_path, "scheduled__2026-10-26T06:00:00+00:00", 8, now)
    recent = _folder(tmp_path, "scheduled__2026-11-09T06:00:00+00:00", 6, now)
    other_report = _folder(
        tmp_path, "scheduled__2026-10-05T06:00:00+00:00", 30, now, dag_id="report__acme__x"
    )

    sweep = sweep_run_workdirs(tmp_path, DAG, keep_run_id="manual__now", older_than=WEEK, now=now)

    assert sorted(sweep.removed) == sorted([old.name, week_and_a_bit.name]) and sweep.failed == {}
    assert not old.exists() and not week_and_a_bit.exists()
    assert recent.is_dir() and (recent / "daily.csv").is_file()
    assert other_report.is_dir()  # another report's folders are its own sweep's business


def test_the_current_runs_folder_stays_however_old_it_looks(tmp_path: Path) -> None:
    now = time.time()
    run_id = "scheduled__2026-10-05T06:00:00+00:00"
    current = _folder(tmp_path, run_id, 30, now)
    sweep = sweep_run_workdirs(tmp_path, DAG, keep_run_id=run_id, older_than=WEEK, now=now)
    assert sweep.removed == [] and current.is_dir()


def test_a_file_written_lately_keeps_an_old_folder(tmp_path: Path) -> None:
    """A delivery cleared today re-reads an old run's files after its render wrote one anew."""
    now = time.time()
    folder = _folder(tmp_path, "scheduled__2026-10-05T06:00:00+00:00", 30, now)
    (folder / "weekly-sales.html").write_text("<p>again</p>", encoding="utf-8")
    moment = now - DAY
    os.utime(folder / "weekly-sales.html", (moment, moment))
    os.utime(folder, (now - 30 * DAY, now - 30 * DAY))
    assert sweep_run_workdirs(tmp_path, DAG, keep_run_id="x", older_than=WEEK, now=now).removed == []
    assert folder.is_dir()


def test_symlinks_and_files_beside_the_run_folders_are_left_alone(tmp_path: Path) -> None:
    now = time.time()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("not a run's", encoding="utf-8")
    parent = tmp_path / "work" / DAG
    parent.mkdir(parents=True)
    link, note = parent / "linked-run", parent / "README"
    link.symlink_to(elsewhere, target_is_directory=True)
    note.write_text("hello", encoding="utf-8")
    for path in (elsewhere, elsewhere / "keep.txt", note):
        os.utime(path, (now - 30 * DAY, now - 30 * DAY))
    sweep = sweep_run_workdirs(tmp_path / "work", DAG, keep_run_id="x", older_than=WEEK, now=now)
    assert sweep.removed == [] and link.is_symlink() and note.is_file()
    assert (elsewhere / "keep.txt").is_file()


def test_a_report_without_run_folders_sweeps_nothing(tmp_path: Path) -> None:
    sweep = sweep_run_workdirs(tmp_path / "missing", DAG, keep_run_id="x", older_than=WEEK)
    assert sweep.removed == [] and sweep.failed == {}


def test_a_folder_that_cannot_be_removed_is_reported_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = time.time()
    stuck = _folder(tmp_path, "scheduled__2026-10-05T06:00:00+00:00", 30, now)
    old = _folder(tmp_path, "scheduled__2026-10-12T06:00:00+00:00", 30, now)
    remove = shutil.rmtree

    def rmtree(path: Path) -> None:  # as on a volume where the worker may not delete
        if Path(path) == stuck:
            raise PermissionError(13, "Permission denied", str(path))
        remove(path)

    monkeypatch.setattr(shutil, "rmtree", rmtree)
    sweep = sweep_run_workdirs(tmp_path, DAG, keep_run_id="x", older_than=WEEK, now=now)
    assert sweep.removed == [old.name] and list(sweep.failed) == [stuck.name]
    assert "PermissionError" in sweep.failed[stuck.name] and stuck.is_dir() and not old.exists()


def test_the_retention_is_a_duration_of_at_least_an_hour() -> None:
    assert workdir_retention({}) == dt.timedelta(days=7)
    assert workdir_retention({RETENTION_ENV: "36h"}) == dt.timedelta(hours=36)
    assert workdir_retention({RETENTION_ENV: "2w"}) == dt.timedelta(weeks=2)
    with pytest.raises(ValueError, match=f"{RETENTION_ENV}: '7 days' is not a duration"):
        workdir_retention({RETENTION_ENV: "7 days"})
    with pytest.raises(ValueError, match=f"{RETENTION_ENV}: '30m' is shorter than the minimum of 1h"):
        workdir_retention({RETENTION_ENV: "30m"})
