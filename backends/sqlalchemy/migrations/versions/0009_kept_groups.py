"""The groups an OpenID Connect login reported, kept for the user's API tokens.

``users.kept_groups`` (a JSON array of group names) and ``users.groups_seen`` (UTC
"YYYY-MM-DD HH:MM:SS"): the provider cannot be asked without the user, so a token uses
the groups of the last browser login while they are recent. NULL for every existing
user: their tokens get no group principals until they log in again, as before.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("kept_groups", sa.Text, nullable=True))
        batch.add_column(sa.Column("groups_seen", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("groups_seen")
        batch.drop_column("kept_groups")
