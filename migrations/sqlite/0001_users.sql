-- Users and revoked tokens. Ids are UUIDv7 as 16-byte blobs (byte order = time order).
CREATE TABLE users (
    id            BLOB PRIMARY KEY NOT NULL,
    username      TEXT NOT NULL,
    email         TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    search_name   TEXT NOT NULL, -- display_name lower-cased (Unicode-aware, done by the server)
    avatar_url    TEXT,
    status        TEXT,
    last_seen     TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
-- Case-insensitive uniqueness decided by the index, never by a read-then-write check.
CREATE UNIQUE INDEX users_username_lower ON users (lower(username));
CREATE UNIQUE INDEX users_email_lower ON users (lower(email));
CREATE INDEX users_search_name ON users (search_name);

-- A logout revokes the token's jti until the token would have expired anyway.
CREATE TABLE token_revocations (
    jti        BLOB PRIMARY KEY NOT NULL,
    expires_at INTEGER NOT NULL -- unix seconds
);
CREATE INDEX token_revocations_expires_at ON token_revocations (expires_at);
