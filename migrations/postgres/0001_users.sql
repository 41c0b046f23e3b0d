-- Users and revoked tokens. Ids are UUIDv7 (time-ordered).
CREATE TABLE users (
    id            UUID PRIMARY KEY,
    username      TEXT NOT NULL,
    email         TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    search_name   TEXT NOT NULL, -- display_name lower-cased (Unicode-aware, done by the server)
    avatar_url    TEXT,
    status        TEXT,
    last_seen     TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
-- Case-insensitive uniqueness decided by the index, never by a read-then-write check.
CREATE UNIQUE INDEX users_username_lower ON users (lower(username));
CREATE UNIQUE INDEX users_email_lower ON users (lower(email));
CREATE INDEX users_search_name ON users (search_name text_pattern_ops);
CREATE INDEX users_username_lower_pattern ON users (lower(username) text_pattern_ops);

-- A logout revokes the token's jti until the token would have expired anyway.
CREATE TABLE token_revocations (
    jti        UUID PRIMARY KEY,
    expires_at BIGINT NOT NULL -- unix seconds
);
CREATE INDEX token_revocations_expires_at ON token_revocations (expires_at);
