-- Full-text search (docs/api.md, "Search").
--
-- Every live message is one row of search_docs (a stable integer id, in the order messages
-- are written) and that row's trigrams in search_index, an FTS5 table with the `trigram`
-- tokenizer: any substring of three or more characters, in any script, case-insensitively
-- (FTS5 folds case itself). The index keeps no copy of the text (contentless); the text is
-- the message's own. The index only narrows the candidates: every one is judged again by
-- the server's matching rule.
--
-- Kept in the transaction that writes the message: a trigger gives a new message its
-- search_docs row and queues it in search_pending, and the writer indexes the queue with
-- one statement before it commits the batch (measured: a trigger indexing each message as
-- it is written cost a send about 20 µs more than one statement for the batch). An edit
-- replaces the entry, a delete or a tombstone removes it, and a channel's deletion too
-- (through the foreign key's cascade). FTS5 folds case itself but keeps the dotted capital
-- `İ`, which the server's rule reads as `i`: the index is given the text with `İ` as `i`.
CREATE TABLE search_docs (
    id         INTEGER PRIMARY KEY,
    message_id BLOB NOT NULL UNIQUE REFERENCES messages (id) ON DELETE CASCADE,
    channel_id BLOB NOT NULL
);
CREATE INDEX search_docs_channel ON search_docs (channel_id, id);

CREATE VIRTUAL TABLE search_index USING fts5 (
    text, content = '', contentless_delete = 1, tokenize = 'trigram'
);

-- Documents written in the open transaction, not indexed yet (empty between transactions).
CREATE TABLE search_pending (doc_id INTEGER PRIMARY KEY);

CREATE TRIGGER search_message_written AFTER INSERT ON messages
WHEN new.deleted_at IS NULL
BEGIN
    INSERT INTO search_docs (message_id, channel_id) VALUES (new.id, new.channel_id);
    INSERT INTO search_pending (doc_id) VALUES (last_insert_rowid());
END;

CREATE TRIGGER search_message_edited AFTER UPDATE OF content ON messages
WHEN new.deleted_at IS NULL AND old.content IS NOT new.content
BEGIN
    DELETE FROM search_pending
        WHERE doc_id = (SELECT id FROM search_docs WHERE message_id = new.id);
    DELETE FROM search_index
        WHERE rowid = (SELECT id FROM search_docs WHERE message_id = new.id);
    INSERT INTO search_index (rowid, text)
        SELECT id, replace(new.content, 'İ', 'i') FROM search_docs WHERE message_id = new.id;
END;

CREATE TRIGGER search_message_deleted AFTER UPDATE OF deleted_at ON messages
WHEN new.deleted_at IS NOT NULL
BEGIN
    DELETE FROM search_docs WHERE message_id = new.id;
END;

CREATE TRIGGER search_doc_removed AFTER DELETE ON search_docs
BEGIN
    DELETE FROM search_pending WHERE doc_id = old.id;
    DELETE FROM search_index WHERE rowid = old.id;
END;

-- Messages written before this migration, in the order they were written.
INSERT INTO search_docs (message_id, channel_id)
    SELECT id, channel_id FROM messages WHERE deleted_at IS NULL ORDER BY id;
INSERT INTO search_index (rowid, text)
    SELECT d.id, replace(m.content, 'İ', 'i') FROM search_docs d
        JOIN messages m ON m.id = d.message_id;
