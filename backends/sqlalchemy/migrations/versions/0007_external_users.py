"""Users who log in elsewhere (LDAP, OpenID Connect): their source and profile.

``users.source`` ("ldap", "oidc"; NULL for local users), ``display_name`` and
``email``. Existing users stay local. Grants to groups need no change: a grant's
principal is free text (``group:physics-lab``).

Revision ID: 0007
Revises: 0004 (on the login branch; the integrator chains it after 0006)
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("source", sa.String(16), nullable=True))
        batch.add_column(sa.Column("display_name", sa.String(200), nullable=True))
        batch.add_column(sa.Column("email", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("email")
        batch.drop_column("display_name")
        batch.drop_column("source")
