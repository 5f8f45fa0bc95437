"""Parse-time benchmark: the DAG loader against the same DAGs written by hand ("the floor").

Two ratios from one run, timed inside this process after every import (``import airflow`` alone
costs about 2 s and would hide the differences):

1. ``all``: a DagBag over a folder holding a copy of ``dags/automation_dags.py`` (the loader, which
   reads every stored spec with one query and renders it) with N stored rules, against a DagBag over a
   folder holding one generated ``.py`` file with the same N DAGs as literal ``DAG(...)`` blocks.
2. ``one``: the same loader folder while Airflow's parsing context names one DAG (the environment
   variable ``_AIRFLOW_PARSING_CONTEXT_DAG_ID``, set as at a task's start), against a file holding just
   that DAG written by hand.

The N rules are copies of the example rules in ``include/rules/`` (each renamed
``bench-NNNN-<example>``), compiled against the store as the CLI does (``compile_in``) and registered
into a fresh store (SQLite in a temporary folder, or a temporary Postgres database with ``--store-url``)
holding the demo catalog. The hand-written files are generated from the stored specs, so both sides
build the same DAGs: the run checks dag ids, task ids, operator classes, edges, timetables, DAG and
task arguments against each other and stops (exit status 2) on any difference. It also counts the
store queries of every loader parse, and at the end checks that a rule added to or deleted from the
store shows up in (or disappears from) the next parse.

Method: build everything; warm up (one untimed parse of each side, which also writes ``__pycache__``
and the loader's snapshot, as the DAG processor's first parse would); then time ``--repeat``
alternating parses of each side with ``DagBag(dag_folder=...)``, collecting garbage before each.
ratio = median(loader) / median(floor); target 1.1.

    .venv/bin/python benchmarks/parse.py                 # 1,000 rules, 5 repetitions, SQLite
    .venv/bin/python benchmarks/parse.py --rules 200 --repeat 9 --profile 25
    .venv/bin/python benchmarks/parse.py --store-url postgresql+psycopg2://postgres@127.0.0.1:5432/postgres
    .venv/bin/python benchmarks/parse.py --json                       # JSON on stdout instead of the table
    .venv/bin/python benchmarks/parse.py --json result.json           # the table, and JSON into a file

Progress goes to stderr; the table (or ``--json -``) to stdout.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench_common import add_json_option, emit, progress
from parse_floor import compare_bags, write_hand_written
from parse_report import table
from parse_store import build_store, check_store_is_reread, rule_store_database

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "plugins"
LOADER_FILE = ROOT / "dags" / "automation_dags.py"
PARSING_CONTEXT_ENV = "_AIRFLOW_PARSING_CONTEXT_DAG_ID"
TARGET = 1.1
SPEC_TABLE = "compiled_specs"

# -- arguments ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rules", type=int, default=1000, help="stored rules (and DAGs) to parse (1000)")
    parser.add_argument("--repeat", type=int, default=5, help="timed parses of each side per case (5)")
    parser.add_argument(
        "--store-url",
        help="rule store server: a postgresql URL (a temporary database is created on that server and "
        "dropped at the end), or a sqlite URL of a file that does not exist yet; default: a temporary "
        "SQLite file",
    )
    add_json_option(parser)
    parser.add_argument(
        "--profile",
        type=int,
        nargs="?",
        const=25,
        default=0,
        metavar="LINES",
        help="after timing, cProfile (CPU time) 3 parses of each side of each case; print the top LINES (25)",
    )
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="compile the DAG files from source on every parse (default: cache their bytecode, as a DAG "
        "processor with a writable dags folder does, whatever PYTHONDONTWRITEBYTECODE says; the cache "
        "goes into the temporary folder)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (and database)")
    args = parser.parse_args(argv)
    if args.rules < 1:
        parser.error("--rules must be at least 1")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


# -- environment (before anything imports airflow) ---------------------------------------------------


def prepare_environment(work: Path, store_url: str) -> None:
    """Airflow and the rule store point into ``work``; must run before ``import airflow``."""
    if "airflow" in sys.modules:
        raise RuntimeError("airflow was imported before the benchmark set its environment; run it alone")
    home = work / "airflow_home"
    home.mkdir(parents=True, exist_ok=True)
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(PLUGINS)
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(work / "loader")
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    os.environ["AUTOMATION_STORE_URL"] = store_url
    os.environ["AUTOMATION_SNAPSHOT_PATH"] = str(work / "specs-snapshot.json")
    os.environ.pop(PARSING_CONTEXT_ENV, None)
    for path in (str(PLUGINS), str(ROOT)):
        if path not in sys.path:
            sys.path.insert(0, path)


# -- timing ------------------------------------------------------------------------------------------------


class QueryCounter:
    """Counts the reads of compiled specs: SQLAlchemy statements on the compiled specs table (server
    databases), the raw read-only ``sqlite3`` reads of the SQLite fast path, and hits of the per-DAG
    cache files that a named-DAG parse reads instead of the store."""

    def __init__(self) -> None:
        import sqlalchemy as sa

        from rule_compiler.store import specs

        self.count = 0
        sa.event.listen(sa.Engine, "before_cursor_execute", self._seen)
        raw_read = specs.loadable_specs_sqlite

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return raw_read(*args, **kwargs)

        specs.loadable_specs_sqlite = counted  # type: ignore[assignment]

        from rule_compiler.store import snapshot

        cache_read = snapshot.read_dag_entry

        def counted_cache(*args: Any, **kwargs: Any) -> Any:
            entry = cache_read(*args, **kwargs)
            self.count += entry is not None
            return entry

        snapshot.read_dag_entry = counted_cache  # type: ignore[assignment]

    def _seen(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if SPEC_TABLE in statement and statement.lstrip().upper().startswith("SELECT"):
            self.count += 1


@dataclass
class Side:
    """One side of one case: what to parse, and what its parses took and found."""

    name: str
    folder: Path
    times: list[float] = field(default_factory=list)
    cpu_times: list[float] = field(default_factory=list)
    dag_counts: list[int] = field(default_factory=list)
    spec_queries: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "median_s": statistics.median(self.times),
            "min_s": min(self.times),
            "max_s": max(self.times),
            "times_s": self.times,
            "cpu_median_s": statistics.median(self.cpu_times),
            "cpu_times_s": self.cpu_times,
            "dags_found": self.dag_counts,
            "spec_queries_per_parse": self.spec_queries,
        }


def parse(folder: Path) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(folder))


def timed_parse(side: Side, counter: QueryCounter) -> Any:
    gc.collect()
    before = counter.count
    start, cpu_start = time.perf_counter(), time.process_time()
    bag = parse(side.folder)
    side.times.append(time.perf_counter() - start)
    side.cpu_times.append(time.process_time() - cpu_start)
    side.spec_queries.append(counter.count - before)
    side.dag_counts.append(len(bag.dags))
    return bag


@contextmanager
def parsing_context(dag_id: str | None) -> Iterator[None]:
    old = os.environ.pop(PARSING_CONTEXT_ENV, None)
    if dag_id is not None:
        os.environ[PARSING_CONTEXT_ENV] = dag_id
    try:
        yield
    finally:
        os.environ.pop(PARSING_CONTEXT_ENV, None)
        if old is not None:
            os.environ[PARSING_CONTEXT_ENV] = old


@contextmanager
def env_override(name: str, value: Path | None) -> Iterator[None]:
    """Set an environment variable for a block (None: leave it as it is)."""
    old = os.environ.get(name)
    if value is not None:
        os.environ[name] = str(value)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def run_case(
    case: str, context_dag_id: str | None, *, loader: Side, floor: Side, repeat: int, counter: QueryCounter
) -> dict[str, Any]:
    with parsing_context(context_dag_id):
        progress(f"{case}: warm-up parse of each side (untimed), then comparing what they built")
        loader_bag, floor_bag = parse(loader.folder), parse(floor.folder)
        checks = compare_bags(loader_bag, floor_bag, case)
        del loader_bag, floor_bag
        progress(f"{case}: both sides built the same {checks['dags']} DAGs ({checks['tasks']} tasks)")
        for rep in range(repeat):
            for side in (loader, floor) if rep % 2 == 0 else (floor, loader):
                bag = timed_parse(side, counter)
                del bag
            progress(
                f"{case}: repetition {rep + 1}/{repeat}: loader {loader.times[-1]:.3f} s, "
                f"floor {floor.times[-1]:.3f} s"
            )
    if any(count < 1 for count in loader.spec_queries):
        raise SystemExit(f"{case}: a timed loader parse read no spec: {loader.spec_queries}")
    if any(count != checks["dags"] for count in loader.dag_counts + floor.dag_counts):
        raise SystemExit(
            f"{case}: a timed parse found another number of DAGs: {loader.dag_counts} {floor.dag_counts}"
        )
    ratio = statistics.median(loader.times) / statistics.median(floor.times)
    cpu_ratio = statistics.median(loader.cpu_times) / statistics.median(floor.cpu_times)
    return {
        "case": case,
        "parsing_context_dag_id": context_dag_id,
        "loader": loader.summary(),
        "floor": floor.summary(),
        **checks,
        "ratio": ratio,
        "cpu_ratio": cpu_ratio,
        "target": TARGET,
        "verdict": "PASS" if ratio <= TARGET else "FAIL",
    }


PROFILED_PARSES = 3


def profile_parse(folder: Path, lines: int, title: str, context_dag_id: str | None) -> dict[str, float]:
    """cProfile a few parses with a CPU-time clock (other load on the machine distorts a wall clock);
    print the top functions; per-parse cumulative CPU seconds of the functions that matter."""
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile(time.process_time)
    with parsing_context(context_dag_id):
        for _ in range(PROFILED_PARSES):
            gc.collect()
            profiler.enable()
            parse(folder)
            profiler.disable()
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    stats.sort_stats("cumulative").print_stats(lines)
    stats.sort_stats("tottime").print_stats(lines)
    print(
        f"\n===== cProfile, CPU time, {PROFILED_PARSES} parses: {title} =====\n{stream.getvalue()}",
        file=sys.stderr,
    )
    wanted = {
        ("loader.py", "build_dags"): "loader: build_dags (everything the loader does)",
        ("snapshot.py", "load_specs"): "  store read: load_specs (query + snapshot check)",
        ("store.py", "loadable_specs"): "    RuleStore.loadable_specs (engine, connect, query)",
        ("snapshot.py", "write_snapshot"): "    write_snapshot (state hash, maybe rewrite)",
        ("main.py", "model_validate_json"): "  spec JSON -> DagSpec (pydantic)",
        ("dag.py", "render_dag"): "  render_dag (DAG + operators)",
        ("dagbag.py", "bag_dag"): "DagBag.bag_dag (validation of all DAGs)",
    }
    found: dict[str, float] = dict.fromkeys(wanted.values(), 0.0)
    for (filename, _, function), (_, _, _, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        label = wanted.get((Path(filename).name, function))
        if label is not None:
            found[label] += cumulative / PROFILED_PARSES
    total = stats.total_tt / PROFILED_PARSES  # type: ignore[attr-defined]
    print(
        f"--- {title}: {total:.3f} s CPU per parse under the profiler (inflated by it alike on both sides: "
        "compare shares)",
        file=sys.stderr,
    )
    for label, spent in found.items():
        print(f"    {label:<54} {spent:7.3f} s ({spent / total:5.1%})", file=sys.stderr)
    return {"total_s": total, **found}


def loader_only_steps(context_dag_id: str | None, repeat: int) -> dict[str, float]:
    """The loader's own steps (what the floor does not do), timed directly: median seconds of ``repeat``."""
    from rule_compiler.compiler import DagSpec
    from rule_compiler.settings import snapshot_path
    from rule_compiler.store import RuleStore
    from rule_compiler.store.snapshot import load_specs

    reads, validations = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        load = load_specs(RuleStore(), snapshot_path(), context_dag_id)  # a new store, as every parse makes
        reads.append(time.perf_counter() - start)
        start = time.perf_counter()
        for row in load.specs:
            DagSpec.model_validate_json(row.spec_json)
        validations.append(time.perf_counter() - start)
    return {
        "store_read_median_s": statistics.median(reads),
        "spec_validation_median_s": statistics.median(validations),
    }


