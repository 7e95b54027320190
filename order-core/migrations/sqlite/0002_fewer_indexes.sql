-- Two indexes that no query needs, dropped because every transition paid for them:
-- - `entered_at` finds an order's last entry into a state through UNIQUE (order_id,
--   seq), walking back over that order's few audit rows;
-- - the ledger is summed per product only by `verify`, which reads it whole.
DROP INDEX order_transitions_to_state;
DROP INDEX inventory_movements_product;
