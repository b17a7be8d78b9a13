-- 004: invoices lose the legacy PDF blob (moved to object storage in 2.3)
-- rollback: none: the blobs are gone once dropped; restore from the nightly backup
ALTER TABLE invoices DROP COLUMN pdf_blob;
