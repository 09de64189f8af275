-- Intake: the vault, participants and the conversations read model.

CREATE TABLE IF NOT EXISTS participant_keys (
    participant_id text PRIMARY KEY,
    key_id         text NOT NULL,
    wrapped_key    bytea,                     -- NULL once erased (crypto-shredded)
    created_at     timestamptz NOT NULL DEFAULT now(),
    erased_at      timestamptz
);

CREATE TABLE IF NOT EXISTS participant_contacts (
    participant_id text PRIMARY KEY REFERENCES participant_keys (participant_id),
    sealed         jsonb NOT NULL,            -- name, email, phone sealed with the participant key
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Read model of the participant aggregate (rebuildable from the event store).
CREATE TABLE IF NOT EXISTS participants (
    participant_id text PRIMARY KEY,
    version        integer NOT NULL DEFAULT 0,  -- version of the participant stream in the store
    consent        jsonb NOT NULL,              -- latest re-contact consent
    erased         boolean NOT NULL DEFAULT false,
    conversations  integer NOT NULL DEFAULT 0,
    first_seen     timestamptz NOT NULL,
    last_seen      timestamptz NOT NULL
);

-- Read model of conversations for listeners and partners (rebuildable from the event store).
CREATE TABLE IF NOT EXISTS conversations (
    conversation_id uuid PRIMARY KEY,
    event_id        uuid NOT NULL,
    sequence        bigint NOT NULL,
    participant_id  text NOT NULL,
    listener_id     text NOT NULL,
    held_on         date NOT NULL,
    setting         text NOT NULL,
    place           text NOT NULL,
    categories      text[] NOT NULL,
    summary         text NOT NULL,
    quotes          jsonb NOT NULL,             -- sealed
    support_shared  text[] NOT NULL,
    consent         jsonb NOT NULL,
    equity          jsonb,
    erased          boolean NOT NULL DEFAULT false,
    logged_at       timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS conversations_categories ON conversations USING gin (categories);
CREATE INDEX IF NOT EXISTS conversations_place ON conversations (lower(place));
CREATE INDEX IF NOT EXISTS conversations_held_on ON conversations (held_on);
CREATE INDEX IF NOT EXISTS conversations_participant ON conversations (participant_id);
