-- 003: payments keep the provider's reference for reconciliation
-- rollback: ALTER TABLE payments DROP COLUMN provider_ref;
ALTER TABLE payments ADD COLUMN provider_ref VARCHAR(64) NULL;
CREATE UNIQUE INDEX payments_provider_ref_idx ON payments (provider_ref);
