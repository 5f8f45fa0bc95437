"""The DAG loader's last-known-good copy of the compiled specs, so a store outage never empties Airflow.

Each successful full load refreshes a snapshot file; when the store fails, the loader serves the
snapshot instead. The file is two lines: a small JSON header, then the specs as one JSON array::

    {"body_bytes": 5242880, "body_sha256": "...", "count": 1000, "format": 1, "state": "...", ...}
    [{"active": true, "dag_id": "...", "spec_hash": "...", "spec_json": "..."}, ...]

``state`` hashes the (dag_id, spec_hash, active) triples: comparing it with the header of the file
on disk tells whether anything changed without serializing or rereading 1,000 specs on every parse,
so an unchanged store never rewrites the file. ``body_sha256`` lets a reader refuse a torn or
edited file. Writes go to a temporary file in the same folder, then ``os.replace``.

Beside it, a folder ``<snapshot>.d/`` holds one small file per DAG, refreshed with the snapshot.
When Airflow's parsing context names one DAG (a task is starting) the loader reads that file instead
of the store: it is the spec the DAG processor last rendered, i.e. the version Airflow serialized and
is running, and reading it costs a tenth of opening the store. A missing or unreadable file falls
back to the store. (A run still executes the spec version it started with: the action tasks check
the hash the run recorded.)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from rule_compiler.clock import utcnow
from rule_compiler.errors import StoreError
from rule_compiler.store._json import canonical_json, content_hash
from rule_compiler.store.models import SpecRow

if TYPE_CHECKING:
    from rule_compiler.store.rule_store import RuleStore

log = logging.getLogger(__name__)

SNAPSHOT_FORMAT = 1
SNAPSHOT_MODE = 0o644


@dataclass(frozen=True)
class SpecLoad:
    """What the loader renders, and where it came from (``error`` says why it is not the store)."""

    specs: list[SpecRow]
    source: Literal["store", "dag-cache", "snapshot", "empty"]
    error: str | None


def load_specs(
    store: RuleStore | None, snapshot_path: str | os.PathLike[str], dag_id: str | None = None
) -> SpecLoad:
    """Specs from the store (refreshing the snapshot on a full load), else from the snapshot. Never raises
    for a store failure or a bad snapshot: ``source`` is then ``snapshot`` or ``empty``. Without a
    ``store``, the default one is opened only if the per-DAG file cannot serve ``dag_id``."""
    path = Path(snapshot_path)
    if dag_id is not None:
        entry = read_dag_entry(path, dag_id)
        if entry is not None:
            return SpecLoad([entry], "dag-cache", None)
    if store is None:
        from rule_compiler.store.rule_store import RuleStore

        store = RuleStore()
    try:
        specs = store.loadable_specs(dag_id)
    except StoreError as exc:
        error = str(exc)
        try:
            cached = read_snapshot(path)
        except FileNotFoundError:
            return SpecLoad([], "empty", f"{error}; no snapshot at {path}")
        except (OSError, ValueError) as bad:
            return SpecLoad([], "empty", f"{error}; the snapshot {path} is unusable: {bad}")
        if dag_id is not None:
            cached = [spec for spec in cached if spec.dag_id == dag_id]
        return SpecLoad(cached, "snapshot", error)
    if dag_id is None:
        try:
            write_snapshot(path, specs)
        except OSError as exc:
            log.warning("could not write the spec snapshot %s: %s", path, exc)
    return SpecLoad(specs, "store", None)


def _state(specs: list[SpecRow]) -> str:
    return content_hash([[spec.dag_id, spec.spec_hash, spec.active, spec.pool] for spec in specs])


def _header_state(path: Path) -> str | None:
    """The ``state`` of the file on disk, if its header is sound and its size is what it says."""
    try:
        with path.open("rb") as file:
            line = file.readline()
            size = os.fstat(file.fileno()).st_size
        header = json.loads(line)
    except (OSError, ValueError):
        return None
    if not isinstance(header, dict) or header.get("format") != SNAPSHOT_FORMAT:
        return None
    if size != len(line) + header.get("body_bytes", -1):
        return None
    state = header.get("state")
    return state if isinstance(state, str) else None


def write_snapshot(path: Path, specs: list[SpecRow]) -> bool:
    """Write the snapshot atomically unless the file on disk already holds these specs; True if written."""
    state = _state(specs)
    if _header_state(path) == state and dag_entries_folder(path).is_dir():
        return False
    rows = [
        {
            "active": spec.active,
            "dag_id": spec.dag_id,
            "spec_hash": spec.spec_hash,
            "spec_json": spec.spec_json,
            **({"pool": spec.pool} if spec.pool is not None else {}),
        }
        for spec in specs
    ]
    body = canonical_json(rows).encode("utf-8")
    header = {
        "body_bytes": len(body),
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "count": len(rows),
        "format": SNAPSHOT_FORMAT,
        "state": state,
        "written_at": utcnow().isoformat(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(path, canonical_json(header).encode("utf-8") + b"\n" + body)
    _write_dag_entries(path, rows)
    return True


def _write_atomically(path: Path, data: bytes) -> None:
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temp_name, SNAPSHOT_MODE)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def dag_entries_folder(snapshot_path: Path) -> Path:
    """Where the per-DAG files live: ``<snapshot>.d/``."""
    return snapshot_path.with_name(snapshot_path.name + ".d")


def _entry_name(dag_id: str) -> str | None:
    safe = dag_id and not dag_id.startswith(".") and all(c.isalnum() or c in "-_." for c in dag_id)
    return f"{dag_id}.json" if safe else None


def _write_dag_entries(snapshot_path: Path, rows: list[dict[str, Any]]) -> None:
    folder = dag_entries_folder(snapshot_path)
    folder.mkdir(parents=True, exist_ok=True)
    wanted: set[str] = set()
    for row in rows:
        name = _entry_name(row["dag_id"])
        if name is None:
            continue
        wanted.add(name)
        data = canonical_json(row).encode("utf-8")
        target = folder / name
        try:
            if target.read_bytes() == data:
                continue
        except OSError:
            pass
        _write_atomically(target, data)
    for stale in folder.glob("*.json"):
        if stale.name not in wanted:
            stale.unlink(missing_ok=True)


def read_dag_entry(snapshot_path: Path, dag_id: str) -> SpecRow | None:
    """One DAG's spec from the per-DAG files, or None when it is missing or unreadable."""
    name = _entry_name(dag_id)
    if name is None:
        return None
    try:
        row = _row(json.loads((dag_entries_folder(snapshot_path) / name).read_bytes()), 0)
    except (OSError, ValueError):
        return None
    return row if row.dag_id == dag_id else None


