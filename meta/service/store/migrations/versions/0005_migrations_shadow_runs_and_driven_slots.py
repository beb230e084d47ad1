"""migrations: shadow runs and driven slots

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 19:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "migration_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("pipeline_id", sa.String(length=250), nullable=False),
        sa.Column("logical_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("live_backend", sa.String(length=63), nullable=False),
        sa.Column("live_run_id", sa.String(length=250), nullable=False),
        sa.Column("shadow_backend", sa.String(length=63), nullable=False),
        sa.Column("shadow_pipeline", sa.String(length=250), nullable=False),
        sa.Column("trigger_key", sa.String(length=250), nullable=False),
        sa.Column("shadow_run_id", sa.String(length=250), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("triggered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("comparison", sa.JSON(), nullable=True),
        sa.Column("compared_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pipeline_id", "logical_date", name="uq_migration_runs_key"),
    )
    with op.batch_alter_table("migration_runs", schema=None) as batch_op:
        batch_op.create_index("ix_migration_runs_state", ["state"], unique=False)

    op.create_table(
        "migration_slots",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("pipeline_id", sa.String(length=250), nullable=False),
        sa.Column("slot", sa.DateTime(timezone=True), nullable=False),
        sa.Column("backend", sa.String(length=63), nullable=False),
        sa.Column("trigger_key", sa.String(length=250), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("triggered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pipeline_id", "slot", name="uq_migration_slots_key"),
    )
    with op.batch_alter_table("migration_slots", schema=None) as batch_op:
        batch_op.create_index("ix_migration_slots_state", ["state"], unique=False)

    op.create_table(
        "migrations",
        sa.Column("pipeline_id", sa.String(length=250), nullable=False),
        sa.Column("team", sa.String(length=63), nullable=True),
        sa.Column("source_backend", sa.String(length=63), nullable=False),
        sa.Column("target_backend", sa.String(length=63), nullable=False),
        sa.Column("shadow_id", sa.String(length=250), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("shadow_since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source_was_paused", sa.Boolean(), nullable=True),
        sa.Column("handoff_slot", sa.DateTime(timezone=True), nullable=True),
        sa.Column("owed_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("history", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("pipeline_id"),
    )
    with op.batch_alter_table("migrations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_migrations_team"), ["team"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("migrations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_migrations_team"))

    op.drop_table("migrations")
    with op.batch_alter_table("migration_slots", schema=None) as batch_op:
        batch_op.drop_index("ix_migration_slots_state")

    op.drop_table("migration_slots")
    with op.batch_alter_table("migration_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_migration_runs_state")

    op.drop_table("migration_runs")
