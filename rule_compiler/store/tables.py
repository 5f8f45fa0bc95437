"""The rule store's tables, as SQLAlchemy Core metadata used by the queries.

The DDL itself lives in the Alembic migrations (``migrations/versions``), which are frozen history;
``tests/store/test_store_migrations.py`` proves this module and the migrated database agree. JSON is TEXT
holding canonical JSON, and every timestamp is a timezone-aware UTC :class:`UtcDateTime`.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from rule_compiler.definitions.report import DELIVERY_TYPES
from rule_compiler.store._db import UtcDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
AUDIT_ACTIONS = ("create", "update", "activate", "deactivate", "delete", "catalog")
RUN_STATUSES = ("running", "no_match", "success", "failed", "partial")
ACTION_STATUSES = ("success", "failed", "skipped", "running", "retrying")
APPROVAL_STATUSES = ("waiting", "approved", "rejected", "timed_out", "cancelled")
APPROVAL_VIAS = ("rest", "airflow", "timeout", "cancel")

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

# BIGINT on Postgres; SQLite only auto-increments an INTEGER PRIMARY KEY.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Name = sa.String(200)
Hash = sa.String(128)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


definitions = sa.Table(
    "definitions",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("organization", Name, nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("name", Name, nullable=False),
    sa.Column("dag_id", sa.String(250), nullable=False),
    sa.Column("active", sa.Boolean(), nullable=False),
    sa.Column("current_version", sa.Integer(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("deleted_at", UtcDateTime(), nullable=True),
    sa.Column("trigger_type", sa.String(64), nullable=True),  # the current version's trigger.type
    sa.UniqueConstraint("organization", "kind", "name"),
    sa.UniqueConstraint("dag_id"),
    # The REST view's listings: one organization's definitions of a kind, filtered and sorted.
    sa.Index(None, "organization", "kind", "trigger_type"),
    sa.Index(None, "organization", "kind", "created_at"),
    sa.Index(None, "organization", "kind", "updated_at"),
)

definition_versions = sa.Table(
    "definition_versions",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("definition_id", Id, sa.ForeignKey("definitions.id"), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("source_json", sa.Text(), nullable=False),
    sa.Column("source_hash", Hash, nullable=False),
    sa.Column("actor", Name, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("definition_id", "version"),
)

compiled_specs = sa.Table(
    "compiled_specs",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("definition_id", Id, sa.ForeignKey("definitions.id"), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("dag_id", sa.String(250), nullable=False),
    sa.Column("spec_json", sa.Text(), nullable=False),
    sa.Column("spec_hash", Hash, nullable=False, index=True),
    sa.Column("compiler_version", sa.String(64), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("definition_id", "version"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("organization", Name, nullable=False),
    sa.Column("actor", Name, nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("name", Name, nullable=False),
    sa.Column("version", sa.Integer(), nullable=True),
    sa.Column("hash_before", Hash, nullable=True),
    sa.Column("hash_after", Hash, nullable=True),
    sa.Column("detail_json", sa.Text(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.CheckConstraint(_one_of("action", AUDIT_ACTIONS), name="action"),
    sa.Index(None, "organization", "id"),
)

catalogs = sa.Table(
    "catalogs",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("organization", Name, nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("catalog_json", sa.Text(), nullable=False),
    sa.Column("catalog_hash", Hash, nullable=False),
    sa.Column("actor", Name, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("organization", "version"),
)

automation_runs = sa.Table(
    "automation_runs",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("organization", Name, nullable=False),
    sa.Column("rule_name", Name, nullable=False),
    sa.Column("dag_id", sa.String(250), nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("spec_hash", Hash, nullable=False),
    sa.Column("trigger_type", sa.String(32), nullable=False),
    sa.Column("trigger_context_json", sa.Text(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("matched_count", sa.Integer(), nullable=False),
    sa.Column("trace_json", sa.Text(), nullable=True),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("finished_at", UtcDateTime(), nullable=True),
    sa.Column("cancelled_at", UtcDateTime(), nullable=True),  # migration 0007: a cancel over REST
    sa.Column("cancelled_by", Name, nullable=True),
    sa.Column("evaluated_count", sa.Integer(), nullable=True),  # migration 0008: items tested
    sa.Column("acted_count", sa.Integer(), nullable=True),  # items the actions acted on (at the finish)
    sa.Column(
        "ignored_count", sa.Integer(), nullable=True
    ),  # migration 0014: events a `fields:` filter dropped
    sa.UniqueConstraint("dag_id", "run_id"),
    sa.CheckConstraint(_one_of("status", RUN_STATUSES), name="status"),
    sa.Index(None, "organization", "rule_name", "started_at"),
    sa.Index(None, "status"),
    sa.Index(None, "dag_id", "started_at"),  # migration 0015: a DAG's last run (the definitions board)
)

automation_action_results = sa.Table(
    "automation_action_results",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("run_pk", Id, sa.ForeignKey("automation_runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("action_id", Name, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("output_json", sa.Text(), nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("started_at", UtcDateTime(), nullable=True),  # migration 0008: the recorded attempt's start
    sa.UniqueConstraint("run_pk", "action_id"),
    sa.CheckConstraint(_one_of("status", ACTION_STATUSES), name="status"),
)

webhook_deliveries = sa.Table(
    "rule_engine_webhook_deliveries",
    metadata,
    sa.Column("idempotency_key", sa.String(64), primary_key=True),
    sa.Column("rule_id", sa.String(200), nullable=False),
    sa.Column("action_id", sa.String(100), nullable=False),
    sa.Column("occurrence_id", sa.String(250), nullable=False),
    sa.Column("row_key", sa.Text, nullable=True),
    sa.Column("status", sa.String(20), nullable=False),  # sending | delivered | retrying | failed
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("response_status", sa.Integer, nullable=True),
    sa.Column("response_body", sa.Text, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("organization", Name, nullable=True),
    sa.Column("request_json", sa.Text, nullable=True),  # method, url, headers (unsigned), body
)

#: sending → sent | retrying | failed; muted (preference); deferred (quiet hours, ``deliver_after``);
#: digest (waiting for the recipient's daily digest) → digested.
DELIVERY_STATUSES = ("sending", "sent", "retrying", "failed", "muted", "deferred", "digest", "digested")
DIGEST_MODES = ("off", "daily")

notification_deliveries = sa.Table(
    "notification_deliveries",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("idempotency_key", sa.String(64), nullable=False, unique=True),
    sa.Column("organization", Name, nullable=False),
    sa.Column("rule_id", Name, nullable=False),
    sa.Column("action_id", sa.String(100), nullable=False),
    sa.Column("occurrence_id", sa.String(250), nullable=False),
    sa.Column("row_key", sa.Text, nullable=True),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("recipient", sa.String(320), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("message_json", sa.Text, nullable=True),  # the rendered message while it waits
    sa.Column("deliver_after", UtcDateTime(), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("sent_at", UtcDateTime(), nullable=True),
    sa.CheckConstraint(_one_of("status", DELIVERY_STATUSES), name="status"),
    sa.Index(None, "status", "deliver_after"),
    sa.Index(None, "organization", "recipient", "status"),
)

notification_inbox = sa.Table(
    "notification_inbox",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("idempotency_key", sa.String(64), nullable=False, unique=True),
    sa.Column("organization", Name, nullable=False),
    sa.Column("recipient", sa.String(320), nullable=False),
    sa.Column("rule_id", Name, nullable=True),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("read_at", UtcDateTime(), nullable=True),
    sa.Index(None, "organization", "recipient", "read_at"),
)

notification_preferences = sa.Table(
    "notification_preferences",
    metadata,
    sa.Column("organization", Name, primary_key=True),
    sa.Column("recipient", sa.String(320), primary_key=True),
    sa.Column("muted_channels_json", sa.Text, nullable=False),
    sa.Column("quiet_start", sa.String(5), nullable=True),  # "22:00", local to ``timezone``
    sa.Column("quiet_end", sa.String(5), nullable=True),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("digest", sa.String(8), nullable=False),
    sa.Column("digest_hour", sa.Integer, nullable=False),
    sa.Column("updated_by", Name, nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.CheckConstraint(_one_of("digest", DIGEST_MODES), name="digest"),
)

MEMBERSHIP_ROLES = ("viewer", "editor", "admin")

memberships = sa.Table(
    "memberships",
    metadata,
    sa.Column("organization", Name, primary_key=True),
    sa.Column("username", Name, primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("updated_by", Name, nullable=False),
    sa.CheckConstraint(_one_of("role", MEMBERSHIP_ROLES), name="role"),
    sa.Index(None, "username"),
)

#: What the platform admins allow each organization (docs/production.md, "Sharing the cluster"): the
#: size of its Airflow pool (NULL until the pool is provisioned), and quotas (NULL: no limit).
organization_limits = sa.Table(
    "organization_limits",
    metadata,
    sa.Column("organization", Name, primary_key=True),
    sa.Column("pool_slots", sa.Integer, nullable=True),
    sa.Column("max_active_definitions", sa.Integer, nullable=True),
    sa.Column("events_per_minute", sa.Integer, nullable=True),
    sa.Column("updated_by", Name, nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

# The REST view's log queries: one organization's runs, newest first, optionally by status.
sa.Index(None, automation_runs.c.organization, automation_runs.c.started_at)
sa.Index(None, automation_runs.c.organization, automation_runs.c.status, automation_runs.c.started_at)

#: The REST view's per-user rate limits: one fixed-window counter per key, shared by every worker.
api_rate_limits = sa.Table(
    "api_rate_limits",
    metadata,
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("hits", sa.Integer(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
)

# -- the report execution log (``kind: report``) ----------------------------------------------------

REPORT_RUN_STATUSES = ("running", "success", "partial", "skipped-empty", "not-triggered", "error")
REPORT_DELIVERY_STATUSES = ("sending", "sent", "retrying", "failed")
REPORT_DELIVERY_TYPES = DELIVERY_TYPES

report_runs = sa.Table(
    "report_runs",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("organization", Name, nullable=False),
    sa.Column("report_name", Name, nullable=False),
    sa.Column("dag_id", sa.String(250), nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("spec_hash", Hash, nullable=False),
    sa.Column("interval_start", UtcDateTime(), nullable=False),
    sa.Column("interval_end", UtcDateTime(), nullable=False),
    sa.Column("logical_date", UtcDateTime(), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("parameters_json", sa.Text, nullable=False),
    sa.Column("queries_json", sa.Text, nullable=True),  # {query id: {rows, truncated, seconds}}
    sa.Column("files_json", sa.Text, nullable=True),  # {format: {file, bytes, seconds}}
    sa.Column("steps_json", sa.Text, nullable=True),  # {task id: seconds}
    sa.Column("alert_json", sa.Text, nullable=True),  # {holds, reason, suppressed}
    sa.Column("alert_digest", Hash, nullable=True),  # the checked value's digest ("changed" compares it)
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("finished_at", UtcDateTime(), nullable=True),
    sa.UniqueConstraint("dag_id", "run_id"),
    sa.CheckConstraint(_one_of("status", REPORT_RUN_STATUSES), name="status"),
    sa.Index(None, "organization", "report_name", "started_at"),
    sa.Index(None, "organization", "report_name", "interval_end"),
)

report_deliveries = sa.Table(
    "report_deliveries",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("idempotency_key", sa.String(64), nullable=False, unique=True),
    sa.Column("organization", Name, nullable=False),
    sa.Column("report_id", Name, nullable=False),
    sa.Column("interval_end", UtcDateTime(), nullable=False),
    sa.Column("delivery_index", sa.Integer, nullable=False),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("target", sa.String(500), nullable=False),  # "3 recipients", a connection, a location
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),  # the run that attempted it last
    sa.Column("detail_json", sa.Text, nullable=True),  # files delivered, where
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("sent_at", UtcDateTime(), nullable=True),
    sa.CheckConstraint(_one_of("status", REPORT_DELIVERY_STATUSES), name="status"),
    sa.CheckConstraint(_one_of("type", REPORT_DELIVERY_TYPES), name="type"),
    sa.Index(None, "report_id", "interval_end"),
)

report_alerts = sa.Table(
    "report_alerts",
    metadata,
    sa.Column("report_id", Name, primary_key=True),
    sa.Column("organization", Name, nullable=False),
    sa.Column("last_sent_interval_end", UtcDateTime(), nullable=False),
    sa.Column("last_digest", Hash, nullable=True),
    sa.Column("last_run_id", sa.String(250), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

workflow_approvals = sa.Table(
    "workflow_approvals",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("organization", Name, nullable=False),
    sa.Column("workflow", Name, nullable=False),
    sa.Column("dag_id", sa.String(250), nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("node_id", Name, nullable=False),
    sa.Column("run_pk", Id, sa.ForeignKey("automation_runs.id", ondelete="CASCADE"), nullable=True),
    sa.Column("assignees_json", sa.Text(), nullable=False),
    sa.Column("subject", sa.Text(), nullable=False),  # rendered from the item: shown to members only
    sa.Column("body", sa.Text(), nullable=True),
    sa.Column("items_json", sa.Text(), nullable=False),
    sa.Column("item_count", sa.Integer(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("on_timeout", sa.String(16), nullable=False),
    sa.Column("deadline", UtcDateTime(), nullable=True),
    sa.Column("answered_by", Name, nullable=True),
    sa.Column("answered_via", sa.String(16), nullable=True),
    sa.Column("comment", sa.Text(), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("answered_at", UtcDateTime(), nullable=True),
    sa.UniqueConstraint("dag_id", "run_id", "node_id"),
    sa.CheckConstraint(_one_of("status", APPROVAL_STATUSES), name="status"),
    sa.Index(None, "organization", "status"),
    sa.Index(None, "run_pk"),  # migration 0009: a purged run's approvals
)

# -- analytics rollups (migration 0008, ADR 0012) ----------------------------------------------------
# Hourly sums kept in the transaction that changes a run or an action result: the analytics queries
# read these, never the raw log. ``step`` is an action's or node's id; "" stands for the whole run.

BigCount = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


#: Each share is kept per hour and per day: a month by day reads 30 rows per definition, not 720.
ROLLUP_GRAINS = ("hour", "day")


def _rollup_keys() -> list[sa.Column[Any]]:
    return [
        sa.Column("organization", Name, primary_key=True),
        sa.Column("kind", sa.String(64), primary_key=True),
        sa.Column("name", Name, primary_key=True),
        sa.Column("grain", sa.String(4), primary_key=True),  # ROLLUP_GRAINS
        sa.Column("bucket", UtcDateTime(), primary_key=True),  # the hour or day the run started in (UTC)
    ]


analytics_runs = sa.Table(
    "analytics_runs",
    metadata,
    *_rollup_keys(),
    sa.Column("status", sa.String(16), primary_key=True),
    sa.Column("runs", BigCount, nullable=False),
    sa.Column("evaluated", BigCount, nullable=False),
    sa.Column("matched", BigCount, nullable=False),
    sa.Column("acted", BigCount, nullable=False),
    sa.Column("ignored", BigCount, nullable=False, server_default="0"),  # migration 0014
    # an organization's overview reads only this index on Postgres (an index-only scan)
    sa.Index(
        None,
        "organization",
        "grain",
        "bucket",
        postgresql_include=["kind", "name", "status", "runs", "evaluated", "matched", "acted"],
    ),
)

analytics_steps = sa.Table(
    "analytics_steps",
    metadata,
    *_rollup_keys(),
    sa.Column("step", Name, primary_key=True),
    sa.Column("status", sa.String(16), primary_key=True),
    sa.Column("results", BigCount, nullable=False),
    sa.Column("attempts", BigCount, nullable=False),
    sa.Column("acted", BigCount, nullable=False),
)

analytics_durations = sa.Table(
    "analytics_durations",
    metadata,
    *_rollup_keys(),
    sa.Column("step", Name, primary_key=True),
    sa.Column("bin", sa.Integer(), primary_key=True),  # rollups.duration_bin
    sa.Column("count", BigCount, nullable=False),
    sa.Index(
        None, "organization", "grain", "step", "bucket", postgresql_include=["kind", "name", "bin", "count"]
    ),
)

analytics_errors = sa.Table(
    "analytics_errors",
    metadata,
    *_rollup_keys(),
    sa.Column("step", Name, primary_key=True),
    sa.Column("error_class", sa.String(200), primary_key=True),
    sa.Column("count", BigCount, nullable=False),
    sa.Column("first_seen", UtcDateTime(), nullable=False),
    sa.Column("last_seen", UtcDateTime(), nullable=False),
    sa.Index(None, "organization", "grain", "bucket"),
)

#: Notification deliveries per channel and (current) status, by the hour or day they were created.
analytics_notifications = sa.Table(
    "analytics_notifications",
    metadata,
    sa.Column("organization", Name, primary_key=True),
    sa.Column("grain", sa.String(4), primary_key=True),
    sa.Column("bucket", UtcDateTime(), primary_key=True),
    sa.Column("channel", sa.String(16), primary_key=True),
    sa.Column("status", sa.String(20), primary_key=True),
    sa.Column("deliveries", BigCount, nullable=False),
    sa.Column("attempts", BigCount, nullable=False),
    sa.Column("queued", BigCount, nullable=False),  # waited for quiet hours or a digest
)

#: What each run acted for (migration 0013, ADR 0013): its matched items' table and key, and who made
#: the change that triggered it (the application's user of a captured change, the caller of a pushed
#: event or of a manual trigger). The automation log is filtered by these.
automation_run_items = sa.Table(
    "automation_run_items",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("run_pk", Id, sa.ForeignKey("automation_runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("table_name", sa.String(128), nullable=True),
    sa.Column("key_text", sa.String(500), nullable=True),  # canonical JSON of the item's key
    sa.Column("actor", Name, nullable=True),
    sa.Index(None, "run_pk"),
    sa.Index(None, "table_name", "key_text"),
    sa.Index(None, "actor"),
)
