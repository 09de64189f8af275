-- Event-sourcing core, created in each service's own schema (search_path is set per pool).

-- The append-only event store. It is also the outbox: the relay tails it by `sequence`.
CREATE TABLE IF NOT EXISTS events (
    sequence        bigint      PRIMARY KEY,          -- the source's gapless sequence
    event_id        uuid        NOT NULL UNIQUE,
    event_type      text        NOT NULL,
    subject         text        NOT NULL,
    subject_version integer     NOT NULL CHECK (subject_version >= 1),
    body            jsonb       NOT NULL,             -- envelope without sequence/prevhash/hash
    prev_hash       bytea       NOT NULL,
    hash            bytea       NOT NULL,
    stored_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_subject_version_key UNIQUE (subject, subject_version)
);

-- One row per source. Appends update it first, so the row lock serialises appenders: sequence
-- numbers are gapless (a rollback undoes the increment) and become visible in sequence order,
-- which is what lets the relay tail by sequence without skipping a late commit.
CREATE TABLE IF NOT EXISTS source_head (
    source    text    PRIMARY KEY,
    sequence  bigint  NOT NULL,
    prev_hash bytea   NOT NULL,
    hash      bytea   NOT NULL
);

-- How far each relay has published (the outbox cursor).
CREATE TABLE IF NOT EXISTS outbox_cursor (
    relay              text        PRIMARY KEY,
    published_sequence bigint      NOT NULL DEFAULT 0,
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- Consumed event ids, written in the same transaction as the effects (exactly-once effects).
CREATE TABLE IF NOT EXISTS inbox (
    consumer     text        NOT NULL,
    event_id     uuid        NOT NULL,
    event_type   text        NOT NULL,
    source       text        NOT NULL,
    sequence     bigint      NOT NULL,
    outcome      text        NOT NULL CHECK (outcome IN ('applied', 'dead_lettered')),
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

CREATE OR REPLACE FUNCTION events_are_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only: % is not allowed', TG_OP;
END $$;

DROP TRIGGER IF EXISTS events_append_only ON events;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_are_append_only();
