-- 001: users get an email verification timestamp
-- rollback: ALTER TABLE users DROP COLUMN email_verified_at;
ALTER TABLE users ADD COLUMN email_verified_at TIMESTAMP NULL;
CREATE INDEX users_email_verified_at_idx ON users (email_verified_at);
