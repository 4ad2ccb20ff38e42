-- Operator packages (issue 11): the embedded twin of migrations/postgres; JSON as TEXT.
CREATE TABLE operator_packages (
    name             TEXT NOT NULL,
    app_version      TEXT NOT NULL,
    operator_version TEXT NOT NULL,
    archive_name     TEXT NOT NULL UNIQUE,
    description      TEXT NOT NULL,
    digest           TEXT NOT NULL,
    archive          BLOB NOT NULL,
    summary          TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    PRIMARY KEY (name, app_version, operator_version)
);
