-- Plugin policies (issue 5): the embedded twin of migrations/postgres; JSON as TEXT.
CREATE TABLE plugin_policies (
    name        TEXT PRIMARY KEY,
    spec        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
