"""Personal API tokens, and a per-user session generation that logout bumps.

``users.session_generation`` (0 for existing users: their sessions stay valid until
the next logout or password change) and a ``tokens`` table keyed by the token's
public id. Existing data is kept; a downgrade drops the tokens.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch: SQLite cannot ALTER TABLE ... ADD COLUMN with every constraint; a batch
    # copies the table there and is a plain ALTER on PostgreSQL.
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("session_generation", sa.Integer(), nullable=False,
                                   server_default="0"))
    op.create_table(
        "tokens",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(8), nullable=False),
        sa.Column("projects", sa.Text(), nullable=False),
        sa.Column("created", sa.String(32), nullable=False),
        sa.Column("expires", sa.String(32), nullable=True),
        sa.Column("last_used", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tokens"),
        sa.ForeignKeyConstraint(["username"], ["users.username"], ondelete="CASCADE",
                                name="fk_tokens_username_users"),
        sa.UniqueConstraint("username", "name", name="uq_tokens_username_name"),
    )


def downgrade() -> None:
    op.drop_table("tokens")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("session_generation")
