-- 0005: the audit log (docs/security.md): every read, write and administrative change, appended
-- before the answer leaves the server. Sluice never updates or deletes a row; the triggers make
-- the database refuse it too.
CREATE TABLE IF NOT EXISTS audit_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, kind TEXT NOT NULL,
    action TEXT NOT NULL, actor TEXT NOT NULL, role TEXT, protocol TEXT, client TEXT,
    tables TEXT, columns TEXT, rows BIGINT, query_hash TEXT, query_text TEXT, detail TEXT);
CREATE INDEX IF NOT EXISTS audit_log_by_at ON audit_log (at);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