# -- main ------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="parse-bench-"))
    progress(f"working in {work}")
    try:
        with rule_store_database(args.store_url, work, keep=args.keep) as store_url:
            result = run(args, work, store_url)
    finally:
        if args.keep:
            progress(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    emit(result, args.json, table)
    return result


def run(args: argparse.Namespace, work: Path, store_url: str) -> dict[str, Any]:
    prepare_environment(work, store_url)
    progress("importing airflow and the rule engine")
    import airflow
    import sqlalchemy as sa
    from rule_engine import loader as _loader  # noqa: F401 - imported before timing, like DagBag itself

    setup: dict[str, Any] = {
        "rules": args.rules,
        "repeat": args.repeat,
        "store_backend": sa.make_url(store_url).get_backend_name(),
        "python": platform.python_version(),
        "airflow": airflow.__version__,
        "bytecode_cache": not args.no_bytecode_cache,
    }
    progress(f"building a {setup['store_backend']} store with {args.rules} rules")
    start = time.perf_counter()
    store, dag_ids = build_store(store_url, args.rules)
    setup["build_store_s"] = time.perf_counter() - start
    specs = store.loadable_specs()
    if sorted(dag_ids) != [row.dag_id for row in specs]:
        raise SystemExit("the store does not hold exactly the registered rules")

    loader_folder = work / "loader"
    loader_folder.mkdir()
    shutil.copy2(LOADER_FILE, loader_folder / LOADER_FILE.name)
    progress("generating the hand-written DAG files from the stored specs")
    start = time.perf_counter()
    setup["floor_all_bytes"] = write_hand_written(
        work / "floor_all" / "hand_written_dags.py", specs, f"{len(specs)} automation DAGs, written by hand."
    )
    one = _pick_one(specs)
    setup["floor_one_bytes"] = write_hand_written(
        work / "floor_one" / "hand_written_dag.py",
        [one],
        f"The automation DAG {one.dag_id}, written by hand.",
    )
    setup["generate_s"] = time.perf_counter() - start
    progress(f"  {setup['floor_all_bytes']:,} bytes for all DAGs; {setup['floor_one_bytes']:,} bytes for one")

    # The floor's generated file is megabytes of literals: compiling it on every parse would make the
    # floor slow and the ratio flattering, so bytecode is cached whatever PYTHONDONTWRITEBYTECODE says
    # (importlib reads both settings each time it could write a .pyc) -- into the temporary folder, so
    # that nothing is written into the repository or the virtualenv.
    sys.pycache_prefix = str(work / "pycache")
    sys.dont_write_bytecode = args.no_bytecode_cache
    counter = QueryCounter()
    cases = []
    for case, context_dag_id, floor_folder, snapshot_path in (
        ("all", None, "floor_all", None),
        ("one", one.dag_id, "floor_one", None),  # reads the per-DAG cache the full parse wrote
        ("one-store", one.dag_id, "floor_one", work / "no-cache" / "snapshot.json"),  # no cache: the store
    ):
        with env_override("AUTOMATION_SNAPSHOT_PATH", snapshot_path):
            cases.append(
                run_case(
                    case,
                    context_dag_id,
                    loader=Side("loader", loader_folder),
                    floor=Side("floor", work / floor_folder),
                    repeat=args.repeat,
                    counter=counter,
                )
            )
    progress("timing the loader's own steps directly (store read, spec validation)")
    for case in cases:
        case["loader_only_steps"] = loader_only_steps(case["parsing_context_dag_id"], max(args.repeat, 5))
    setup["bytecode_cached"] = {
        name: Path(importlib.util.cache_from_source(str(path))).exists()
        for name, path in (
            ("floor_all", work / "floor_all" / "hand_written_dags.py"),
            ("floor_one", work / "floor_one" / "hand_written_dag.py"),
            ("loader", loader_folder / LOADER_FILE.name),
        )
    }
    result: dict[str, Any] = {"setup": setup, "cases": cases}
    if args.profile:
        result["profile"] = {
            "all/loader": profile_parse(loader_folder, args.profile, "all: loader", None),
            "all/floor": profile_parse(work / "floor_all", args.profile, "all: floor", None),
            "one/loader": profile_parse(loader_folder, args.profile, "one: loader", one.dag_id),
            "one/floor": profile_parse(work / "floor_one", args.profile, "one: floor", one.dag_id),
        }
    progress("checking that the loader follows the store (add a rule, parse, delete it, parse)")
    result["store_reread_check"] = check_store_is_reread(store, loader_folder, args.rules, parse)
    store.close()
    return result


def _pick_one(specs: list[Any]) -> Any:
    """The middle stored spec with the most tasks (an ``escalate-vip-orders`` copy)."""
    most = max(spec.spec_json.count('"task_id"') for spec in specs)
    candidates = [spec for spec in specs if spec.spec_json.count('"task_id"') == most]
    return candidates[len(candidates) // 2]


if __name__ == "__main__":
    main()
