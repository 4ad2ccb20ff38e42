-- Hub core: consumers, resource bundles and the outbox the transport drains.
-- Ids are text so that the ids Maestro clients already use (UUIDs) and our own look alike.

CREATE TABLE consumers (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    labels      JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
-- jsonb_path_ops serves the `labels @> '{"k":"v"}'` containment the search language emits.
CREATE INDEX consumers_labels_idx ON consumers USING GIN (labels jsonb_path_ops);
CREATE INDEX consumers_created_idx ON consumers (created_at, id);

-- Client content is stored as `json`, not `jsonb`: it keeps the text, so lists of thousands of
-- bundles are served without converting every manifest back from jsonb, and inserts skip
-- indexing every path of every manifest. What search needs is copied into small jsonb
-- columns with their own indexes: `labels` and `manifest_labels`.
CREATE TABLE resource_bundles (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    consumer_name    TEXT NOT NULL REFERENCES consumers (name) ON UPDATE RESTRICT ON DELETE RESTRICT,
    version          BIGINT NOT NULL,
    metadata         JSON NOT NULL,
    -- metadata.labels, searched as `labels.<key>`.
    labels           JSONB NOT NULL DEFAULT '{}'::jsonb,
    manifests        JSON NOT NULL,
    -- [{"metadata": {"labels": ...}}] for each manifest, searched as `manifest_labels.<key>`.
    manifest_labels  JSONB NOT NULL DEFAULT '[]'::jsonb,
    manifest_count   BIGINT NOT NULL,
    manifest_configs JSON NOT NULL,
    delete_option    JSON,
    status           JSON,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    -- Set by DELETE; the row goes away when the agent confirms (two-phase delete).
    deleted_at       TIMESTAMPTZ,
    UNIQUE (consumer_name, name)
);
CREATE INDEX resource_bundles_created_idx ON resource_bundles (created_at, id);
CREATE INDEX resource_bundles_labels_idx ON resource_bundles USING GIN (labels jsonb_path_ops);
-- Serves `manifest_labels.k = 'v'`, compiled to `manifest_labels @> '[{"metadata":{"labels":{"k":"v"}}}]'`.
CREATE INDEX resource_bundles_manifest_labels_idx ON resource_bundles USING GIN (manifest_labels jsonb_path_ops);

-- Every change to a bundle writes one row here in the same transaction, so the transport
-- can never miss a change: it drains rows in seq order and deletes each after the broker's ack.
CREATE TABLE outbox (
    seq              BIGSERIAL PRIMARY KEY,
    resource_id      TEXT NOT NULL,
    consumer_name    TEXT NOT NULL,
    action           TEXT NOT NULL CHECK (action IN ('create', 'update', 'delete')),
    resource_version BIGINT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX outbox_resource_idx ON outbox (resource_id);
