"""The rule store's retention methods (:mod:`.purge`), mixed into
:class:`~rule_compiler.store.rule_store.RuleStore`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection
from typing import Any

import sqlalchemy as sa

from rule_compiler.retention_settings import RetentionSettings
from rule_compiler.store import purge
from rule_compiler.store._db import Database
from rule_compiler.store.archive import ArchiveSink
from rule_compiler.store.maintenance_tables import retention_marks


class RetentionMethods:
    """What the retention settings would purge, purging it, and how far each purge has gone."""

    _db: Database

    def retention_preview(
        self, settings: RetentionSettings, *, now: dt.datetime, targets: Collection[str] | None = None
    ) -> list[purge.Preview]:
        """The dry run: per target with a retention, what a purge now would delete and keep."""
        previews = []
        for target, cutoff in _due_targets(settings, now, targets):
            with self._db.transaction(single_read=True) as conn:
                previews.append(purge.preview(conn, target, cutoff))
        return previews

    def purge_expired(
        self,
        settings: RetentionSettings,
        *,
        now: dt.datetime,
        actor: str,
        sink: ArchiveSink | None = None,
        chunk: int = purge.DEFAULT_CHUNK,
        targets: Collection[str] | None = None,
        progress: Callable[[purge.PurgeResult], None] | None = None,
    ) -> list[purge.PurgeResult]:
        """Purge every target's finished rows older than its retention (archived first when ``sink``)."""
        results: list[purge.PurgeResult] = []
        for target, cutoff in _due_targets(settings, now, targets):
            for result in purge.purge(
                lambda: self._db.transaction(write=True),
                target,
                cutoff,
                now=now,
                actor=actor,
                sink=sink,
                chunk=chunk,
            ):
                results.append(result)
                if progress is not None:
                    progress(result)
        return results

    def retention_state(self) -> list[dict[str, Any]]:
        """Each purged target's last cutoff, rows purged and archived, and whether it finished."""
        with self._db.transaction(single_read=True) as conn:
            rows = conn.execute(sa.select(retention_marks).order_by(retention_marks.c.table_name))
            return [dict(row._mapping) for row in rows]


def _due_targets(
    settings: RetentionSettings, now: dt.datetime, names: Collection[str] | None
) -> list[tuple[purge.PurgeTarget, dt.datetime]]:
    if names is not None:
        unknown = set(names) - {target.name for target in purge.TARGETS}
        if unknown:
            purge.target_named(sorted(unknown)[0])  # raises, naming the known targets
    due = []
    for target in purge.TARGETS:
        cutoff = settings.cutoff(target.setting, now)
        if cutoff is not None and (names is None or target.name in names):
            due.append((target, cutoff))
    return due
