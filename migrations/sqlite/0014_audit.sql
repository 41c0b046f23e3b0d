-- The audit log (docs/api.md, "Audit log"): one row per recorded action, written in the
-- transaction of the change it records and never changed after; only retention deletes.
-- No foreign keys: an entry outlives the channel, message or membership it names.
CREATE TABLE audit_log (
    id             BLOB PRIMARY KEY NOT NULL, -- UUIDv7: newest first is id order
    action         TEXT NOT NULL,
    at             TEXT NOT NULL,
    actor_id       BLOB,
    channel_id     BLOB,
    target_user_id BLOB,
    message_id     BLOB,
    ip             TEXT,
    details        TEXT                       -- a JSON object, or NULL
);
CREATE INDEX audit_log_channel ON audit_log (channel_id, id) WHERE channel_id IS NOT NULL;
CREATE INDEX audit_log_actor ON audit_log (actor_id, id) WHERE actor_id IS NOT NULL;
CREATE INDEX audit_log_action ON audit_log (action, id);
