-- 002: orders record the currency they were placed in
-- rollback: ALTER TABLE orders DROP COLUMN currency;
ALTER TABLE orders ADD COLUMN currency CHAR(3) NOT NULL DEFAULT 'EUR';
UPDATE orders SET currency = 'USD' WHERE region = 'us';
