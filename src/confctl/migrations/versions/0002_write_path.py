"""Write path v2: one-statement appends, lock-free global order, stream heads, the effects outbox.

- `events.position` is no longer an identity: the append function sets it to
  `(transaction id << 16) + n`, so positions sort in the order of the transactions that wrote them, and a
  reader that stops below `pg_snapshot_xmin(pg_current_snapshot()) << 16` never skips an event that commits
  late and never sees one appear behind its checkpoint (see `confctl_append` and README "Global order").
- `streams` holds each stream's head version: the append's version check is a conditional UPDATE of that
  row (a row lock per stream, never a global one); `(stream_id, version)` stays unique as the last guard.
- `effects` is the outbox: the Twilio requests decided with the facts, written in the same transaction.
- versions become 64-bit.
- `confctl_append(jsonb)` appends a whole batch (group commit) in one statement. It sends no NOTIFY: a
  transaction that notifies holds PostgreSQL's notification-queue lock from its pre-commit through its WAL
  flush, which serializes every such commit in the cluster; the caller notifies after the commit instead.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Events of one transaction are numbered in its low 16 bits (the batcher caps a batch far below that).
POSITION_SHIFT = 16

APPEND_FUNCTION = r"""
CREATE OR REPLACE FUNCTION confctl_append(batch jsonb)
RETURNS TABLE (idx int, status text, version bigint, first_position bigint, recorded_at timestamptz,
               effect_ids bigint[])
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
    -- Every event of this transaction is numbered from its transaction id: positions sort by transaction.
    base bigint := pg_current_xact_id()::text::bigint << 16;
    counter bigint := 0;
    item record;
    sid text;
    expected bigint;
    n int;
    head bigint;
    dedupe text;
    ids bigint[];
BEGIN
    -- Streams in a fixed order, so two batches never wait on each other's row locks in a cycle.
    FOR item IN
        SELECT b.value AS v, (b.ordinality - 1)::int AS i
        FROM jsonb_array_elements(batch) WITH ORDINALITY AS b
        ORDER BY b.value->>'stream_id', b.ordinality
    LOOP
        sid := item.v->>'stream_id';
        expected := (item.v->>'expected_version')::bigint;
        n := jsonb_array_length(item.v->'events');
        dedupe := item.v->>'dedupe_key';
        ids := NULL;

        IF dedupe IS NOT NULL THEN
            -- A concurrent twin makes this wait until it commits, then find the key taken.
            INSERT INTO dedupe_keys (key, stream_id) VALUES (dedupe, sid) ON CONFLICT DO NOTHING;
            IF NOT FOUND THEN
                SELECT s.version INTO head FROM streams s WHERE s.stream_id = sid;
                idx := item.i; status := 'duplicate'; version := coalesce(head, 0);
                first_position := NULL; recorded_at := NULL; effect_ids := NULL;
                RETURN NEXT;
                CONTINUE;
            END IF;
        END IF;

        -- The version check: a conditional write of the stream's head row (waits on a concurrent writer of
        -- the same stream, then re-checks against what it committed).
        head := NULL;
        IF n = 0 THEN
            SELECT s.version INTO head FROM streams s WHERE s.stream_id = sid;
            head := coalesce(head, 0);
            IF expected IS NOT NULL AND expected <> head THEN
                head := NULL;
            END IF;
        ELSIF expected IS NULL THEN
            INSERT INTO streams AS s (stream_id, version) VALUES (sid, n)
            ON CONFLICT (stream_id) DO UPDATE SET version = s.version + n
            RETURNING s.version - n INTO head;
        ELSIF expected = 0 THEN
            INSERT INTO streams (stream_id, version) VALUES (sid, n) ON CONFLICT DO NOTHING;
            IF FOUND THEN head := 0; END IF;
        ELSE
            UPDATE streams s SET version = s.version + n WHERE s.stream_id = sid AND s.version = expected;
            IF FOUND THEN head := expected; END IF;
        END IF;

        IF head IS NULL THEN
            IF dedupe IS NOT NULL THEN
                DELETE FROM dedupe_keys WHERE key = dedupe;  -- ours, from just above: the caller decides again
            END IF;
            SELECT s.version INTO head FROM streams s WHERE s.stream_id = sid;
            idx := item.i; status := 'conflict'; version := coalesce(head, 0);
            first_position := NULL; recorded_at := NULL; effect_ids := NULL;
            RETURN NEXT;
            CONTINUE;
        END IF;

        IF n > 0 THEN
            INSERT INTO events (position, stream_id, version, type, data, metadata, recorded_at)
            SELECT base + counter + e.ordinality - 1, sid, head + e.ordinality, e.value->>'type',
                   e.value->'data', e.value->'metadata', now()
            FROM jsonb_array_elements(item.v->'events') WITH ORDINALITY AS e;
        END IF;

        IF item.v ? 'row' AND jsonb_typeof(item.v->'row') = 'object' THEN
            INSERT INTO conferences AS c (id, status, created_at, version, twilio_sid, document)
            VALUES (sid, item.v->'row'->>'status', (item.v->'row'->>'created_at')::timestamptz,
                    (item.v->'row'->>'version')::bigint, item.v->'row'->>'twilio_sid', item.v->'row'->'document')
            ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, created_at = EXCLUDED.created_at,
                version = EXCLUDED.version, twilio_sid = EXCLUDED.twilio_sid, document = EXCLUDED.document;
        END IF;

        IF jsonb_array_length(coalesce(item.v->'call_sids', '[]'::jsonb)) > 0 THEN
            INSERT INTO call_legs (call_sid, conference_id)
            SELECT c.value, sid FROM jsonb_array_elements_text(item.v->'call_sids') AS c
            ON CONFLICT DO NOTHING;
        END IF;

        IF jsonb_array_length(coalesce(item.v->'effects', '[]'::jsonb)) > 0 THEN
            WITH inserted AS (
                INSERT INTO effects (stream_id, plan_id, seq, kind, payload, metadata, transfer_id, claimed_by)
                SELECT sid, f.value->>'plan_id', (f.value->>'seq')::int, f.value->>'kind', f.value->'payload',
                       f.value->'metadata', f.value->>'transfer_id', f.value->>'claimed_by'
                FROM jsonb_array_elements(item.v->'effects') AS f
                RETURNING id
            )
            SELECT array_agg(inserted.id ORDER BY inserted.id) INTO ids FROM inserted;
        END IF;

        IF jsonb_array_length(coalesce(item.v->'completes', '[]'::jsonb)) > 0 THEN
            UPDATE effects f SET outcome = c.value->>'outcome', error = c.value->>'error', finished_at = now()
            FROM jsonb_array_elements(item.v->'completes') AS c
            WHERE f.id = (c.value->>'id')::bigint AND f.outcome IS NULL;
            -- The first failure stops its plan: what comes after it is not guessed at.
            UPDATE effects f SET outcome = 'skipped', finished_at = now()
            FROM jsonb_array_elements(item.v->'completes') AS c, effects AS failed
            WHERE (c.value->>'skip_rest')::boolean AND failed.id = (c.value->>'id')::bigint
              AND f.plan_id = failed.plan_id AND f.seq > failed.seq AND f.outcome IS NULL;
        END IF;

        idx := item.i; status := 'ok'; version := head + n;
        first_position := CASE WHEN n > 0 THEN base + counter ELSE NULL END;
        recorded_at := now(); effect_ids := ids;
        counter := counter + n;
        RETURN NEXT;
    END LOOP;
