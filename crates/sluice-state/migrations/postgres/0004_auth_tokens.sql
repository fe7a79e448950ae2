-- 0004: users and API tokens of `sluice serve` (docs/security.md). A token is stored only as the
-- SHA-256 of its text (tokens are 256-bit random, so a fast hash cannot be brute-forced) and as
-- SCRAM-SHA-256 keys (StoredKey, ServerKey: one-way, enough to check a PostgreSQL wire login that
-- uses the token as its password). The salt is per user, so every token of a user answers one
-- SCRAM exchange. Rows are never deleted: revoking sets `revoked_at`.
CREATE TABLE IF NOT EXISTS auth_users (
    user_name TEXT PRIMARY KEY, scram_salt TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS auth_tokens (
    token_id TEXT PRIMARY KEY, user_name TEXT NOT NULL, role TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE, scram_iterations BIGINT NOT NULL,
    scram_stored_key TEXT NOT NULL, scram_server_key TEXT NOT NULL,
    created_at TEXT NOT NULL, expires_at TEXT, revoked_at TEXT);
CREATE INDEX IF NOT EXISTS auth_tokens_by_user ON auth_tokens (user_name);
