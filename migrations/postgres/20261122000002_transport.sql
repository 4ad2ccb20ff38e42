-- Transport: wake the dispatchers of every hub at once when outbox rows are written.
-- One NOTIFY per statement (not per row) keeps the cost of a create low; PostgreSQL also folds
-- identical notifications of one transaction into one. Dispatchers poll slowly as a fallback.
CREATE FUNCTION maestro_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('maestro_outbox', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION maestro_outbox_notify();
