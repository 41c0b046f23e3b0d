-- One row that GET /health rewrites: a committed write proves the database can still write
-- (a full disk or a read-only standby fails it while reads still work).
CREATE TABLE health_probe (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    checked_at TIMESTAMPTZ NOT NULL
);
INSERT INTO health_probe (id, checked_at) VALUES (1, '1970-01-01T00:00:00+00:00');
