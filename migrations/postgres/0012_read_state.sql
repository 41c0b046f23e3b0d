-- Read markers and unread counts (docs/api.md, "Read markers and unread counts").
--
-- A channel's roots (messages that are not replies) are numbered 1, 2, … in id order as
-- they are written (root_seq; channels.last_root_seq is the newest number); a reply
-- carries the number of the newest root before it. A member's marker is a message id and
-- that message's number, so a channel's unread count is last_root_seq - last_read_seq,
-- less the roots deleted after the marker (deleted_roots, one row per deleted root or
-- tombstone): no scan of the messages, however many are unread. A member's own messages
-- never count: sending moves the sender's marker to what they sent.
ALTER TABLE messages ADD COLUMN root_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE channels ADD COLUMN last_root_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE channel_members ADD COLUMN last_read_id UUID;
ALTER TABLE channel_members ADD COLUMN last_read_seq BIGINT NOT NULL DEFAULT 0;

CREATE TABLE deleted_roots (
    message_id UUID PRIMARY KEY NOT NULL, -- the deleted root (its row may be gone)
    channel_id UUID NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    seq        BIGINT NOT NULL
);
CREATE INDEX deleted_roots_channel ON deleted_roots (channel_id, seq);

-- A thread's marker, per reader: the newest reply they have read (no row: none yet).
-- Replying moves it; reading a thread does not follow it.
CREATE TABLE thread_reads (
    user_id      UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    root_id      UUID NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    channel_id   UUID NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    last_read_id UUID NOT NULL,
    PRIMARY KEY (user_id, root_id)
);
CREATE INDEX thread_reads_root ON thread_reads (root_id);
CREATE INDEX thread_reads_channel ON thread_reads (channel_id);

-- Mention counts after a marker: by name and channel-wide, one range each.
CREATE INDEX message_mentions_unread ON message_mentions (channel_id, user_id, message_id);

-- Messages written before this migration: numbered as if written now; tombstones are
-- deleted roots; every member has read everything, and every follower every thread.
UPDATE messages SET root_seq = n.seq FROM (
    SELECT id, SUM(CASE WHEN parent_id IS NULL THEN 1 ELSE 0 END)
        OVER (PARTITION BY channel_id ORDER BY id) AS seq FROM messages
) n WHERE messages.id = n.id;
INSERT INTO deleted_roots (message_id, channel_id, seq)
    SELECT id, channel_id, root_seq FROM messages
    WHERE parent_id IS NULL AND deleted_at IS NOT NULL;
UPDATE channels SET last_root_seq =
    COALESCE((SELECT MAX(root_seq) FROM messages m WHERE m.channel_id = channels.id), 0);
UPDATE channel_members SET
    last_read_id = (SELECT last_message_id FROM channels c WHERE c.id = channel_members.channel_id),
    last_read_seq = (SELECT last_root_seq FROM channels c WHERE c.id = channel_members.channel_id);
INSERT INTO thread_reads (user_id, root_id, channel_id, last_read_id)
    SELECT f.user_id, f.root_id, f.channel_id,
        (SELECT r.id FROM messages r WHERE r.parent_id = f.root_id ORDER BY r.id DESC LIMIT 1)
    FROM thread_follows f
    WHERE EXISTS (SELECT 1 FROM messages r WHERE r.parent_id = f.root_id);
