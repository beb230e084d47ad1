"""SLA slots indexed by state, for the dashboard's board

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 17:15:00
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The board reads the slots that need attention (at risk, unknown, unresolved misses) and the open ones: few
    # among a history of hundreds of thousands, found by state instead of by a scan.
    op.create_index("ix_sla_slots_state_deadline", "sla_slots", ["state", "deadline"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_sla_slots_state_deadline", table_name="sla_slots")
