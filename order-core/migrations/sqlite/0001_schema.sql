-- The order management schema, SQLite flavour.
--
-- Conventions: timestamps are RFC 3339 UTC text (as sqlx encodes `DateTime<Utc>`, which
-- sorts chronologically as text), booleans are INTEGER 0/1, JSON is TEXT. Tables are
-- STRICT so that a value of the wrong type is refused rather than stored.
--
-- Order states are deliberately not constrained here: they come from `machines/order.fsm`,
-- which may gain states without a migration. `Store::verify` checks them against the
-- audit trail instead.

CREATE TABLE customers (
    id         INTEGER PRIMARY KEY,
    email      TEXT    NOT NULL UNIQUE,
    created_at TEXT    NOT NULL
) STRICT;

CREATE TABLE staff (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    role       TEXT    NOT NULL CHECK (role IN ('support', 'admin')),
    created_at TEXT    NOT NULL
) STRICT;

CREATE TABLE products (
    id          INTEGER PRIMARY KEY,
    sku         TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
    on_hand     INTEGER NOT NULL DEFAULT 0,
    reserved    INTEGER NOT NULL DEFAULT 0,
    CHECK (reserved >= 0 AND reserved <= on_hand)
) STRICT;

CREATE TABLE orders (
    id                 INTEGER PRIMARY KEY,
    number             TEXT    NOT NULL UNIQUE,
    customer_id        INTEGER NOT NULL REFERENCES customers (id),
    state              TEXT    NOT NULL,
    version            INTEGER NOT NULL DEFAULT 0 CHECK (version >= 0),
    parent_order_id    INTEGER REFERENCES orders (id),
    currency           TEXT    NOT NULL,
    total_cents        INTEGER NOT NULL CHECK (total_cents >= 0),
    payment_status     TEXT    NOT NULL CHECK (payment_status IN (
                           'none', 'authorized', 'declined', 'captured',
                           'partially_refunded', 'refunded', 'voided')),
    fulfillment_status TEXT    NOT NULL CHECK (fulfillment_status IN (
                           'unfulfilled', 'partially_shipped', 'shipped', 'delivered',
                           'returned')),
    shipping_address   TEXT,
    created_at         TEXT    NOT NULL,
    updated_at         TEXT    NOT NULL
) STRICT;

CREATE INDEX orders_state_updated ON orders (state, updated_at);
CREATE INDEX orders_customer_created ON orders (customer_id, created_at);
CREATE INDEX orders_parent ON orders (parent_order_id) WHERE parent_order_id IS NOT NULL;

CREATE TABLE order_items (
    id               INTEGER PRIMARY KEY,
    order_id         INTEGER NOT NULL REFERENCES orders (id),
    line_no          INTEGER NOT NULL CHECK (line_no > 0),
    product_id       INTEGER NOT NULL REFERENCES products (id),
    quantity         INTEGER NOT NULL CHECK (quantity > 0),
    unit_price_cents INTEGER NOT NULL CHECK (unit_price_cents >= 0),
    qty_shipped      INTEGER NOT NULL DEFAULT 0,
    qty_returned     INTEGER NOT NULL DEFAULT 0,
    UNIQUE (order_id, line_no),
    CHECK (0 <= qty_returned AND qty_returned <= qty_shipped AND qty_shipped <= quantity)
) STRICT;

CREATE INDEX order_items_product ON order_items (product_id);

-- The stock ledger: a product's counters are the sums of its movements.
CREATE TABLE inventory_movements (
    id             INTEGER PRIMARY KEY,
    product_id     INTEGER NOT NULL REFERENCES products (id),
    order_id       INTEGER REFERENCES orders (id),
    kind           TEXT    NOT NULL CHECK (kind IN ('reserve', 'release', 'ship', 'restock', 'adjust')),
    delta_on_hand  INTEGER NOT NULL,
    delta_reserved INTEGER NOT NULL,
    created_at     TEXT    NOT NULL,
    -- Each kind moves the counters one way only.
    CHECK (
        (kind = 'reserve' AND delta_on_hand = 0 AND delta_reserved > 0)
        OR (kind = 'release' AND delta_on_hand = 0 AND delta_reserved < 0)
        OR (kind = 'ship' AND delta_on_hand < 0 AND delta_reserved = delta_on_hand)
        OR (kind = 'restock' AND delta_on_hand > 0 AND delta_reserved = 0)
        OR (kind = 'adjust' AND delta_reserved = 0)
    )
) STRICT;

