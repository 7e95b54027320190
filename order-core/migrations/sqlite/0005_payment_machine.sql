-- Payments run `machines/payment.fsm`: `payments.state` takes the machine's states, and
-- each payment's transitions go to its own trail in `entity_transitions`.
--
-- Existing rows: `pending` (asked, no answer recorded) is `initiated`; `declined` and
-- `failed` are `failed` (the failure code tells them apart); a `captured` payment is
-- `partially_refunded` or `refunded` when its succeeded refunds say so. A `refunded` row
-- used to mean a capture undone after its transition failed, with no succeeded refund: it
-- gets one, so that every payment's captured and refunded amounts are in `refunds`.
--
-- A CHECK constraint cannot be altered in SQLite, so `payments` is rebuilt, and
-- `refunds` with it, the way 0003 rebuilt `shipments`: the new refunds table refers to
-- the new payments table, the old refunds go first, then the old payments, and renaming
-- the new payments table rewrites the reference.

CREATE TABLE payments_0005 (
    id              INTEGER PRIMARY KEY,
    order_id        INTEGER NOT NULL REFERENCES orders (id),
    attempt_no      INTEGER NOT NULL CHECK (attempt_no > 0),
    state           TEXT    NOT NULL CHECK (state IN (
                        'initiated', 'authorized', 'captured', 'partially_refunded',
                        'refunded', 'failed', 'voided')),
    amount_cents    INTEGER NOT NULL CHECK (amount_cents >= 0),
    idempotency_key TEXT    NOT NULL UNIQUE,
    processor_ref   TEXT,
    failure_code    TEXT,
    fraud_review    INTEGER NOT NULL DEFAULT 0 CHECK (fraud_review IN (0, 1)),
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,
    UNIQUE (order_id, attempt_no)
) STRICT;

INSERT INTO payments_0005 (id, order_id, attempt_no, state, amount_cents, idempotency_key,
                           processor_ref, failure_code, fraud_review, created_at, updated_at)
SELECT p.id, p.order_id, p.attempt_no,
       CASE
           WHEN p.state = 'pending' THEN 'initiated'
           WHEN p.state IN ('declined', 'failed') THEN 'failed'
           WHEN p.state = 'captured' THEN
               CASE
                   WHEN r.refunded >= p.amount_cents AND p.amount_cents > 0 THEN 'refunded'
                   WHEN r.refunded > 0 THEN 'partially_refunded'
                   ELSE 'captured'
               END
           ELSE p.state
       END,
       p.amount_cents, p.idempotency_key, p.processor_ref, p.failure_code, p.fraud_review,
       p.created_at, p.updated_at
FROM payments p
LEFT JOIN (SELECT payment_id, SUM(amount_cents) AS refunded
           FROM refunds WHERE state = 'succeeded' GROUP BY payment_id) r
       ON r.payment_id = p.id;

CREATE TABLE refunds_0005 (
    id              INTEGER PRIMARY KEY,
    order_id        INTEGER NOT NULL REFERENCES orders (id),
    payment_id      INTEGER NOT NULL REFERENCES payments_0005 (id),
    amount_cents    INTEGER NOT NULL CHECK (amount_cents > 0),
    state           TEXT    NOT NULL CHECK (state IN ('succeeded', 'failed', 'reversed')),
    reason          TEXT,
    idempotency_key TEXT    NOT NULL UNIQUE,
    processor_ref   TEXT,
    created_at      TEXT    NOT NULL
) STRICT;

INSERT INTO refunds_0005 (id, order_id, payment_id, amount_cents, state, reason,
                          idempotency_key, processor_ref, created_at)
SELECT id, order_id, payment_id, amount_cents, state, reason, idempotency_key,
       processor_ref, created_at
FROM refunds;

INSERT INTO refunds_0005 (order_id, payment_id, amount_cents, state, reason,
                          idempotency_key, processor_ref, created_at)
SELECT p.order_id, p.id, p.amount_cents, 'succeeded', 'processor_error',
       'migrated-undo-' || p.id, NULL, p.updated_at
FROM payments p
WHERE p.state = 'refunded' AND p.amount_cents > 0
  AND NOT EXISTS (SELECT 1 FROM refunds r
                  WHERE r.payment_id = p.id AND r.state = 'succeeded');

DROP TABLE refunds;
DROP TABLE payments;
ALTER TABLE payments_0005 RENAME TO payments;
ALTER TABLE refunds_0005 RENAME TO refunds;

-- Processor webhooks name payments by the processor's reference.
CREATE INDEX payments_processor_ref ON payments (processor_ref);
CREATE INDEX refunds_order ON refunds (order_id);
CREATE INDEX refunds_payment ON refunds (payment_id);

-- Refunds never exceed the captured amount: the succeeded refunds of a payment sum to at
-- most its amount, and only a payment that captured money can be refunded (it may be
-- `partially_refunded` or `refunded` already: a chargeback after a partial refund, a
-- refund reversed and made again).
CREATE TRIGGER refunds_within_captured_insert BEFORE INSERT ON refunds
WHEN NEW.state = 'succeeded'
BEGIN
    SELECT RAISE(ABORT, 'refunds exceed the captured amount')
    WHERE (SELECT COALESCE(SUM(amount_cents), 0) FROM refunds
           WHERE payment_id = NEW.payment_id AND state = 'succeeded') + NEW.amount_cents
        > COALESCE((SELECT amount_cents FROM payments
                    WHERE id = NEW.payment_id
                      AND state IN ('captured', 'partially_refunded', 'refunded')), 0);
END;

CREATE TRIGGER refunds_within_captured_update BEFORE UPDATE OF state ON refunds
WHEN NEW.state = 'succeeded' AND OLD.state <> 'succeeded'
BEGIN
    SELECT RAISE(ABORT, 'refunds exceed the captured amount')
    WHERE (SELECT COALESCE(SUM(amount_cents), 0) FROM refunds
           WHERE payment_id = NEW.payment_id AND state = 'succeeded') + NEW.amount_cents
        > COALESCE((SELECT amount_cents FROM payments
                    WHERE id = NEW.payment_id
                      AND state IN ('captured', 'partially_refunded', 'refunded')), 0);
END;
