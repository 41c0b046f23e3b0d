-- Pinned messages: when and by whom; at most 100 per channel (the service counts them
-- under the channel's row). The partial index serves a channel's pins, newest first.
ALTER TABLE messages ADD COLUMN pinned_at TIMESTAMPTZ;
ALTER TABLE messages ADD COLUMN pinned_by UUID REFERENCES users (id) ON DELETE SET NULL;
CREATE INDEX messages_pinned ON messages (channel_id, pinned_at) WHERE pinned_at IS NOT NULL;
