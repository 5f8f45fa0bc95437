"""Smoke test of ``benchmarks/reports.py``: a tiny run completes on SQLite (and on Postgres), every
path writes every row (checked by the script itself), and the table reports each path.

Never asserts a time or a memory figure: this machine's load decides those, not the code.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import PG_ADMIN_URL, ROOT

pytestmark = pytest.mark.slow

ROWS = 300


def load_benchmark() -> ModuleType:
    name = "reports_benchmark"
    if name in sys.modules:
        return sys.modules[name]
    if str(ROOT / "benchmarks") not in sys.path:  # the script imports its sibling bench_common
        sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / "reports.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def run_benchmark(tmp_path: Path, *extra: str) -> dict[str, Any]:
    result_file = tmp_path / "result.json"
    load_benchmark().main(["--rows", str(ROWS), "--json", str(result_file), *extra])
    result: dict[str, Any] = json.loads(result_file.read_text())
    return result


def check(result: dict[str, Any], backend: str) -> None:
    assert result["setup"]["rows"] == ROWS and result["setup"]["backend"] == backend
    assert [p["path"] for p in result["paths"]] == ["baseline", "csv", "xlsx", "xlsx-plain"]
    for path in result["paths"]:
        assert path["rows_per_s"] > 0 and path["peak_rss_mib"] > 0 and path["file_mib"] > 0
    assert result["paths"][0]["vs_baseline"] == 1.0 and result["ratio_csv"] > 0


def test_reports_benchmark_runs_every_path_on_sqlite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    check(run_benchmark(tmp_path), "sqlite")
    table = capsys.readouterr().out
    assert re.search(
        r"^plain csv\.writer loop over the cursor \(baseline\)\s+[\d.]+\s+[\d,]+\s+1\.00x", table, re.M
    )
    assert re.search(r"^report XLSX: render from the CSV\s+[\d.]+\s+[\d,]+\s+[\d.]+x\s+\d+ MiB", table, re.M)
    assert re.search(r"^ratio \(report CSV / baseline\) = \d+\.\d\dx$", table, re.M)


def test_a_missing_row_stops_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bench = load_benchmark()
    monkeypatch.setattr(bench, "count_rows", lambda file, skip_last_sheet: ROWS - 1)
    with pytest.raises(SystemExit, match=f"wrote {ROWS - 1:,} rows, not {ROWS:,}"):
        bench.main(["--rows", str(ROWS)])


@pytest.mark.postgres
def test_reports_benchmark_runs_on_postgres(tmp_path: Path, postgres_databases: object) -> None:
    check(run_benchmark(tmp_path, "--postgres", PG_ADMIN_URL), "postgres")
