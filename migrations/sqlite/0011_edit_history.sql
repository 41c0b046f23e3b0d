-- Edit history: each edit keeps the content it replaced, with the time that content was
-- written (the message's creation, or the edit before). The current content stays on the
-- message itself. Versions go with their message, and a tombstone loses them.
CREATE TABLE message_versions (
    id         BLOB PRIMARY KEY NOT NULL,
    message_id BLOB NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    content    TEXT NOT NULL,
    written_at TEXT NOT NULL
);
CREATE INDEX message_versions_message ON message_versions (message_id, id);
