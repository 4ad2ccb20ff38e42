-- Plugin-policy pushes are queued like bundle changes (issue 10, "one way out"): a row per
-- consumer whose agent must be sent its policies again, written in the transaction of the change
-- that caused it (a policy created, replaced or deleted; a consumer's labels changed). The
-- transport's dispatcher drains it after the bundle outbox and deletes a row only once the
-- broker acknowledged the update, so a hub that dies after answering the REST request loses
-- nothing. No foreign key: a consumer deleted meanwhile leaves rows the dispatcher drops.
CREATE TABLE policy_outbox (
    seq           BIGSERIAL PRIMARY KEY,
    consumer_name TEXT NOT NULL,
    reason        TEXT NOT NULL CHECK (reason IN ('policy', 'labels')),
    created_at    TIMESTAMPTZ NOT NULL
);

-- The same wake-up as the bundle outbox: every hub's dispatcher drains both queues.
CREATE TRIGGER policy_outbox_notify AFTER INSERT ON policy_outbox
    FOR EACH STATEMENT EXECUTE FUNCTION maestro_outbox_notify();

-- A recorded status, and the purge that completes a delete, wake whatever follows statuses on
-- every hub (`StatusFeed`: the operator and rollout engines), with the bundle id as payload.
-- Per row, since followers want the id; a status write or a purge touches one row.
CREATE FUNCTION maestro_status_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('maestro_status', OLD.id);
    ELSE
        PERFORM pg_notify('maestro_status', NEW.id);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER status_notify AFTER UPDATE OF status OR DELETE ON resource_bundles
    FOR EACH ROW EXECUTE FUNCTION maestro_status_notify();
