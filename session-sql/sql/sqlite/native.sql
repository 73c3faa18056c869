CREATE TABLE IF NOT EXISTS "sessions" (session_key TEXT PRIMARY KEY NOT NULL, data TEXT NOT NULL, expires_at INTEGER NOT NULL, version INTEGER NOT NULL, user_id TEXT, created_at INTEGER NOT NULL, last_active_at INTEGER, user_agent TEXT, ip TEXT);
CREATE INDEX IF NOT EXISTS "sessions_expires_at_idx" ON "sessions" (expires_at);
CREATE INDEX IF NOT EXISTS "sessions_user_id_idx" ON "sessions" (user_id) WHERE user_id IS NOT NULL;
