"""Smoke test of ``benchmarks/retention.py`` on the real Postgres, at a small size: both sides delete
the same rows, the chunked side in one transaction per chunk, its archive holds exactly what it deleted.

Never asserts a time: this machine's load decides those, not the code.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PG_ADMIN_URL, ROOT

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def test_the_benchmark_purges_the_same_rows_both_ways(tmp_path: Path, postgres_databases: object) -> None:
    result_file = tmp_path / "result.json"
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "retention.py"),
            *("--rows", "3000", "--chunk", "200", "--postgres", PG_ADMIN_URL, "--json", str(result_file)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:] + completed.stdout[-4000:]
    result = json.loads(result_file.read_text())
    chunked, one = result["sides"]
    assert chunked["problems"] == [] and one["problems"] == []
    assert chunked["rows_deleted"] == one["rows_deleted"] > 3000
    assert 2900 <= chunked["runs_deleted"] < 3000  # 98 % finish; the running runs stay
    assert chunked["transactions"] == math.ceil(chunked["runs_deleted"] / 200) and one["transactions"] == 1
    assert "longest lock, chunked / one DELETE:" in completed.stdout
