"""Event store, dedupe inbox, conference read model, call index, idempotency keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("position", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("stream_id", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("data", JSONB, nullable=False),
        sa.Column("metadata", JSONB, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("stream_id", "version", name="events_stream_version_key"),
    )
    op.create_table(
        "dedupe_keys",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("stream_id", sa.Text, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "conferences",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("twilio_sid", sa.Text, nullable=True),
        sa.Column("document", JSONB, nullable=False),
    )
    op.create_index("conferences_created_idx", "conferences", ["created_at", "id"])
    op.create_index("conferences_status_created_idx", "conferences", ["status", "created_at", "id"])
    op.create_index("conferences_twilio_sid_idx", "conferences", ["twilio_sid"])
    op.create_table(
        "call_legs",
        sa.Column("call_sid", sa.Text, primary_key=True),
        sa.Column("conference_id", sa.Text, nullable=False),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("fingerprint", sa.Text, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("body", JSONB, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    for table in ("idempotency_keys", "call_legs", "conferences", "dedupe_keys", "events"):
        op.drop_table(table)
