-- Insight: the conversations partners browse (fed by consumed events) and the insights read model.

-- Conversations as consumed from intake. These rows are the source of truth for this part: they
-- come from the inbox-fed stream, not from insight's own event store, so rebuild() leaves them.
CREATE TABLE IF NOT EXISTS conversations (
    conversation_id    uuid PRIMARY KEY,
    event_id           uuid NOT NULL UNIQUE,      -- the ConversationLogged event id (causation)
    source             text NOT NULL,
    source_sequence    bigint NOT NULL,
    participant_id     text NOT NULL,             -- pseudonymous; kept to apply erasure, never shown
    held_on            date NOT NULL,
    setting            text NOT NULL,
    place              text NOT NULL,
    categories         text[] NOT NULL,
    categories_version integer NOT NULL,
    summary            text,                      -- NULL once the participant is erased
    quote_count        integer NOT NULL,          -- quotes stay sealed in intake's vault
    support_shared     text[] NOT NULL,
    equity             jsonb,                     -- NULL once the participant is erased
    erased             boolean NOT NULL DEFAULT false,
    logged_at          timestamptz NOT NULL,
    received_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS conversations_categories ON conversations USING gin (categories);
CREATE INDEX IF NOT EXISTS conversations_place ON conversations (lower(place));
CREATE INDEX IF NOT EXISTS conversations_held_on ON conversations (held_on DESC, conversation_id);
CREATE INDEX IF NOT EXISTS conversations_participant ON conversations (participant_id);

-- Erasures seen, so a conversation consumed after its participant's erasure (the two arrive on
-- different topics, in no guaranteed order) is recorded as erased from the start.
CREATE TABLE IF NOT EXISTS erased_participants (
    participant_id text PRIMARY KEY,
    erased_on      date NOT NULL,
    event_id       uuid NOT NULL,
    received_at    timestamptz NOT NULL DEFAULT now()
);

-- Read models folded from insight's own event store (rebuildable at will).
CREATE TABLE IF NOT EXISTS insights (
    insight_id       uuid PRIMARY KEY,
    revision         integer NOT NULL,
    statement        text NOT NULL,
    category         text NOT NULL,
    conversation_ids uuid[] NOT NULL,
    partner_id       text NOT NULL,              -- who wrote the latest revision
    drafted_by       text NOT NULL,
    drafted_at       timestamptz NOT NULL,
    revised_at       timestamptz NOT NULL,
    sequence         bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS insights_category ON insights (category);
CREATE INDEX IF NOT EXISTS insights_conversations ON insights USING gin (conversation_ids);

CREATE TABLE IF NOT EXISTS insight_revisions (
    insight_id       uuid NOT NULL,
    revision         integer NOT NULL,
    statement        text NOT NULL,
    category         text NOT NULL,
    conversation_ids uuid[] NOT NULL,
    partner_id       text NOT NULL,
    event_id         uuid NOT NULL UNIQUE,
    causation_ids    text[] NOT NULL,
    sequence         bigint NOT NULL,
    recorded_at      timestamptz NOT NULL,
    PRIMARY KEY (insight_id, revision)
);
