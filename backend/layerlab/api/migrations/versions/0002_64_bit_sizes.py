"""Upload sizes and event ids as 64-bit integers.

PostgreSQL's ``integer`` is 32-bit: an upload over 2 GiB (LAYERLAB_MAX_UPLOAD_BYTES allows it)
could not be recorded, and the events table's ids would run out at 2^31 events. SQLite's
integers are 64-bit already (and its autoincrementing key must stay ``INTEGER``), so there this
changes nothing.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    op.alter_column("uploads", "size", type_=sa.BigInteger(), existing_type=sa.Integer(), existing_nullable=False)
    op.alter_column("run_events", "id", type_=sa.BigInteger(), existing_type=sa.Integer())
    op.execute("ALTER SEQUENCE run_events_id_seq AS bigint")  # serial made it an integer sequence


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    op.alter_column("uploads", "size", type_=sa.Integer(), existing_type=sa.BigInteger(), existing_nullable=False)
    op.execute("ALTER SEQUENCE run_events_id_seq AS integer")
    op.alter_column("run_events", "id", type_=sa.Integer(), existing_type=sa.BigInteger())
