-- Priority: insights received, co-production sessions, agreed priorities and actions.

-- Read model of insights, from InsightDrafted consumed through the inbox: the latest revision.
-- Not rebuildable from this service's store (the insight service owns those events): a topic
-- replay through the inbox refills it.
CREATE TABLE IF NOT EXISTS insights (
    insight_id       uuid PRIMARY KEY,
    revision         integer NOT NULL,
    statement        text NOT NULL,
    category         text NOT NULL,
    conversation_ids uuid[] NOT NULL,
    event_id         uuid NOT NULL,              -- the InsightDrafted event of this revision
    source           text NOT NULL,
    drafted_at       timestamptz NOT NULL
);

-- Co-production sessions. There is no public event for an open session or a response, and the
-- store may hold only public events (each is chained and published), so session state is kept
-- here, written in the same transaction as the PriorityAgreed it may lead to.
CREATE TABLE IF NOT EXISTS sessions (
    session_id     uuid PRIMARY KEY,
    statement      text NOT NULL,
    rule           jsonb NOT NULL,
    opened_by      text NOT NULL,
    opened_at      timestamptz NOT NULL DEFAULT now(),
    correlation_id text NOT NULL,
    status         text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'agreed', 'not_agreed')),
    decided_by     text,
    decided_at     timestamptz,
    tally          jsonb,                         -- the final tally, once decided
    reasons        text[] NOT NULL DEFAULT '{}',  -- why it was not agreed
    priority_id    uuid
);

-- The insights under discussion, as they stood when the session opened.
CREATE TABLE IF NOT EXISTS session_insights (
    session_id uuid NOT NULL REFERENCES sessions (session_id),
    position   integer NOT NULL,
    insight_id uuid NOT NULL,
    revision   integer NOT NULL,
    event_id   uuid NOT NULL,
    PRIMARY KEY (session_id, insight_id)
);

-- One response per partner per session; a later one replaces it while the session is open.
CREATE TABLE IF NOT EXISTS session_responses (
    session_id   uuid NOT NULL REFERENCES sessions (session_id),
    partner_id   text NOT NULL,
    response     text NOT NULL CHECK (response IN ('support', 'object', 'abstain')),
    responded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, partner_id)
);

-- Read model of agreed priorities, folded from this service's store (rebuildable).
CREATE TABLE IF NOT EXISTS priorities (
    priority_id uuid PRIMARY KEY,
    session_id  uuid NOT NULL,
    statement   text NOT NULL,
    insight_ids uuid[] NOT NULL,
    agreed_by   text[] NOT NULL,
    tally       jsonb NOT NULL,
    rule        jsonb NOT NULL,
    event_id    uuid NOT NULL,
    sequence    bigint NOT NULL,
    agreed_at   timestamptz NOT NULL
);

-- Read model of actions: this service's own (folded from its store, rebuildable) and those
-- trust systems published themselves (consumed through the inbox).
CREATE TABLE IF NOT EXISTS actions (
    action_id      uuid PRIMARY KEY,
    source         text NOT NULL,
    version        integer NOT NULL,
    event_id       uuid NOT NULL,               -- the ActionTaken event of this version
    priority_ids   uuid[] NOT NULL,
    description    text NOT NULL,
    service        text NOT NULL,
    place          text NOT NULL,
    framework      text NOT NULL,
    framework_area text NOT NULL,
    status         text NOT NULL,
    duplicate_key  text NOT NULL,
    recorded_by    text NOT NULL,
    first_recorded timestamptz NOT NULL,
    last_recorded  timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS actions_duplicate_key ON actions (duplicate_key);
CREATE INDEX IF NOT EXISTS actions_priorities ON actions USING gin (priority_ids);
