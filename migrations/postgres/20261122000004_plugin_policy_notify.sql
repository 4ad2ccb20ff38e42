-- Plugin policies: every hub holds the stored policies in memory. A change through one hub
-- notifies them all (`LISTEN maestro_plugin_policies`), and each reloads the list; a slow poll
-- is the fallback. One NOTIFY per statement, as for the outbox.
CREATE FUNCTION maestro_plugin_policies_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('maestro_plugin_policies', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER plugin_policies_notify AFTER INSERT OR UPDATE OR DELETE ON plugin_policies
    FOR EACH STATEMENT EXECUTE FUNCTION maestro_plugin_policies_notify();
