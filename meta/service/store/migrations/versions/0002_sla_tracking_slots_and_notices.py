"""SLA tracking, slots and notices

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 18:28:23.278338
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "sla_notices",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("backend", sa.String(length=63), nullable=False),
        sa.Column("subject", sa.String(length=250), nullable=False),
        sa.Column("kind", sa.String(length=120), nullable=False),
        sa.Column("slot", sa.String(length=250), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("backend", "subject", "kind", "slot", "stage", name="uq_sla_notices_key"),
    )
    with op.batch_alter_table("sla_notices", schema=None) as batch_op:
        batch_op.create_index("ix_sla_notices_due", ["status", "due_at"], unique=False)

    op.create_table(
        "sla_slots",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("backend", sa.String(length=63), nullable=False),
        sa.Column("subject", sa.String(length=250), nullable=False),
        sa.Column("team", sa.String(length=63), nullable=True),
        sa.Column("kind", sa.String(length=120), nullable=False),
        sa.Column("slot", sa.String(length=250), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=True),
        sa.Column("task_id", sa.String(length=250), nullable=True),
        sa.Column("first_at_risk_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("missed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("change_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("backend", "subject", "kind", "slot", name="uq_sla_slots_key"),
    )
    with op.batch_alter_table("sla_slots", schema=None) as batch_op:
        batch_op.create_index("ix_sla_slots_change_seq", ["change_seq"], unique=False)
        batch_op.create_index("ix_sla_slots_deadline", ["deadline"], unique=False)
        batch_op.create_index(batch_op.f("ix_sla_slots_team"), ["team"], unique=False)

    op.create_table(
        "sla_tracking",
        sa.Column("backend", sa.String(length=63), nullable=False),
        sa.Column("subject", sa.String(length=250), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("backend", "subject"),
    )


def downgrade() -> None:

    op.drop_table("sla_tracking")
    with op.batch_alter_table("sla_slots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sla_slots_team"))
        batch_op.drop_index("ix_sla_slots_deadline")
        batch_op.drop_index("ix_sla_slots_change_seq")

    op.drop_table("sla_slots")
    with op.batch_alter_table("sla_notices", schema=None) as batch_op:
        batch_op.drop_index("ix_sla_notices_due")

    op.drop_table("sla_notices")
