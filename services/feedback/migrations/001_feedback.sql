-- Feedback: the influence graph (folded from consumed upstream facts), notifications, peer tasks.
-- Nothing here holds a name, an email address or a phone number: only pseudonymous ids.

-- The minimal facts of every consumed upstream event, in order of receipt. The graph tables
-- below are folded from them (projections.rebuild refolds at will).
CREATE TABLE IF NOT EXISTS received_facts (
    position        bigserial   PRIMARY KEY,
    event_id        uuid        NOT NULL UNIQUE,
    event_type      text        NOT NULL,
    source          text        NOT NULL,
    sequence        bigint      NOT NULL,
    subject_version integer     NOT NULL,
    recorded_at     timestamptz NOT NULL,
    correlation_id  text        NOT NULL,
    traceparent     text,
    facts           jsonb       NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS graph_participants (
    participant_id      text    PRIMARY KEY,
    to_recontact        boolean NOT NULL DEFAULT false,
    channel             text    NOT NULL DEFAULT 'none',
    earliest_contact_on date,
    consent_source      text,          -- latest consent wins: by the source's sequence,
    consent_sequence    bigint,        -- or by time between different sources
    consent_at          timestamptz,
    erased              boolean NOT NULL DEFAULT false   -- once erased, always erased
);

CREATE TABLE IF NOT EXISTS graph_conversations (
    conversation_id uuid    PRIMARY KEY,
    participant_id  text    NOT NULL,
    categories      text[]  NOT NULL,
    place           text    NOT NULL,
    held_on         date    NOT NULL,
    event_id        uuid    NOT NULL
);
CREATE INDEX IF NOT EXISTS graph_conversations_participant ON graph_conversations (participant_id);

CREATE TABLE IF NOT EXISTS graph_insights (
    insight_id uuid    PRIMARY KEY,
    revision   integer NOT NULL,               -- only the latest revision is kept
    statement  text    NOT NULL,
    category   text    NOT NULL,
    event_id   uuid    NOT NULL
);
CREATE TABLE IF NOT EXISTS graph_insight_conversations (
    insight_id      uuid NOT NULL,
    conversation_id uuid NOT NULL,
    PRIMARY KEY (insight_id, conversation_id)
);
CREATE INDEX IF NOT EXISTS graph_insight_conversations_back
    ON graph_insight_conversations (conversation_id);

CREATE TABLE IF NOT EXISTS graph_priorities (
    priority_id uuid PRIMARY KEY,
    statement   text NOT NULL,
    event_id    uuid NOT NULL
);
CREATE TABLE IF NOT EXISTS graph_priority_insights (
    priority_id uuid NOT NULL,
    insight_id  uuid NOT NULL,
    PRIMARY KEY (priority_id, insight_id)
);
CREATE INDEX IF NOT EXISTS graph_priority_insights_back ON graph_priority_insights (insight_id);

CREATE TABLE IF NOT EXISTS graph_actions (
    action_id      uuid    PRIMARY KEY,
    version        integer NOT NULL,           -- only the latest version is kept
    source         text    NOT NULL,
    description    text    NOT NULL,
    service        text    NOT NULL,
    place          text    NOT NULL,
    framework      text    NOT NULL,
    framework_area text    NOT NULL,
    status         text    NOT NULL,
    event_id       uuid    NOT NULL,
    correlation_id text    NOT NULL,
    traceparent    text
);
CREATE TABLE IF NOT EXISTS graph_action_priorities (
    action_id   uuid NOT NULL,
    priority_id uuid NOT NULL,
    PRIMARY KEY (action_id, priority_id)
);
CREATE INDEX IF NOT EXISTS graph_action_priorities_back ON graph_action_priorities (priority_id);

-- One notification per (participant, action), ever: the constraint makes a second impossible.
CREATE TABLE IF NOT EXISTS notifications (
    notification_id uuid        PRIMARY KEY,
    participant_id  text        NOT NULL,
    action_id       uuid        NOT NULL,
    channel         text        NOT NULL CHECK (channel IN ('email', 'peer_in_person')),
    status          text        NOT NULL CHECK (status IN
                        ('planned', 'sending', 'with_peer', 'sent', 'cancelled', 'failed')),
    due_on          date,                      -- not before this day (their earliest contact)
    action_event_id uuid        NOT NULL,      -- the ActionTaken that made it due to be told
    correlation_id  text        NOT NULL,
    traceparent     text,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    sending_since   timestamptz,
    message_id      text,                      -- the email's Message-ID, stable across retries
    chain           jsonb,                     -- the thread followed, when last resolved
    reason          text,                      -- why cancelled or failed; never personal data
    planned_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT notifications_once_per_participant_and_action UNIQUE (participant_id, action_id)
);
CREATE INDEX IF NOT EXISTS notifications_due ON notifications (due_on, next_attempt_at)
    WHERE status = 'planned';
CREATE INDEX IF NOT EXISTS notifications_sending ON notifications (sending_since)
    WHERE status = 'sending';
CREATE INDEX IF NOT EXISTS notifications_action ON notifications (action_id);

-- Follow-ups for peer workers who tell people in person: pseudonymous id only.
CREATE TABLE IF NOT EXISTS peer_tasks (
    task_id         uuid        PRIMARY KEY,
    notification_id uuid        NOT NULL UNIQUE REFERENCES notifications (notification_id),
    participant_id  text        NOT NULL,
    action_id       uuid        NOT NULL,
    brief           text        NOT NULL,      -- what to tell them, in plain words
    status          text        NOT NULL CHECK (status IN ('open', 'done', 'cancelled')),
    outcome         text,
    done_by         text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    closed_at       timestamptz
);
CREATE INDEX IF NOT EXISTS peer_tasks_open ON peer_tasks (created_at) WHERE status = 'open';
