CREATE TABLE IF NOT EXISTS "plainsessions_session" ("session_key" varchar(40) NOT NULL PRIMARY KEY, "session_data" text NOT NULL, "expires_at" timestamp with time zone NOT NULL);
CREATE INDEX IF NOT EXISTS "plainsessions_session_expires_at_idx" ON "plainsessions_session" ("expires_at");
