"""The rule store's activity methods: the automation log, memberships, organization limits, rate limits
and a health ping.

Mixed into :class:`~rule_compiler.store.rule_store.RuleStore` (one facade, kept in two files by
concern); each method is one short transaction on the store's database.
"""

from __future__ import annotations

import builtins
import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from rule_compiler.clock import utcnow
from rule_compiler.store import memberships, migrate, org_limits, rate_limits, run_queries, runs
from rule_compiler.store._db import Database
from rule_compiler.store.models import RunLog


def check_limit(limit: int) -> None:
    """Refuse a page size below one."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")


class ActivityMethods:
    """What happens around the definitions: runs and their action results, who may do what, limits."""

    _db: Database

    def start_run(
        self,
        *,
        organization: str,
        rule_name: str,
        dag_id: str,
        run_id: str,
        spec_hash: str,
        trigger_type: str,
        trigger_context: dict[str, Any],
    ) -> int:
        """Open the log of a run; a retry with the same (dag_id, run_id) gets the same id back."""
        with self._db.transaction(write=True) as conn:
            return runs.start_run(
                conn,
                organization=organization,
                rule_name=rule_name,
                dag_id=dag_id,
                run_id=run_id,
                spec_hash=spec_hash,
                trigger_type=trigger_type,
                trigger_context=trigger_context,
                now=utcnow(),
            )

    def record_evaluation(
        self,
        run_pk: int,
        *,
        trace: Any,
        matched_count: int,
        status: str,
        items: Sequence[runs.RunItem] = (),
    ) -> None:
        """Store the condition trace, match count and matched items (table, key, actor: the log's
        filters); any status but ``running`` ends the run."""
        with self._db.transaction(write=True) as conn:
            runs.record_evaluation(
                conn,
                run_pk,
                trace=trace,
                matched_count=matched_count,
                status=status,
                now=utcnow(),
                items=items,
            )

    def record_action(
        self,
        run_pk: int,
        action_id: str,
        *,
        status: str,
        output: Any = None,
        error: str | None = None,
        count_attempt: bool = True,
        started_at: dt.datetime | None = None,
    ) -> None:
        """Insert or update an action's result; ``attempts`` grows by one when ``count_attempt``;
        ``started_at``: when the recorded attempt started (for its duration in the analytics)."""
        with self._db.transaction(write=True) as conn:
            runs.record_action(
                conn,
                run_pk,
                action_id,
                status=status,
                output=output,
                error=error,
                count_attempt=count_attempt,
                now=utcnow(),
                started_at=started_at,
            )

    def finish_run(self, run_pk: int, status: str) -> None:
        """Set the run's final status and finish time."""
        with self._db.transaction(write=True) as conn:
            runs.finish_run(conn, run_pk, status, utcnow())

    def get_run(self, *, dag_id: str, run_id: str) -> RunLog | None:
        """One run with its action results, or None."""
        with self._db.transaction() as conn:
            return runs.get_run(conn, dag_id=dag_id, run_id=run_id)

    def list_runs(
        self,
        *,
        organization: str | None = None,
        rule_name: str | None = None,
        status: str | None = None,
        limit: int = 100,
    ) -> builtins.list[RunLog]:
        """The newest runs first, each with its action results."""
        check_limit(limit)
        with self._db.transaction() as conn:
            return runs.list_runs(
                conn, organization=organization, rule_name=rule_name, status=status, limit=limit
            )

    def memberships_of(self, username: str) -> builtins.list[memberships.Membership]:
        """The user's memberships, by organization."""
        with self._db.transaction(single_read=True) as conn:
            return memberships.of_user(conn, username)

    def list_memberships(self, organization: str | None = None) -> builtins.list[memberships.Membership]:
        """Memberships of one organization (or all), by organization and username."""
        with self._db.transaction(single_read=True) as conn:
            return memberships.list_memberships(conn, organization)

    def get_membership(self, organization: str, username: str) -> memberships.Membership | None:
        """One membership, or None."""
        with self._db.transaction(single_read=True) as conn:
            return memberships.get(conn, organization, username)

    def put_membership(
        self, *, organization: str, username: str, role: str, actor: str
    ) -> tuple[memberships.Membership, bool]:
        """Create or change a membership (audited); ``(membership, created)``."""
        with self._db.transaction(write=True) as conn:
            return memberships.put(
                conn, organization=organization, username=username, role=role, actor=actor, now=utcnow()
            )

    def delete_membership(self, *, organization: str, username: str, actor: str) -> None:
        """Remove a membership (audited); NotFoundError when there is none."""
        with self._db.transaction(write=True) as conn:
            memberships.delete(conn, organization=organization, username=username, actor=actor, now=utcnow())

    def organization_limits(self, organization: str) -> org_limits.OrganizationLimits:
        """The organization's limits (every field None when a platform admin never set them)."""
        with self._db.transaction() as conn:
            return org_limits.get(conn, organization)

    def all_organization_limits(self) -> builtins.list[org_limits.OrganizationLimits]:
        """The limits set for any organization, by organization."""
        with self._db.transaction() as conn:
            return org_limits.list_all(conn)

    def put_organization_limits(
        self, organization: str, changes: dict[str, int | None], *, actor: str
    ) -> org_limits.OrganizationLimits:
        """Set some of an organization's limits (audited); the others keep their value."""
        with self._db.transaction(write=True) as conn:
            return org_limits.put(conn, organization, changes, actor=actor, now=utcnow())

    def query_runs(
        self, query: run_queries.RunQuery, *, sort: str = "-started_at", limit: int = 50, offset: int = 0
    ) -> run_queries.RunPage:
        """A page of one organization's runs (see :mod:`rule_compiler.store.run_queries`)."""
        with self._db.transaction() as conn:
            return run_queries.query_runs(conn, query, sort=sort, limit=limit, offset=offset)

    def rate_limit_hit(self, key: str, *, expiry_s: float, amount: int = 1) -> tuple[int, dt.datetime]:
        """Count ``amount`` hits in the key's fixed window (see :mod:`rule_compiler.store.rate_limits`)."""
        with self._db.transaction(write=True) as conn:
            return rate_limits.hit(conn, key, expiry_s=expiry_s, amount=amount, now=utcnow())

    def rate_limit_window(self, key: str) -> tuple[int, dt.datetime] | None:
        """(hits, window end) of the key's open window, or None."""
        with self._db.transaction(single_read=True) as conn:
            return rate_limits.window(conn, key, utcnow())

    def rate_limit_clear(self, key: str | None = None) -> int:
        """Forget one key's window (None: every window); how many went."""
        with self._db.transaction(write=True) as conn:
            return rate_limits.clear(conn, key)

    def get_run_in(self, organization: str, run_pk: int) -> RunLog | None:
        """One run of ``organization`` by id, with its action results, or None."""
        with self._db.transaction() as conn:
            return run_queries.get_run_in(conn, organization, run_pk)

    def ping(self) -> str | None:
        """Reach the database (raises StoreUnavailableError); the schema revision it is at."""
        with self._db.transaction(single_read=True) as conn:
            conn.execute(sa.text("SELECT 1"))
            return migrate.current_revision(conn)
