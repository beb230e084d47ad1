"""initial schema: backends, pipelines, runs, task attempts, cursors, tokens, lineage, triggers

Revision ID: 0001
Revises:
Create Date: 2026-12-02 00:46:36.085971
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("team", sa.String(length=63), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_table(
        "backends",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("health", sa.String(length=16), nullable=False),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("lag_seconds", sa.Float(), nullable=True),
        sa.Column("events_total", sa.BigInteger(), nullable=False),
        sa.Column("requests_total", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "counters",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "cursors",
        sa.Column("backend", sa.String(length=63), nullable=False),
        sa.Column("stream", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("backend", "stream"),
    )
    op.create_table(
        "lineage_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("payload_sha", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("event_type", sa.String(length=16), nullable=True),
        sa.Column("producer", sa.Text(), nullable=True),
        sa.Column("job_namespace", sa.String(length=250), nullable=True),
        sa.Column("job_name", sa.Text(), nullable=True),
        sa.Column("run_uuid", sa.String(length=64), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("payload_sha"),
    )
    with op.batch_alter_table("lineage_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lineage_events_run_uuid"), ["run_uuid"], unique=False)

    op.create_table(
        "pipelines",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("backend", sa.String(length=63), nullable=False),
        sa.Column("pipeline_id", sa.String(length=250), nullable=False),
        sa.Column("team", sa.String(length=63), nullable=True),
        sa.Column("external", sa.Boolean(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("backend", "pipeline_id", name="uq_pipelines_key"),
    )
    with op.batch_alter_table("pipelines", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pipelines_team"), ["team"], unique=False)

    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("backend", sa.String(length=63), nullable=False),
        sa.Column("pipeline_id", sa.String(length=250), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("raw_state", sa.String(length=64), nullable=True),
        sa.Column("logical_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("external", sa.Boolean(), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.Column("change_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("backend", "pipeline_id", "run_id", name="uq_runs_key"),
    )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index("ix_runs_change_seq", ["change_seq"], unique=False)
        batch_op.create_index("ix_runs_pipeline_time", ["pipeline_id", "started_at"], unique=False)

    op.create_table(
        "task_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("backend", sa.String(length=63), nullable=False),
        sa.Column("pipeline_id", sa.String(length=250), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("task_id", sa.String(length=250), nullable=False),
        sa.Column("map_index", sa.Integer(), nullable=False),
        sa.Column("try_number", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("raw_state", sa.String(length=64), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.Column("change_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "backend", "pipeline_id", "run_id", "task_id", "map_index", "try_number", name="uq_attempts_key"
        ),
    )
    with op.batch_alter_table("task_attempts", schema=None) as batch_op:
        batch_op.create_index("ix_attempts_change_seq", ["change_seq"], unique=False)
        batch_op.create_index("ix_attempts_run", ["backend", "pipeline_id", "run_id"], unique=False)

    op.create_table(
        "triggers",
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("backend", sa.String(length=63), nullable=False),
        sa.Column("pipeline_id", sa.String(length=250), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("created", sa.Boolean(), nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:

    op.drop_table("triggers")
    with op.batch_alter_table("task_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_attempts_run")
        batch_op.drop_index("ix_attempts_change_seq")

    op.drop_table("task_attempts")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_pipeline_time")
        batch_op.drop_index("ix_runs_change_seq")

    op.drop_table("runs")
    with op.batch_alter_table("pipelines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pipelines_team"))

    op.drop_table("pipelines")
    with op.batch_alter_table("lineage_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lineage_events_run_uuid"))

    op.drop_table("lineage_events")
    op.drop_table("cursors")
    op.drop_table("counters")
    op.drop_table("backends")
    op.drop_table("api_tokens")
