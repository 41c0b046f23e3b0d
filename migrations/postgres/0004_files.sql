-- Uploaded files. The bytes live in the storage (a directory or a bucket) under `key` and,
-- for images, `thumbnail_key`; the row says who uploaded them and where they are attached.
-- A row is written `pending` before the bytes and marked `ready` after them, so a crash
-- mid-upload leaves a pending row for the sweep, never bytes nobody knows of.
CREATE TABLE files (
    id            UUID PRIMARY KEY,           -- UUIDv7, the key's stem
    key           TEXT NOT NULL,
    thumbnail_key TEXT,
    uploader_id   UUID NOT NULL REFERENCES users (id),
    file_name     TEXT NOT NULL,
    file_type     TEXT NOT NULL,              -- the MIME type decided from the bytes
    file_size     BIGINT NOT NULL,            -- bytes stored
    state         TEXT NOT NULL,              -- 'pending' | 'ready'
    message_id    UUID,                       -- the one message attaching it
    created_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX files_message_id ON files (message_id) WHERE message_id IS NOT NULL;
CREATE INDEX files_pending ON files (created_at) WHERE state = 'pending';
