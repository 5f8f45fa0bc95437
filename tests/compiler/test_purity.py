"""The one-way import rule: `rule_compiler` never imports airflow, nor the Airflow side (`rule_engine`).

Every module is imported with both blocked (docs/architecture.md §1).
"""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

SCRIPT = """
import importlib, pkgutil, sys

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("airflow", "rule_engine"):
            raise ImportError(f"rule_compiler imported {name}")
        return None

sys.meta_path.insert(0, Block())
import rule_compiler
count = 0
for info in pkgutil.walk_packages(rule_compiler.__path__, "rule_compiler."):
    if ".migrations" in info.name or info.name.endswith(".__main__"):
        continue
    importlib.import_module(info.name)
    count += 1
leaked = [m for m in sys.modules if m.split(".")[0] in ("airflow", "rule_engine")]
assert not leaked, f"rule_compiler imported {leaked[:5]}"
print(count)
"""


def test_rule_compiler_imports_without_airflow() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) >= 20  # every module was really imported
