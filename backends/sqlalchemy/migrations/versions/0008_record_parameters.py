"""Records' flattened parameters, kept at write time for queries and plots.

``records.parameters``: a JSON object ``{"solver.tol": 1e-6, ...}`` derived from the
body exactly as a PUT derives it (``parameters.record_parameters``). Existing rows are
back-filled from their bodies, a batch at a time, so a large database is not read
into memory at once. Downgrading drops the column (the bodies still hold everything).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSON

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

#: Rows read and written per batch.
BATCH = 1000


def upgrade() -> None:
    with op.batch_alter_table("records") as batch:
        batch.add_column(sa.Column("parameters", sa.Text().with_variant(
            JSON(), "postgresql"), nullable=True))
    backfill(op.get_bind())


def backfill(bind) -> None:
    """Derive ``parameters`` for every row that lacks it, in batches by id."""
    records = sa.table("records", sa.column("id", sa.Integer), sa.column("body", sa.Text),
                       sa.column("parameters", sa.Text))
    body = sa.cast(records.c.body, sa.Text)
    last = 0
    while True:
        rows = bind.execute(sa.select(records.c.id, body).where(
            records.c.id > last, records.c.parameters.is_(None))
            .order_by(records.c.id).limit(BATCH)).all()
        if not rows:
            return
        values = [{"b_id": row_id, "b_parameters": _serialise(text)} for row_id, text in rows]
        value = "CAST(:b_parameters AS json)" if bind.dialect.name == "postgresql" \
            else ":b_parameters"
        bind.execute(sa.text(f"UPDATE records SET parameters = {value} WHERE id = :b_id"),
                     values)
        last = rows[-1][0]


def _serialise(body: str) -> str:
    from pyramid_sumatra.parameters import record_parameters

    try:
        doc = json.loads(body)
    except ValueError:  # not possible for a stored body; keep the row, leave it empty
        doc = {}
    flat = record_parameters(doc) if isinstance(doc, dict) else {}
    return json.dumps(flat, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def downgrade() -> None:
    with op.batch_alter_table("records") as batch:
        batch.drop_column("parameters")
