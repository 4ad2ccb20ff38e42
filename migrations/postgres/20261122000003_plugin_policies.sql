-- Plugin policies (issue 5): which WebAssembly plugins run for which consumers. The policy is
-- kept whole as JSON (`spec`, the REST body); the hub validates it against the loaded plugins
-- before it is stored, and reads every policy into memory at start and after each change.
CREATE TABLE plugin_policies (
    name        TEXT PRIMARY KEY,
    spec        JSON NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
