-- Hub core: consumers, resource bundles and the outbox the transport drains.
-- The embedded twin of migrations/postgres: JSON is stored as TEXT (queried with SQLite's JSON
-- functions) and timestamps as RFC 3339 TEXT as sqlx encodes them.

CREATE TABLE consumers (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    labels      TEXT NOT NULL DEFAULT '{}',
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX consumers_created_idx ON consumers (created_at, id);

CREATE TABLE resource_bundles (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    consumer_name    TEXT NOT NULL REFERENCES consumers (name) ON UPDATE RESTRICT ON DELETE RESTRICT,
    version          INTEGER NOT NULL,
    metadata         TEXT NOT NULL DEFAULT '{}',
    labels           TEXT NOT NULL DEFAULT '{}',
    manifests        TEXT NOT NULL,
    manifest_labels  TEXT NOT NULL DEFAULT '[]',
    manifest_count   INTEGER NOT NULL,
    manifest_configs TEXT NOT NULL DEFAULT '[]',
    delete_option    TEXT,
    status           TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    deleted_at       TEXT,
    UNIQUE (consumer_name, name)
);
CREATE INDEX resource_bundles_created_idx ON resource_bundles (created_at, id);

CREATE TABLE outbox (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    resource_id      TEXT NOT NULL,
    consumer_name    TEXT NOT NULL,
    action           TEXT NOT NULL CHECK (action IN ('create', 'update', 'delete')),
    resource_version INTEGER NOT NULL,
    created_at       TEXT NOT NULL
);
CREATE INDEX outbox_resource_idx ON outbox (resource_id);
