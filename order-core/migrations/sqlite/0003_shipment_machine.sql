-- Shipments run `machines/shipment.fsm`, with an audit trail of their own; webhooks
-- record what came of them.
--
-- 1. `shipments.state` takes the machine's states. A CHECK constraint cannot be altered
--    in SQLite, so `shipments` is rebuilt, and `shipment_items` with it: migrations run
--    with foreign keys on, inside a transaction (where `PRAGMA foreign_keys` cannot be
--    turned off), so no foreign key may point at a dropped table. The new lines table
--    refers to the new parcels table; dropping the old lines first, then the old
--    parcels, leaves nothing referring to either, and renaming the new parcels table
--    rewrites the reference in the new lines table (SQLite >= 3.26 always does).
--    Existing rows: `in_transit`, `delivered` and `lost` stay; `returned` (a parcel the
--    customer sent back after it was delivered) becomes `delivered`.

CREATE TABLE shipments_0003 (
    id              INTEGER PRIMARY KEY,
    order_id        INTEGER NOT NULL REFERENCES orders (id),
    state           TEXT    NOT NULL CHECK (state IN (
                        'label_created', 'in_transit', 'out_for_delivery', 'failed_attempt',
                        'delivered', 'returned_to_sender', 'lost', 'cancelled')),
    carrier         TEXT    NOT NULL,
    tracking_number TEXT,
    shipped_at      TEXT    NOT NULL,
    delivered_at    TEXT
) STRICT;

INSERT INTO shipments_0003 (id, order_id, state, carrier, tracking_number, shipped_at,
                            delivered_at)
SELECT id, order_id, CASE state WHEN 'returned' THEN 'delivered' ELSE state END, carrier,
       tracking_number, shipped_at, delivered_at
FROM shipments;

CREATE TABLE shipment_items_0003 (
    shipment_id   INTEGER NOT NULL REFERENCES shipments_0003 (id),
    order_item_id INTEGER NOT NULL REFERENCES order_items (id),
    quantity      INTEGER NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (shipment_id, order_item_id)
) STRICT;

INSERT INTO shipment_items_0003 (shipment_id, order_item_id, quantity)
SELECT shipment_id, order_item_id, quantity FROM shipment_items;

DROP TABLE shipment_items;
DROP TABLE shipments;
ALTER TABLE shipments_0003 RENAME TO shipments;
ALTER TABLE shipment_items_0003 RENAME TO shipment_items;

CREATE INDEX shipments_order ON shipments (order_id);
CREATE INDEX shipment_items_item ON shipment_items (order_item_id);
-- Carrier webhooks name a parcel by its tracking number.
CREATE INDEX shipments_tracking ON shipments (tracking_number, id)
    WHERE tracking_number IS NOT NULL;

-- 2. The audit trail of payments' and shipments' own machines (`payment.fsm`,
--    `shipment.fsm`): one numbered trail per entity, append-only like
--    `order_transitions`. No foreign key on `entity_id`: it names a row of `payments` or
--    of `shipments`, depending on `machine`.
CREATE TABLE entity_transitions (
    id           INTEGER PRIMARY KEY,
    machine      TEXT    NOT NULL CHECK (machine IN ('Payment', 'Shipment')),
    entity_id    INTEGER NOT NULL,
    order_id     INTEGER NOT NULL REFERENCES orders (id),
    seq          INTEGER NOT NULL CHECK (seq > 0),
    event        TEXT    NOT NULL,
    from_state   TEXT    NOT NULL,
    to_state     TEXT    NOT NULL,
    actor_kind   TEXT    NOT NULL,
    actor_id     TEXT,
    reason       TEXT,
    is_override  INTEGER NOT NULL CHECK (is_override IN (0, 1)),
    machine_hash TEXT    NOT NULL,
    -- The inbox message or idempotency key that caused the transition.
    external_id  TEXT,
    metadata     TEXT    NOT NULL DEFAULT 'null' CHECK (json_valid(metadata)),
    created_at   TEXT    NOT NULL,
    UNIQUE (machine, entity_id, seq)
) STRICT;

-- Sequence numbers of an entity run 1, 2, 3, ... without gaps.
CREATE TRIGGER entity_transitions_seq BEFORE INSERT ON entity_transitions
BEGIN
    SELECT RAISE(ABORT, 'entity_transitions seq must follow the entity''s last one')
    WHERE NEW.seq <> (SELECT COALESCE(MAX(seq), 0) + 1 FROM entity_transitions
                      WHERE machine = NEW.machine AND entity_id = NEW.entity_id);
END;

CREATE TRIGGER entity_transitions_no_update BEFORE UPDATE ON entity_transitions
BEGIN
    SELECT RAISE(ABORT, 'entity_transitions is append-only');
END;

CREATE TRIGGER entity_transitions_no_delete BEFORE DELETE ON entity_transitions
BEGIN
    SELECT RAISE(ABORT, 'entity_transitions is append-only');
END;

-- 3. What processing made of a webhook (`applied`, `duplicate`, `ignored: ...`); NULL
--    while it waits.
ALTER TABLE inbox ADD COLUMN outcome TEXT;

CREATE INDEX inbox_pending ON inbox (source, received_at, external_id)
    WHERE processed_at IS NULL;
