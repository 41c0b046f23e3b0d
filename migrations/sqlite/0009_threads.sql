-- Threads: a reply's parent_id is always its thread's root. A root deleted while it has
-- replies stays as a tombstone (deleted_at set, content and attachments emptied). The
-- partial index serves a thread's replies in order and the counts shown on its root.
ALTER TABLE messages ADD COLUMN deleted_at TEXT;
CREATE INDEX messages_parent ON messages (parent_id, id) WHERE parent_id IS NOT NULL;

-- Who follows which thread. Replying follows (again); the root's author is added on the
-- first reply unless they had unfollowed; following = FALSE remembers an unfollow.
CREATE TABLE thread_follows (
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    root_id    BLOB NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    channel_id BLOB NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    following  BOOLEAN NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (user_id, root_id)
);
CREATE INDEX thread_follows_root ON thread_follows (root_id);
