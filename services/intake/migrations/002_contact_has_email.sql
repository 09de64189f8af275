-- Whether the sealed contact details hold an email address: not personal data, and what the
-- guard of a returning participant's conversation that asks for feedback by email checks under
-- the row locks (the details themselves are sealed). NULL on rows written before this column:
-- unchanged since, so what a reader decrypts from them is still current. Instances of the
-- release before this one write contacts without it: stop them before this release writes
-- (a rolling upgrade would leave a replaced contact's flag stale until it is written again).
ALTER TABLE participant_contacts ADD COLUMN IF NOT EXISTS has_email boolean;
