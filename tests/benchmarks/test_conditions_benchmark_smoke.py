"""Smoke test of ``benchmarks/conditions.py``: a tiny run completes, every path counts the same rows, a
ratio is reported, and the semantic check behind it catches a hand-written lambda that gets NULL wrong.

Never asserts a time or a ratio's value: this machine's load decides those, not the code.
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

ROWS = 2000


def load_benchmark() -> ModuleType:
    """``benchmarks/conditions.py`` as a module (``benchmarks`` is a folder of scripts, not a package)."""
    name = "conditions_benchmark"
    if name in sys.modules:
        return sys.modules[name]
    if str(ROOT / "benchmarks") not in sys.path:  # the script imports its sibling bench_common
        sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / "conditions.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def run_benchmark(tmp_path: Path, *extra: str) -> dict[str, Any]:
    result_file = tmp_path / "result.json"
    returned = load_benchmark().main(
        ["--rows", str(ROWS), "--repeat", "1", "--json", str(result_file), *extra]
    )
    result = json.loads(result_file.read_text())
    assert result["matches"] == returned["matches"]
    return result


def check_result(result: dict[str, Any], paths: set[str]) -> None:
    assert result["setup"]["rows"] == ROWS
    assert result["setup"]["leaves"] == 10
    by_path = {path["path"]: path for path in result["paths"]}
    assert set(by_path) == paths
    # The same rows on every path: checked by id before timing, and counted by every timed run.
    assert 0 < result["matches"] < ROWS
    assert {path["matches"] for path in by_path.values()} == {result["matches"]}
    assert result["checked_nodes"]["the whole rule"] == result["matches"]
    assert len(result["checked_nodes"]) == 13  # 10 leaves, the not, the any, the rule
    for path in by_path.values():
        assert len(path["times_s"]) == 1
        assert path["rows_per_s"] > 0
    assert isinstance(result["ratio"], float)
    assert result["ratio"] > 0
    assert result["target"] == 3.0
    assert result["verdict"] in {"PASS", "FAIL"}


def test_conditions_benchmark_runs_and_every_path_counts_the_same_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_benchmark(tmp_path)
    check_result(result, {"lambdas", "engine", "sqlite"})

    table = capsys.readouterr().out
    assert re.search(r"^path\s+matches\s+median\s+min\s+rows/s\s+ns/row\s+vs lambdas", table, re.MULTILINE)
    assert re.search(
        r"^hand-written lambdas \(baseline\)\s+[\d,]+\s.*\s1\.00x\s+-\s+-$", table, re.MULTILINE
    ), table
    assert re.search(
        r"^engine: compile_condition\(\.\.\.\)\.matches\s+[\d,]+\s.*\s\d+\.\d\dx\s+<= 3\.0x\s+(PASS|FAIL)$",
        table,
        re.MULTILINE,
    ), table
    assert re.search(r"^SQL sqlite \(in memory\): count\(\*\)\s+[\d,]+\s.*\s\d+\.\d\dx", table, re.MULTILINE)
    assert re.search(r"^ratio \(engine / lambdas\) = \d+\.\d\dx", table, re.MULTILINE), table
    assert f"matches: {result['matches']:,} of {ROWS:,} rows" in table


def test_the_check_catches_a_lambda_that_gets_null_wrong() -> None:
    bench = load_benchmark()
    rows = bench.make_rows(ROWS, 1)
    assert any(row["region"] is None for row in rows)
    wrong = [
        # The classic mistake: "not EU" written as a comparison that is false for a NULL region.
        (label, data, lambda r: r["region"] is not None and r["region"] != "EU")
        if label == "not {region equals EU}"
        else (label, data, check)
        for label, data, check in bench.CHECKED_NODES
    ]
    original = bench.CHECKED_NODES
    bench.CHECKED_NODES = wrong
    try:
        with pytest.raises(SystemExit) as raised:
            bench.python_checks(rows)
    finally:
        bench.CHECKED_NODES = original
    assert raised.value.code == 2
    assert bench.python_checks(rows)["the whole rule"]["matches"] > 0


@pytest.mark.postgres
def test_conditions_benchmark_on_postgres_counts_the_same_rows_and_drops_its_database(
    tmp_path: Path, postgres_databases: object
) -> None:
    import sqlalchemy as sa

    result = run_benchmark(tmp_path, "--postgres", PG_ADMIN_URL)
    check_result(result, {"lambdas", "engine", "sqlite", "postgres"})
    database = result["sql"]["postgres"]["database"]
    admin = sa.create_engine(PG_ADMIN_URL)
    try:
        with admin.connect() as conn:
            left = conn.execute(
                sa.text("SELECT count(*) FROM pg_database WHERE datname = :n"), {"n": database}
            )
            assert left.scalar_one() == 0
    finally:
        admin.dispose()
