-- 0005: the audit log (docs/security.md): every read, write and administrative change, appended
-- before the answer leaves the server. Sluice never updates or deletes a row; the trigger makes
-- the database refuse it too.
CREATE TABLE IF NOT EXISTS audit_log (
    seq BIGSERIAL PRIMARY KEY, at TEXT NOT NULL, kind TEXT NOT NULL,
    action TEXT NOT NULL, actor TEXT NOT NULL, role TEXT, protocol TEXT, client TEXT,
    tables TEXT, columns TEXT, rows BIGINT, query_hash TEXT, query_text TEXT, detail TEXT);
CREATE INDEX IF NOT EXISTS audit_log_by_at ON audit_log (at);
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'the audit log is append-only'; END; $$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
