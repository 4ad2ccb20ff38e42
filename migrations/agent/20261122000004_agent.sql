-- The agent's local store (SQLite, one file per agent): what it applied, so it converges and
-- deletes the right objects after a restart, and the statuses the broker has not acknowledged.

CREATE TABLE agent_bundles (
    id              TEXT PRIMARY KEY,
    version         INTEGER NOT NULL,
    original_source TEXT NOT NULL,
    -- The spec event's data as received: manifests, manifestConfigs, deleteOption.
    bundle          TEXT NOT NULL,
    deleting        INTEGER NOT NULL DEFAULT 0,
    -- The objects written so far: [{apiVersion, kind, plural, namespace, name, keep}].
    applied         TEXT NOT NULL DEFAULT '[]',
    updated_at      TEXT NOT NULL
);

-- At most one status per bundle: only the newest matters. A row leaves when the broker has
-- acknowledged that status (same hash).
CREATE TABLE agent_pending_statuses (
    bundle_id       TEXT PRIMARY KEY,
    version         INTEGER NOT NULL,
    original_source TEXT NOT NULL,
    status          TEXT NOT NULL,
    hash            TEXT NOT NULL,
    queued_at       TEXT NOT NULL
);
