"""The PostgreSQL tables (SQLAlchemy Core). The Alembic migrations create exactly these."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData()

# The log. (stream_id, version) unique is the last guard of optimistic concurrency; `position` is the global
# order: `(transaction id << POSITION_SHIFT) + n`, set by the append function (migration 0002).
events = sa.Table(
    "events",
    metadata,
    sa.Column("position", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("stream_id", sa.Text, nullable=False),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("data", JSONB, nullable=False),
    sa.Column("metadata", JSONB, nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.UniqueConstraint("stream_id", "version", name="events_stream_version_key"),
)

# The inbox: a Twilio callback's key stored in the same transaction as its events makes a repeat a no-op.
dedupe_keys = sa.Table(
    "dedupe_keys",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("stream_id", sa.Text, nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

# The read model: one row per conference, rebuilt from the log at will.
conferences = sa.Table(
    "conferences",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("twilio_sid", sa.Text, nullable=True),
    sa.Column("document", JSONB, nullable=False),
    sa.Index("conferences_created_idx", "created_at", "id"),
    sa.Index("conferences_status_created_idx", "status", "created_at", "id"),
    sa.Index("conferences_twilio_sid_idx", "twilio_sid"),
)

# Which conference a call leg belongs to (part of the read model; call status callbacks carry only CallSid).
call_legs = sa.Table(
    "call_legs",
    metadata,
    sa.Column("call_sid", sa.Text, primary_key=True),
    sa.Column("conference_id", sa.Text, nullable=False),
)

# First answers of control requests that carried an Idempotency-Key, per API key name.
idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("scope", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("fingerprint", sa.Text, nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("body", JSONB, nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("owner", sa.Text),  # the outbox worker id of the process running the request (migration 0003)
)

# Each stream's head version: the append's version check is a conditional write of this row.
streams = sa.Table(
    "streams",
    metadata,
    sa.Column("stream_id", sa.Text, primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
)

# The outbox: Twilio requests decided with the facts, written in the same transaction, run by workers.
effects = sa.Table(
    "effects",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
    sa.Column("stream_id", sa.Text, nullable=False),
    sa.Column("plan_id", sa.Text, nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("payload", JSONB, nullable=False),
    sa.Column("metadata", JSONB, nullable=False),
    sa.Column("transfer_id", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("claimed_by", sa.Text, nullable=True),
    sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("outcome", sa.Text, nullable=True),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
)

NOTIFY_CHANNEL = "confctl_events"
# Positions are `(transaction id << POSITION_SHIFT) + n`: every position below
# `pg_snapshot_xmin(pg_current_snapshot()) << POSITION_SHIFT` belongs to a finished transaction.
POSITION_SHIFT = 16
# The session advisory locks that say a worker is alive: (WORKER_LOCK_CLASS, hashtext(worker id)).
WORKER_LOCK_CLASS = 0x636F6E66  # "conf"
# Cluster-wide "one process at a time" locks (e.g. the reconciliation sweep): (SWEEP_LOCK_CLASS, hashtext(name)).
SWEEP_LOCK_CLASS = 0x73776570  # "swep"
