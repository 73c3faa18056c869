CREATE TABLE IF NOT EXISTS "plainsessions_session" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "session_key" varchar(40) NOT NULL UNIQUE, "session_data" text NOT NULL CHECK (JSON_VALID("session_data")), "created_at" datetime NOT NULL, "expires_at" datetime NULL);
CREATE INDEX IF NOT EXISTS "plainsessions_session_expires_at_idx" ON "plainsessions_session" ("expires_at");