END
$fn$;
"""


def upgrade() -> None:
    # Positions written from now on must sort after every position already stored.
    op.execute(
        """
        DO $$
        BEGIN
            IF (SELECT coalesce(max(position), 0) FROM events) >= (pg_current_xact_id()::text::bigint << 16) THEN
                RAISE EXCEPTION 'events.position is too large for transaction-ordered positions';
            END IF;
        END
        $$;
        """
    )
    op.execute("ALTER TABLE events ALTER COLUMN position DROP IDENTITY IF EXISTS")
    op.execute("ALTER TABLE events ALTER COLUMN version TYPE bigint")
    op.execute("ALTER TABLE conferences ALTER COLUMN version TYPE bigint")
    # Every fact rewrites its conference's row: room on each page lets that be a HOT update (no index entries).
    op.execute("ALTER TABLE conferences SET (fillfactor = 70)")
    op.execute("CREATE TABLE streams (stream_id text PRIMARY KEY, version bigint NOT NULL)")
    op.execute("INSERT INTO streams SELECT stream_id, max(version) FROM events GROUP BY stream_id")
    op.execute(
        """
        CREATE TABLE effects (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            stream_id text NOT NULL,
            plan_id text NOT NULL,
            seq int NOT NULL,
            kind text NOT NULL,
            payload jsonb NOT NULL,
            metadata jsonb NOT NULL,
            transfer_id text,
            created_at timestamptz NOT NULL DEFAULT now(),
            due_at timestamptz NOT NULL DEFAULT now(),
            attempts int NOT NULL DEFAULT 0,
            claimed_by text,
            claimed_until timestamptz,
            outcome text,
            finished_at timestamptz,
            error text
        )
        """
    )
    op.execute("CREATE INDEX effects_pending_idx ON effects (plan_id, seq) WHERE outcome IS NULL")
    op.execute("CREATE INDEX effects_claimed_idx ON effects (claimed_by) WHERE outcome IS NULL")
    op.execute("CREATE INDEX effects_stream_idx ON effects (stream_id, id)")
    op.execute(APPEND_FUNCTION)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS confctl_append(jsonb)")
    op.execute("DROP TABLE IF EXISTS effects")
    op.execute("DROP TABLE IF EXISTS streams")
    op.execute("ALTER TABLE conferences RESET (fillfactor)")
    op.execute("ALTER TABLE conferences ALTER COLUMN version TYPE integer")
    op.execute("ALTER TABLE events ALTER COLUMN version TYPE integer")
    op.execute(
        """
        DO $$
        DECLARE next_position bigint;
        BEGIN
            SELECT coalesce(max(position), 0) + 1 INTO next_position FROM events;
            EXECUTE format('ALTER TABLE events ALTER COLUMN position ADD GENERATED ALWAYS AS IDENTITY (START WITH %s)',
                           next_position);
        END
        $$;
        """
    )