CREATE INDEX inventory_movements_order ON inventory_movements (order_id, product_id)
    WHERE order_id IS NOT NULL;
CREATE INDEX inventory_movements_product ON inventory_movements (product_id);

CREATE TRIGGER inventory_movements_no_update BEFORE UPDATE ON inventory_movements
BEGIN
    SELECT RAISE(ABORT, 'inventory_movements is append-only');
END;

CREATE TRIGGER inventory_movements_no_delete BEFORE DELETE ON inventory_movements
BEGIN
    SELECT RAISE(ABORT, 'inventory_movements is append-only');
END;

CREATE TABLE payments (
    id              INTEGER PRIMARY KEY,
    order_id        INTEGER NOT NULL REFERENCES orders (id),
    attempt_no      INTEGER NOT NULL CHECK (attempt_no > 0),
    state           TEXT    NOT NULL CHECK (state IN (
                        'pending', 'authorized', 'declined', 'captured', 'voided', 'failed',
                        'refunded')),
    amount_cents    INTEGER NOT NULL CHECK (amount_cents >= 0),
    idempotency_key TEXT    NOT NULL UNIQUE,
    processor_ref   TEXT,
    failure_code    TEXT,
    fraud_review    INTEGER NOT NULL DEFAULT 0 CHECK (fraud_review IN (0, 1)),
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,
    UNIQUE (order_id, attempt_no)
) STRICT;

CREATE TABLE refunds (
    id              INTEGER PRIMARY KEY,
    order_id        INTEGER NOT NULL REFERENCES orders (id),
    payment_id      INTEGER NOT NULL REFERENCES payments (id),
    amount_cents    INTEGER NOT NULL CHECK (amount_cents > 0),
    state           TEXT    NOT NULL CHECK (state IN ('succeeded', 'failed', 'reversed')),
    reason          TEXT,
    idempotency_key TEXT    NOT NULL UNIQUE,
    processor_ref   TEXT,
    created_at      TEXT    NOT NULL
) STRICT;

CREATE INDEX refunds_order ON refunds (order_id);
CREATE INDEX refunds_payment ON refunds (payment_id);

-- Refunds never exceed the captured amount: the succeeded refunds of a payment sum to
-- at most its amount, and only a captured payment can be refunded.
CREATE TRIGGER refunds_within_captured_insert BEFORE INSERT ON refunds
WHEN NEW.state = 'succeeded'
BEGIN
    SELECT RAISE(ABORT, 'refunds exceed the captured amount')
    WHERE (SELECT COALESCE(SUM(amount_cents), 0) FROM refunds
           WHERE payment_id = NEW.payment_id AND state = 'succeeded') + NEW.amount_cents
        > COALESCE((SELECT amount_cents FROM payments
                    WHERE id = NEW.payment_id AND state = 'captured'), 0);
END;

CREATE TRIGGER refunds_within_captured_update BEFORE UPDATE OF state ON refunds
WHEN NEW.state = 'succeeded' AND OLD.state <> 'succeeded'
BEGIN
    SELECT RAISE(ABORT, 'refunds exceed the captured amount')
    WHERE (SELECT COALESCE(SUM(amount_cents), 0) FROM refunds
           WHERE payment_id = NEW.payment_id AND state = 'succeeded') + NEW.amount_cents
        > COALESCE((SELECT amount_cents FROM payments
                    WHERE id = NEW.payment_id AND state = 'captured'), 0);
END;

CREATE TABLE shipments (
    id              INTEGER PRIMARY KEY,
    order_id        INTEGER NOT NULL REFERENCES orders (id),
    state           TEXT    NOT NULL CHECK (state IN ('in_transit', 'delivered', 'returned', 'lost')),
    carrier         TEXT    NOT NULL,
    tracking_number TEXT,
    shipped_at      TEXT    NOT NULL,
    delivered_at    TEXT
) STRICT;

CREATE INDEX shipments_order ON shipments (order_id);

