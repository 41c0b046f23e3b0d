-- Channels, memberships, stars and messages.
CREATE TABLE channels (
    id              BLOB PRIMARY KEY NOT NULL,
    name            TEXT NOT NULL,            -- lower-case [a-z0-9_-], 2-50 chars
    description     TEXT,
    is_private      BOOLEAN NOT NULL,
    created_by      BLOB REFERENCES users (id) ON DELETE SET NULL,
    last_message_id BLOB,                     -- the newest id minted in this channel
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE UNIQUE INDEX channels_name ON channels (name);

CREATE TABLE channel_members (
    channel_id BLOB NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    joined_at  TEXT NOT NULL,
    PRIMARY KEY (channel_id, user_id)
);
CREATE INDEX channel_members_user ON channel_members (user_id);
CREATE INDEX channel_members_joined ON channel_members (channel_id, joined_at, user_id);

CREATE TABLE channel_stars (
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    channel_id BLOB NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (user_id, channel_id)
);
CREATE INDEX channel_stars_channel ON channel_stars (channel_id);

CREATE TABLE messages (
    id          BLOB PRIMARY KEY NOT NULL,    -- UUIDv7, increasing in commit order per channel
    channel_id  BLOB NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    sender_id   BLOB NOT NULL REFERENCES users (id),
    content     TEXT NOT NULL,
    attachments TEXT NOT NULL DEFAULT '[]',   -- JSON array of file objects
    parent_id   BLOB,
    nonce       TEXT,
    edited_at   TEXT,
    created_at  TEXT NOT NULL
);
-- History pages are one range scan of this index, at any depth.
CREATE INDEX messages_channel_id ON messages (channel_id, id);
-- Idempotent sends: the index, not a read-then-write, decides.
CREATE UNIQUE INDEX messages_nonce ON messages (channel_id, sender_id, nonce);
