-- Plugin-policy pushes are queued like bundle changes: see the PostgreSQL migration of the same
-- name. SQLite serves one hub, woken in process, so there are no triggers (neither for the
-- policy outbox nor for recorded statuses).
CREATE TABLE policy_outbox (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    consumer_name TEXT NOT NULL,
    reason        TEXT NOT NULL CHECK (reason IN ('policy', 'labels')),
    created_at    TEXT NOT NULL
);
