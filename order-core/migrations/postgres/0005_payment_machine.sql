-- Payments run `machines/payment.fsm`: `payments.state` takes the machine's states, and
-- each payment's transitions go to its own trail in `entity_transitions`.
--
-- Existing rows: `pending` (asked, no answer recorded) is `initiated`; `declined` and
-- `failed` are `failed` (the failure code tells them apart); a `captured` payment is
-- `partially_refunded` or `refunded` when its succeeded refunds say so. A `refunded` row
-- used to mean a capture undone after its transition failed, with no succeeded refund: it
-- gets one, so that every payment's captured and refunded amounts are in `refunds`.

ALTER TABLE payments DROP CONSTRAINT payments_state_check;

-- Only a payment that captured money can be refunded; it may be `partially_refunded`
-- or `refunded` already (a chargeback after a partial refund, a refund reversed and
-- made again). The lock is as before: see 0001.
CREATE OR REPLACE FUNCTION refunds_within_captured() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    captured BIGINT;
    refunded BIGINT;
BEGIN
    SELECT CASE WHEN state IN ('captured', 'partially_refunded', 'refunded')
                THEN amount_cents ELSE 0 END INTO captured
    FROM payments WHERE id = NEW.payment_id
    FOR NO KEY UPDATE;
    SELECT COALESCE(SUM(amount_cents), 0) INTO refunded
    FROM refunds
    WHERE payment_id = NEW.payment_id AND state = 'succeeded'
      AND (TG_OP = 'INSERT' OR id <> NEW.id);
    IF refunded + NEW.amount_cents > COALESCE(captured, 0) THEN
        RAISE EXCEPTION 'refunds exceed the captured amount'
            USING ERRCODE = 'integrity_constraint_violation',
                  DETAIL = format('payment %s: %s captured, %s refunded, %s more asked',
                                  NEW.payment_id, COALESCE(captured, 0), refunded,
                                  NEW.amount_cents);
    END IF;
    RETURN NEW;
END;
$$;

INSERT INTO refunds (order_id, payment_id, amount_cents, state, reason, idempotency_key,
                     processor_ref, created_at)
SELECT p.order_id, p.id, p.amount_cents, 'succeeded', 'processor_error',
       'migrated-undo-' || p.id, NULL, p.updated_at
FROM payments p
WHERE p.state = 'refunded' AND p.amount_cents > 0
  AND NOT EXISTS (SELECT 1 FROM refunds r
                  WHERE r.payment_id = p.id AND r.state = 'succeeded');

UPDATE payments p
SET state = CASE
        WHEN p.state = 'pending' THEN 'initiated'
        WHEN p.state IN ('declined', 'failed') THEN 'failed'
        WHEN p.state = 'captured' THEN
            CASE
                WHEN r.refunded >= p.amount_cents AND p.amount_cents > 0 THEN 'refunded'
                WHEN r.refunded > 0 THEN 'partially_refunded'
                ELSE 'captured'
            END
        ELSE p.state
    END
FROM (SELECT q.id, COALESCE(SUM(f.amount_cents) FILTER (WHERE f.state = 'succeeded'), 0)
             AS refunded
      FROM payments q LEFT JOIN refunds f ON f.payment_id = q.id
      GROUP BY q.id) r
WHERE r.id = p.id;

ALTER TABLE payments ADD CONSTRAINT payments_state_check CHECK (state IN (
    'initiated', 'authorized', 'captured', 'partially_refunded', 'refunded', 'failed',
    'voided'));
