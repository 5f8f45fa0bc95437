"""The rule store: definitions, versions, compiled specs, audit log, catalogs, automation log.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00

This file is history: it never imports the package's current schema, so it creates the same tables
on every machine however the code evolves. ``audit_log`` is append-only: triggers refuse UPDATE and
DELETE (and TRUNCATE on Postgres).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
NAME = sa.String(200)
HASH = sa.String(128)
AUDIT_ACTIONS = ("create", "update", "activate", "deactivate", "delete", "catalog")
RUN_STATUSES = ("running", "no_match", "success", "failed", "partial")
ACTION_STATUSES = ("success", "failed", "skipped", "running", "retrying")
APPEND_ONLY = "audit_log is append-only"
PG_FUNCTION = "rule_store_audit_log_append_only"


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _id() -> sa.Column:
    return sa.Column("id", ID, primary_key=True, autoincrement=True)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "definitions",
        _id(),
        sa.Column("organization", NAME, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("name", NAME, nullable=False),
        sa.Column("dag_id", sa.String(250), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("deleted_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_definitions"),
        sa.UniqueConstraint("organization", "kind", "name", name="uq_definitions_organization_kind_name"),
        sa.UniqueConstraint("dag_id", name="uq_definitions_dag_id"),
    )
    op.create_table(
        "definition_versions",
        _id(),
        sa.Column("definition_id", ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source_json", sa.Text(), nullable=False),
        sa.Column("source_hash", HASH, nullable=False),
        sa.Column("actor", NAME, nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_definition_versions"),
        sa.ForeignKeyConstraint(
            ["definition_id"], ["definitions.id"], name="fk_definition_versions_definition_id_definitions"
        ),
        sa.UniqueConstraint("definition_id", "version", name="uq_definition_versions_definition_id_version"),
    )
    op.create_table(
        "compiled_specs",
        _id(),
        sa.Column("definition_id", ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("dag_id", sa.String(250), nullable=False),
        sa.Column("spec_json", sa.Text(), nullable=False),
        sa.Column("spec_hash", HASH, nullable=False),
        sa.Column("compiler_version", sa.String(64), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_compiled_specs"),
        sa.ForeignKeyConstraint(
            ["definition_id"], ["definitions.id"], name="fk_compiled_specs_definition_id_definitions"
        ),
        sa.UniqueConstraint("definition_id", "version", name="uq_compiled_specs_definition_id_version"),
    )
    op.create_index("ix_compiled_specs_spec_hash", "compiled_specs", ["spec_hash"])
    op.create_table(
        "audit_log",
        _id(),
        sa.Column("organization", NAME, nullable=False),
        sa.Column("actor", NAME, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("name", NAME, nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("hash_before", HASH, nullable=True),
        sa.Column("hash_after", HASH, nullable=True),
        sa.Column("detail_json", sa.Text(), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
        sa.CheckConstraint(_one_of("action", AUDIT_ACTIONS), name="ck_audit_log_action"),
    )
    op.create_index("ix_audit_log_organization_id", "audit_log", ["organization", "id"])
    op.create_table(
        "catalogs",
        _id(),
        sa.Column("organization", NAME, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("catalog_json", sa.Text(), nullable=False),
        sa.Column("catalog_hash", HASH, nullable=False),
        sa.Column("actor", NAME, nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_catalogs"),
        sa.UniqueConstraint("organization", "version", name="uq_catalogs_organization_version"),
    )
    op.create_table(
        "automation_runs",
        _id(),
        sa.Column("organization", NAME, nullable=False),
        sa.Column("rule_name", NAME, nullable=False),
        sa.Column("dag_id", sa.String(250), nullable=False),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("spec_hash", HASH, nullable=False),
        sa.Column("trigger_type", sa.String(32), nullable=False),
        sa.Column("trigger_context_json", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("matched_count", sa.Integer(), nullable=False),
        sa.Column("trace_json", sa.Text(), nullable=True),
        _ts("started_at"),
        _ts("finished_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_automation_runs"),
        sa.UniqueConstraint("dag_id", "run_id", name="uq_automation_runs_dag_id_run_id"),
        sa.CheckConstraint(_one_of("status", RUN_STATUSES), name="ck_automation_runs_status"),
    )
    op.create_index(
        "ix_automation_runs_organization_rule_name_started_at",
        "automation_runs",
        ["organization", "rule_name", "started_at"],
    )
    op.create_index("ix_automation_runs_status", "automation_runs", ["status"])
    op.create_table(
        "automation_action_results",
        _id(),
        sa.Column("run_pk", ID, nullable=False),
        sa.Column("action_id", NAME, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("output_json", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_automation_action_results"),
        sa.ForeignKeyConstraint(
            ["run_pk"],
            ["automation_runs.id"],
            name="fk_automation_action_results_run_pk_automation_runs",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("run_pk", "action_id", name="uq_automation_action_results_run_pk_action_id"),
        sa.CheckConstraint(_one_of("status", ACTION_STATUSES), name="ck_automation_action_results_status"),
    )
    _create_audit_triggers(op.get_context().dialect.name)


def _create_audit_triggers(dialect: str) -> None:
    if dialect == "sqlite":
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{operation.lower()} BEFORE {operation} ON audit_log "
                f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}: {operation} is not allowed'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            f"CREATE FUNCTION {PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            # USING MESSAGE, not a '%' format: offline SQL output would double the '%'.
            f"BEGIN RAISE EXCEPTION USING MESSAGE = '{APPEND_ONLY}: ' || TG_OP || ' is not allowed'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            f"FOR EACH ROW EXECUTE FUNCTION {PG_FUNCTION}()"
        )
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {PG_FUNCTION}()"
        )
    else:
        raise NotImplementedError(f"the rule store supports SQLite and Postgres, not {dialect}")


def downgrade() -> None:
    dialect = op.get_context().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
        op.execute(f"DROP FUNCTION IF EXISTS {PG_FUNCTION}()")
    op.drop_table("automation_action_results")
    op.drop_index("ix_automation_runs_status", table_name="automation_runs")
    op.drop_index("ix_automation_runs_organization_rule_name_started_at", table_name="automation_runs")
    op.drop_table("automation_runs")
    op.drop_table("catalogs")
    op.drop_index("ix_audit_log_organization_id", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index("ix_compiled_specs_spec_hash", table_name="compiled_specs")
    op.drop_table("compiled_specs")
    op.drop_table("definition_versions")
    op.drop_table("definitions")
