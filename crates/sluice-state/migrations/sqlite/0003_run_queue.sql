-- 0003: runs queued by a process that does not execute runs (`sluice serve --role api`), for a
-- scheduler to claim and execute. The run itself is in `runs` with status `queued`; this holds its
-- request (selection and options, JSON) and who claimed it.
CREATE TABLE IF NOT EXISTS run_queue (
    run_id TEXT PRIMARY KEY, request TEXT NOT NULL, queued_at TEXT NOT NULL,
    claimed_by TEXT, claimed_ms BIGINT);
