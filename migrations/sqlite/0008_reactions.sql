-- Reactions: one row per person, emoji and message (the unique index decides, also under
-- concurrent requests), with an id of its own (UUIDv7). The unique index serves a
-- message's reactions (counted per emoji, first users by time); reactions_user finds a
-- reader's own among a page's messages. They go with their message.
CREATE TABLE reactions (
    id         BLOB PRIMARY KEY NOT NULL,
    message_id BLOB NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    emoji      TEXT NOT NULL,
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    UNIQUE (message_id, emoji, user_id)
);
CREATE INDEX reactions_user ON reactions (user_id, message_id);
