-- Shipments run `machines/shipment.fsm`, with an audit trail of their own; webhooks
-- record what came of them. The same changes as `migrations/sqlite/0003_*.sql`.

-- 1. `shipments.state` takes the machine's states. Existing rows: `in_transit`,
--    `delivered` and `lost` stay; `returned` (a parcel the customer sent back after it
--    was delivered) becomes `delivered`.
ALTER TABLE shipments DROP CONSTRAINT shipments_state_check;

UPDATE shipments SET state = 'delivered' WHERE state = 'returned';

ALTER TABLE shipments ADD CONSTRAINT shipments_state_check CHECK (state IN (
    'label_created', 'in_transit', 'out_for_delivery', 'failed_attempt', 'delivered',
    'returned_to_sender', 'lost', 'cancelled'));

-- Carrier webhooks name a parcel by its tracking number.
CREATE INDEX shipments_tracking ON shipments (tracking_number, id)
    WHERE tracking_number IS NOT NULL;

-- 2. The audit trail of payments' and shipments' own machines (`payment.fsm`,
--    `shipment.fsm`): one numbered trail per entity, append-only like
--    `order_transitions`. No foreign key on `entity_id`: it names a row of `payments` or
--    of `shipments`, depending on `machine`.
CREATE TABLE entity_transitions (
    id           BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    machine      TEXT        NOT NULL CHECK (machine IN ('Payment', 'Shipment')),
    entity_id    BIGINT      NOT NULL,
    order_id     BIGINT      NOT NULL REFERENCES orders (id),
    seq          BIGINT      NOT NULL CHECK (seq > 0),
    event        TEXT        NOT NULL,
    from_state   TEXT        NOT NULL,
    to_state     TEXT        NOT NULL,
    actor_kind   TEXT        NOT NULL,
    actor_id     TEXT,
    reason       TEXT,
    is_override  BOOLEAN     NOT NULL,
    machine_hash TEXT        NOT NULL,
    -- The inbox message or idempotency key that caused the transition.
    external_id  TEXT,
    metadata     JSONB       NOT NULL DEFAULT 'null',
    created_at   TIMESTAMPTZ NOT NULL,
    UNIQUE (machine, entity_id, seq)
);

-- Sequence numbers of an entity run 1, 2, 3, ... without gaps. Two transactions that
-- both read the same last one (neither locked the entity) cannot both insert: the
-- UNIQUE (machine, entity_id, seq) constraint refuses the second.
CREATE FUNCTION entity_transitions_seq_follows() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    expected BIGINT;
BEGIN
    SELECT COALESCE(MAX(seq), 0) + 1 INTO expected
    FROM entity_transitions WHERE machine = NEW.machine AND entity_id = NEW.entity_id;
    IF NEW.seq <> expected THEN
        RAISE EXCEPTION 'entity_transitions seq must follow the entity''s last one'
            USING ERRCODE = 'integrity_constraint_violation',
                  DETAIL = format('%s %s: seq %s given, %s expected',
                                  NEW.machine, NEW.entity_id, NEW.seq, expected);
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER entity_transitions_seq BEFORE INSERT ON entity_transitions
    FOR EACH ROW EXECUTE FUNCTION entity_transitions_seq_follows();

CREATE TRIGGER entity_transitions_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON entity_transitions
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_append_only_change();

-- 3. What processing made of a webhook (`applied`, `duplicate`, `ignored: ...`); NULL
--    while it waits.
ALTER TABLE inbox ADD COLUMN outcome TEXT;

CREATE INDEX inbox_pending ON inbox (source, received_at, external_id COLLATE "C")
    WHERE processed_at IS NULL;
