"""One DAG-processor-like parse in a fresh process, for benchmarks/scale.py: a DagBag over FOLDER,
then every DAG serialized as the DAG processor does before it writes it to the database. Prints one
JSON line: the DAGs found, both timings (after the imports, which both sides pay alike) and the
process's peak resident memory, with its size right after the imports.

    python benchmarks/scale_child.py FOLDER
"""

from __future__ import annotations

import gc
import json
import os
import resource
import sys
import time


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main(folder: str) -> None:
    prefix = os.environ.get("SCALE_PYCACHE_PREFIX")
    if prefix:
        sys.pycache_prefix = prefix
        sys.dont_write_bytecode = False
    import rule_engine.loader  # noqa: F401 - imported before timing, as the DAG processor has it warm
    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.serialized_objects import DagSerialization

    gc.collect()
    after_imports = _rss_mb()
    start = time.perf_counter()
    bag = DagBag(dag_folder=folder)
    parsed = time.perf_counter() - start
    if bag.import_errors:
        raise SystemExit(f"import errors: {bag.import_errors}")
    start = time.perf_counter()
    size = 0
    for dag in bag.dags.values():
        size += len(json.dumps(DagSerialization.to_dict(dag), default=str))
    serialized = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "dags": len(bag.dags),
                "parse_s": parsed,
                "serialize_s": serialized,
                "serialized_bytes": size,
                "rss_after_imports_mb": after_imports,
                "peak_rss_mb": peak,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
