-- Mentions found in a message's content at send and at edit: n = 1, 2, … the users
-- mentioned by @username, in order; n = 0 (no user) when @channel or @here notified the
-- channel. They go with their message (and are replaced at an edit). The partial indexes
-- serve a user's mentions, newest first: by name, and channel-wide in their channels.
CREATE TABLE message_mentions (
    id         UUID PRIMARY KEY NOT NULL,
    message_id UUID NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    n          BIGINT NOT NULL,
    user_id    UUID REFERENCES users (id) ON DELETE CASCADE,
    channel_id UUID NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    UNIQUE (message_id, n)
);
CREATE INDEX message_mentions_user ON message_mentions (user_id, message_id)
    WHERE user_id IS NOT NULL;
CREATE INDEX message_mentions_channel ON message_mentions (channel_id, message_id)
    WHERE user_id IS NULL;
