-- Full-text search (docs/api.md, "Search").
--
-- A trigram index (pg_trgm's GIN operator class) on the content of every live message:
-- `content ILIKE '%term%'` finds any substring of three or more characters in any script,
-- case-insensitively, through the index. PostgreSQL keeps the index in the transaction
-- that writes the message, so an edit replaces the entry and a delete or a tombstone
-- (deleted_at set) leaves the partial index. The index only narrows the candidates: every
-- one is judged again by the server's matching rule.
--
-- pg_trgm ships with PostgreSQL (contrib) and is a trusted extension: a user with CREATE
-- on the database may install it. It is installed once per database, into a schema of its
-- own (`trgm`), so that it belongs to no application schema; where an administrator has
-- installed it already, in any schema, that one is used.
DO $$
DECLARE
    home TEXT;
BEGIN
    SELECT n.nspname INTO home FROM pg_extension e
        JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm';
    IF home IS NULL THEN
        CREATE SCHEMA IF NOT EXISTS trgm;
        CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA trgm;
        home := 'trgm';
    END IF;
    EXECUTE format(
        'CREATE INDEX messages_search ON messages USING gin (content %I.gin_trgm_ops) '
        'WHERE deleted_at IS NULL', home);
END $$;
