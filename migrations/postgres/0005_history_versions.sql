-- What a cached newest page of history is checked against before it is served again.
-- A channel's history_version moves in the same transaction as every message written,
-- edited or deleted in it; the 'profiles' row moves with every change of a display name
-- or an avatar (the senders' profiles are part of every page).
ALTER TABLE channels ADD COLUMN history_version BIGINT NOT NULL DEFAULT 0;
CREATE TABLE cache_versions (
    name  TEXT PRIMARY KEY NOT NULL,
    value BIGINT NOT NULL
);
INSERT INTO cache_versions (name, value) VALUES ('profiles', 0);
