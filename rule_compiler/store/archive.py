"""Archives of purged rows: gzip-compressed JSON Lines, one file per organization and chunk.

A purge that archives writes each chunk of rows before it deletes them, under the organization's
folder of the administrator's storage::

    <organization>/archive/<target>/<cutoff, e.g. 20260905T031700Z>/<first key>-<last key>.jsonl.gz

A file holds one JSON object per row (dates in ISO 8601, UTC); a run carries its action results and
approvals in ``action_results`` and ``approvals``. A purge that crashed after writing a chunk and
before deleting it writes the same file again when it resumes (same cutoff, same rows, same name),
so a reader never sees a row twice. Pure: the worker passes a sink that writes through Airflow's
object storage, the CLI a :class:`FolderSink`.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

__all__ = ["ArchiveSink", "FolderSink", "archive_name", "encode_rows", "read_rows"]

#: A folder or file name part: what an organization's name and a key may hold, everything else ``-``.
_UNSAFE = re.compile(r"[^A-Za-z0-9._=@+-]+")


class ArchiveSink(Protocol):
    """Where archive files go: ``write`` stores ``data`` at ``name`` (a relative path) and says where."""

    def write(self, name: str, data: bytes) -> str: ...


class FolderSink:
    """Archive files under a local folder (``rule-compiler retention``, tests)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, name: str, data: bytes) -> str:
        """Write the file whole (a temporary file renamed into place) and return its path."""
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(data)
        os.replace(partial, path)
        return str(path)


def archive_name(organization: str, target: str, cutoff: dt.datetime, first: Any, last: Any) -> str:
    """The relative path of one chunk's file for one organization."""
    stamp = cutoff.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{_part(organization)}/archive/{target}/{stamp}/{_part(first)}-{_part(last)}.jsonl.gz"


def encode_rows(rows: Iterable[Mapping[str, Any]]) -> bytes:
    """Rows as gzip-compressed JSON Lines; the same rows always give the same bytes."""
    lines = "".join(json.dumps(row, default=_plain, sort_keys=True) + "\n" for row in rows)
    return gzip.compress(lines.encode(), mtime=0)


def read_rows(data: bytes) -> list[dict[str, Any]]:
    """The rows of one archive file (dates stay ISO 8601 text)."""
    return [json.loads(line) for line in gzip.decompress(data).decode().splitlines() if line]


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    raise TypeError(f"cannot archive a {type(value).__name__}")


def _part(value: Any) -> str:
    return _UNSAFE.sub("-", str(value))[:100] or "-"
