-- The trace each consumed event was processed in (the consumer's span), so that a later command
-- resting on that event continues the same trace (see eventcore/lineage.py).
ALTER TABLE inbox ADD COLUMN IF NOT EXISTS traceparent text;
CREATE INDEX IF NOT EXISTS inbox_event_id ON inbox (event_id);
