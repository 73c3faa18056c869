CREATE TABLE IF NOT EXISTS "sessions" (session_key VARCHAR(64) PRIMARY KEY, data TEXT NOT NULL, expires_at TIMESTAMPTZ NOT NULL, version BIGINT NOT NULL, user_id TEXT, created_at TIMESTAMPTZ NOT NULL, last_active_at TIMESTAMPTZ, user_agent TEXT, ip TEXT, expires_bucket BIGINT NOT NULL DEFAULT 0) WITH (fillfactor = 70);
ALTER TABLE "sessions" ADD COLUMN IF NOT EXISTS expires_bucket BIGINT NOT NULL DEFAULT 0;
ALTER TABLE "sessions" SET (fillfactor = 70);
CREATE INDEX IF NOT EXISTS "sessions_exp_bucket_idx" ON "sessions" (expires_bucket);
DROP INDEX IF EXISTS "sessions_expires_at_idx";
CREATE INDEX IF NOT EXISTS "sessions_user_id_idx" ON "sessions" (user_id) WHERE user_id IS NOT NULL;
