"""PostgreSQL: record bodies as JSONB (validated, indexable); timestamps to the microsecond.

SQLite keeps TEXT bodies and ignores VARCHAR lengths, so nothing changes there.
JSONB cannot hold NUL characters: a body containing one stops the upgrade with
the records named (the server has refused such records since this revision).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Databases created before the microsecond change had VARCHAR(19) here.
_STAMPS = (("users", "created"), ("projects", "created"), ("projects", "last_updated"))


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    bad = bind.execute(sa.text(
        r"SELECT project_id, label FROM records WHERE strpos(body, '\u0000') > 0 LIMIT 20")
    ).all()
    if bad:
        raise RuntimeError(
            "record bodies containing NUL (\\u0000) cannot become JSONB; edit or delete: "
            + ", ".join(f"{p}/{label}" for p, label in bad))
    op.alter_column("records", "body", type_=JSONB(), existing_nullable=False,
                    postgresql_using="body::jsonb")
    for table, column in _STAMPS:
        op.alter_column(table, column, type_=sa.String(32), existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.alter_column("records", "body", type_=sa.Text(), existing_nullable=False,
                    postgresql_using="body::text")
