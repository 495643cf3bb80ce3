"""Idempotency reservations name the process that holds them, so a dead process's reservation can be taken over.

A reserved key (status 0, "in flight") used to stay reserved forever when its process died mid-request: every
retry waited, then got 409 idempotency_key_in_flight. `owner` is the outbox worker id of the process that
reserved it; that process is alive exactly while it holds its liveness lock (see `adapters/pg_outbox.py`), so a
retry that finds the owner gone takes the key over and resumes the request.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE idempotency_keys ADD COLUMN owner text")


def downgrade() -> None:
    op.execute("ALTER TABLE idempotency_keys DROP COLUMN IF EXISTS owner")
