-- Plugin policy notifications: nothing to add on SQLite. It serves one hub, which reloads its
-- policies after its own writes and on a slow poll (PostgreSQL gets a NOTIFY trigger on
-- plugin_policies in the same-numbered migration).
SELECT 1;
