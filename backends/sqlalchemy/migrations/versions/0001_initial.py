"""The schema as metadata.create_all made it before there were migrations.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
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
        "users",
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("created", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("username", name="pk_users"),
    )
    op.create_table(
        "projects",
        sa.Column("id", sa.String(100), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created", sa.String(32), nullable=False),
        sa.Column("last_updated", sa.String(32), nullable=False),
        sa.Column("record_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_projects"),
    )
    op.create_table(
        "grants",
        sa.Column("project_id", sa.String(100), nullable=False),
        sa.Column("principal", sa.String(100), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE",
                                name="fk_grants_project_id_projects"),
        sa.PrimaryKeyConstraint("project_id", "principal", name="pk_grants"),
    )
    op.create_index("ix_grants_principal", "grants", ["principal"])
    op.create_table(
        "records",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.String(100), nullable=False),
        sa.Column("label", sa.String(100), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("revision", sa.String(40), nullable=False),
        sa.Column("timestamp", sa.String(19), nullable=False),
        sa.Column("user", sa.Text(), nullable=False),
        sa.Column("main_file", sa.Text(), nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("executable", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("duration", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE",
                                name="fk_records_project_id_projects"),
        sa.PrimaryKeyConstraint("id", name="pk_records"),
        sa.UniqueConstraint("project_id", "label", name="uq_records_project_label"),
    )
    op.create_index("ix_records_project_timestamp", "records",
                    ["project_id", "timestamp", "label"])
    op.create_table(
        "record_tags",
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(255), nullable=False),
        sa.Column("project_id", sa.String(100), nullable=False),
        sa.ForeignKeyConstraint(["record_id"], ["records.id"], ondelete="CASCADE",
                                name="fk_record_tags_record_id_records"),
        sa.PrimaryKeyConstraint("record_id", "tag", name="pk_record_tags"),
    )
    op.create_index("ix_record_tags_project_tag", "record_tags", ["project_id", "tag"])


def downgrade() -> None:
    for table in ("record_tags", "records", "grants", "projects", "users"):
        op.drop_table(table)
