"""Record and project history, and the trash of deleted records and projects.

Two new tables, ``history`` and ``trash``, without foreign keys (both outlive the
records and projects they are about). Existing data is kept and has no history yet;
a downgrade drops both tables (and with them every history entry and trashed item).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
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
        "history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.String(100), nullable=False),
        sa.Column("label", sa.String(100), nullable=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("entry_id", sa.String(32), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("user", sa.Text(), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("changes", sa.Text(), nullable=False),
        sa.Column("revision_before", sa.String(64), nullable=False),
        sa.Column("revision_after", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_history"),
    )
    op.create_index("ix_history_project_label_at", "history",
                    ["project_id", "label", "at", "entry_id"])
    op.create_table(
        "trash",
        sa.Column("project_id", sa.String(100), nullable=False),
        sa.Column("label", sa.String(100), nullable=False),
        sa.Column("deleted_at", sa.String(32), nullable=False),
        sa.Column("deleted_by", sa.Text(), nullable=False),
        sa.Column("revision", sa.Text(), nullable=False),
        sa.Column("timestamp", sa.String(32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "label", "deleted_at", name="pk_trash"),
    )
    op.create_index("ix_trash_deleted_at", "trash", ["deleted_at"])


def downgrade() -> None:
    op.drop_index("ix_trash_deleted_at", table_name="trash")
    op.drop_table("trash")
    op.drop_index("ix_history_project_label_at", table_name="history")
    op.drop_table("history")
