-- One row that GET /health rewrites: a committed write proves the database can still write
-- (a full disk or a read-only file system fails it while reads still work).
CREATE TABLE health_probe (
    id         INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    checked_at TEXT NOT NULL
);
INSERT INTO health_probe (id, checked_at) VALUES (1, '1970-01-01T00:00:00+00:00');
