-- Transport: nothing to add on SQLite. It serves one hub, whose dispatcher is woken in-process
-- (PostgreSQL gets a NOTIFY trigger on outbox in the same-numbered migration).
SELECT 1;
