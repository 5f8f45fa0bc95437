"""Rule listings in SQL; the REST view's rate-limit counters shared by every api-server worker.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 12:00:00

- ``definitions`` gains ``trigger_type`` (the current version's ``trigger.type``, kept by every write
  and filled here from the stored sources) and (organization, kind, trigger_type),
  (organization, kind, created_at) and (organization, kind, updated_at) indexes: the rule listing
  filters and sorts in the database.
- ``api_rate_limits``: one fixed-window counter per rate-limit key, with the time its window ends.

History: it never imports the package's current schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_Now = sa.DateTime(timezone=True)

_TRIGGER_TYPE_OF = {
    "postgresql": "CAST(source_json AS json) -> 'trigger' ->> 'type'",
    "sqlite": "json_extract(source_json, '$.trigger.type')",
}


def upgrade() -> None:
    op.add_column("definitions", sa.Column("trigger_type", sa.String(64), nullable=True))
    trigger_type_of = _TRIGGER_TYPE_OF[op.get_context().dialect.name]
    op.execute(
        f"UPDATE definitions SET trigger_type = (SELECT substr({trigger_type_of}, 1, 64) "
        "FROM definition_versions "
        "WHERE definition_versions.definition_id = definitions.id "
        "AND definition_versions.version = definitions.current_version)"
    )
    for column in ("trigger_type", "created_at", "updated_at"):
        op.create_index(
            f"ix_definitions_organization_kind_{column}", "definitions", ["organization", "kind", column]
        )
    op.create_table(
        "api_rate_limits",
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("expires_at", _Now, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_api_rate_limits"),
    )


def downgrade() -> None:
    op.drop_table("api_rate_limits")
    for column in ("updated_at", "created_at", "trigger_type"):
        op.drop_index(f"ix_definitions_organization_kind_{column}", "definitions")
    op.drop_column("definitions", "trigger_type")
