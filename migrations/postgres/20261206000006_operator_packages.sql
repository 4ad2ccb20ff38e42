-- Operator packages (issue 11): the hub's package repository. A version is the archive as
-- uploaded (verified first), its identity (name, app version, operator version), its SHA-256
-- digest, and a summary (parameters, plans, maintainers) so listings need not unpack it.
CREATE TABLE operator_packages (
    name             TEXT NOT NULL,
    app_version      TEXT NOT NULL,
    operator_version TEXT NOT NULL,
    archive_name     TEXT NOT NULL UNIQUE,
    description      TEXT NOT NULL,
    digest           TEXT NOT NULL,
    archive          BYTEA NOT NULL,
    summary          JSON NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (name, app_version, operator_version)
);
