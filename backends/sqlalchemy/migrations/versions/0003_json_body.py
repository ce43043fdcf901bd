"""PostgreSQL: record bodies as ``json`` (verbatim text) instead of ``jsonb``.

``jsonb`` stores numbers as ``numeric``: a float such as 6.68e+250 came back as a
251-digit integer, and key order was lost. ``json`` keeps the text as sent. Bodies
stored under 0002 keep jsonb's normal form (the original text is gone).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op
from sqlalchemy.dialects.postgresql import JSON, JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.alter_column("records", "body", type_=JSON(), existing_type=JSONB(),
                    existing_nullable=False, postgresql_using="body::text::json")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.alter_column("records", "body", type_=JSONB(), existing_type=JSON(),
                    existing_nullable=False, postgresql_using="body::jsonb")
