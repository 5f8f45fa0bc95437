"""The demo application database's script (``include/demo/create_demo_db.py``), loaded for tests and
benchmarks; no pytest here, so benchmarks import it too."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[1] / "include" / "demo" / "create_demo_db.py"


def demo_db_module() -> ModuleType:
    """The script as a module: its seed rows (``seed_rows``) and builder (``create_demo_db``)."""
    spec = importlib.util.spec_from_file_location("create_demo_db", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