CREATE TABLE shipment_items (
    shipment_id   INTEGER NOT NULL REFERENCES shipments (id),
    order_item_id INTEGER NOT NULL REFERENCES order_items (id),
    quantity      INTEGER NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (shipment_id, order_item_id)
) STRICT;

CREATE INDEX shipment_items_item ON shipment_items (order_item_id);

-- The audit trail.
CREATE TABLE order_transitions (
    id              INTEGER PRIMARY KEY,
    order_id        INTEGER NOT NULL REFERENCES orders (id),
    seq             INTEGER NOT NULL CHECK (seq > 0),
    event           TEXT    NOT NULL,
    from_state      TEXT    NOT NULL,
    to_state        TEXT    NOT NULL,
    actor_kind      TEXT    NOT NULL,
    actor_id        TEXT,
    reason          TEXT,
    note            TEXT,
    is_override     INTEGER NOT NULL CHECK (is_override IN (0, 1)),
    machine_hash    TEXT    NOT NULL,
    idempotency_key TEXT,
    metadata        TEXT    NOT NULL DEFAULT 'null' CHECK (json_valid(metadata)),
    created_at      TEXT    NOT NULL,
    UNIQUE (order_id, seq)
) STRICT;

CREATE INDEX order_transitions_to_state ON order_transitions (order_id, to_state, seq);

-- Sequence numbers of an order run 1, 2, 3, ... without gaps.
CREATE TRIGGER order_transitions_seq BEFORE INSERT ON order_transitions
BEGIN
    SELECT RAISE(ABORT, 'order_transitions seq must follow the order''s last one')
    WHERE NEW.seq <> (SELECT COALESCE(MAX(seq), 0) + 1 FROM order_transitions
                      WHERE order_id = NEW.order_id);
END;

CREATE TRIGGER order_transitions_no_update BEFORE UPDATE ON order_transitions
BEGIN
    SELECT RAISE(ABORT, 'order_transitions is append-only');
END;

CREATE TRIGGER order_transitions_no_delete BEFORE DELETE ON order_transitions
BEGIN
    SELECT RAISE(ABORT, 'order_transitions is append-only');
END;

-- Rejected and failed commands. No foreign key: a command naming an order that does
-- not exist is recorded too.
CREATE TABLE transition_attempts (
    id         INTEGER PRIMARY KEY,
    order_id   INTEGER NOT NULL,
    event      TEXT    NOT NULL,
    actor_kind TEXT    NOT NULL,
    actor_id   TEXT,
    error_kind TEXT    NOT NULL,
    error      TEXT    NOT NULL,
    created_at TEXT    NOT NULL
) STRICT;

CREATE INDEX transition_attempts_order ON transition_attempts (order_id, id);

-- The transactional outbox.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    aggregate_id    INTEGER NOT NULL REFERENCES orders (id),
    kind            TEXT    NOT NULL,
    payload         TEXT    NOT NULL CHECK (json_valid(payload)),
    dedupe_key      TEXT    NOT NULL UNIQUE,
    created_at      TEXT    NOT NULL,
    delivered_at    TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at TEXT    NOT NULL,
    last_error      TEXT
) STRICT;

CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE delivered_at IS NULL;
CREATE INDEX outbox_aggregate ON outbox (aggregate_id, id);

-- Exactly-once commands: the stored outcome of each idempotency key.
CREATE TABLE command_log (
    idempotency_key TEXT    NOT NULL PRIMARY KEY,
    order_id        INTEGER NOT NULL REFERENCES orders (id),
    outcome         TEXT    NOT NULL,
    created_at      TEXT    NOT NULL
) STRICT;

-- Processor and carrier webhooks, deduplicated.
CREATE TABLE inbox (
    source       TEXT NOT NULL,
    external_id  TEXT NOT NULL,
    payload      TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    processed_at TEXT,
    PRIMARY KEY (source, external_id)
) STRICT;

CREATE TABLE order_notes (
    id         INTEGER PRIMARY KEY,
    order_id   INTEGER NOT NULL REFERENCES orders (id),
    author     TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    created_at TEXT    NOT NULL
) STRICT;

CREATE INDEX order_notes_order ON order_notes (order_id, id);
