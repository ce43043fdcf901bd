"""Records' flattened parameters, kept at write time for queries and plots.

``records.parameters``: a JSON object ``{"solver.tol": 1e-6, ...}`` derived from the
body exactly as a PUT derives it (``parameters.record_parameters``); ``record_numbers``:
one row per numeric parameter (names up to 200 characters), indexed by project, name
and value, for ranges. Existing rows are back-filled from their bodies, a batch at a
time, so a large database is not read into memory at once. Downgrading drops both
(the bodies still hold everything).

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
    op.create_table(
        "record_numbers",
        sa.Column("record_id", sa.Integer, sa.ForeignKey(
            "records.id", ondelete="CASCADE",
            name="fk_record_numbers_record_id_records"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("project_id", sa.String(100), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("record_id", "name", name="pk_record_numbers"),
    )
    op.create_index("ix_record_numbers_project_name_value", "record_numbers",
                    ["project_id", "name", "value"])
    backfill(op.get_bind())


def backfill(bind) -> None:
    """Derive ``parameters`` for every row that lacks it, in batches by id."""
    records = sa.table("records", sa.column("id", sa.Integer), sa.column("body", sa.Text),
                       sa.column("parameters", sa.Text), sa.column("project_id", sa.Text))
    numbers = sa.table("record_numbers", sa.column("record_id", sa.Integer),
                       sa.column("name", sa.String), sa.column("project_id", sa.String),
                       sa.column("value", sa.Float))
    body = sa.cast(records.c.body, sa.Text)
    last = 0
    while True:
        rows = bind.execute(sa.select(records.c.id, body, records.c.project_id).where(
            records.c.id > last, records.c.parameters.is_(None))
            .order_by(records.c.id).limit(BATCH)).all()
        if not rows:
            return
        flats = [(row_id, project_id, _flat(text)) for row_id, text, project_id in rows]
        values = [{"b_id": row_id, "b_parameters": json.dumps(
            flat, ensure_ascii=False, separators=(",", ":"), allow_nan=False)}
            for row_id, _, flat in flats]
        value = "CAST(:b_parameters AS json)" if bind.dialect.name == "postgresql" \
            else ":b_parameters"
        bind.execute(sa.text(f"UPDATE records SET parameters = {value} WHERE id = :b_id"),
                     values)
        found = [{"record_id": row_id, "project_id": project_id, "name": name,
                  "value": float(number)}
                 for row_id, project_id, flat in flats for name, number in flat.items()
                 if isinstance(number, int | float) and not isinstance(number, bool)
                 and len(name) <= 200]
        if found:
            bind.execute(numbers.insert(), found)
        last = rows[-1][0]


def _flat(body: str) -> dict:
    # The app's own derivation, so that old rows hold what a PUT would store today.
    from pyramid_sumatra.parameters import record_parameters

    try:
        doc = json.loads(body)
    except ValueError:  # not possible for a stored body; keep the row, leave it empty
        doc = {}
    return record_parameters(doc) if isinstance(doc, dict) else {}


def downgrade() -> None:
    op.drop_index("ix_record_numbers_project_name_value", table_name="record_numbers")
    op.drop_table("record_numbers")
    with op.batch_alter_table("records") as batch:
        batch.drop_column("parameters")