def read_snapshot(path: Path) -> list[SpecRow]:
    """The specs in a snapshot file; ValueError when it is corrupt, FileNotFoundError when missing."""
    data = path.read_bytes()
    head, newline, body = data.partition(b"\n")
    if not newline:
        raise ValueError("it has no header line (truncated?)")
    try:
        header = json.loads(head)
    except ValueError as exc:
        raise ValueError(f"its header is not JSON ({exc})") from exc
    if not isinstance(header, dict) or header.get("format") != SNAPSHOT_FORMAT:
        raise ValueError(f"unknown snapshot format (expected format {SNAPSHOT_FORMAT})")
    if hashlib.sha256(body).hexdigest() != header.get("body_sha256"):
        raise ValueError("its content does not match its checksum (torn or edited file)")
    rows: Any = json.loads(body)
    if not isinstance(rows, list):
        raise ValueError("its body is not a list of specs")
    return [_row(row, index) for index, row in enumerate(rows)]


def _row(row: Any, index: int) -> SpecRow:
    if not isinstance(row, dict):
        raise ValueError(f"spec #{index} is not an object")
    dag_id, spec_json, spec_hash, active = (
        row.get(k) for k in ("dag_id", "spec_json", "spec_hash", "active")
    )
    if not (isinstance(dag_id, str) and isinstance(spec_json, str) and isinstance(spec_hash, str)):
        raise ValueError(f"spec #{index} lacks dag_id, spec_json or spec_hash")
    if not isinstance(active, bool):
        raise ValueError(f"spec #{index} has no boolean 'active'")
    pool = row.get("pool")
    if pool is not None and not isinstance(pool, str):
        raise ValueError(f"spec #{index} has a 'pool' that is not a name")
    return SpecRow(dag_id, spec_json, spec_hash, active, pool)
