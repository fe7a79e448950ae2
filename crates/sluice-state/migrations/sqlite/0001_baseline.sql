-- 0001 baseline: the state schema as it stood when schema versions were introduced.
-- Every statement is IF NOT EXISTS, so a state.db made before versions (all or some of these
-- tables, user_version 0) upgrades in place: what exists is kept with its rows, what is missing is
-- created. Applied migrations are never edited; change the schema in a new numbered file.

-- Run history (sluice-orchestrate: state.rs, schedule/store.rs).
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, command TEXT NOT NULL, selection TEXT NOT NULL, status TEXT NOT NULL,
    started_at TEXT NOT NULL, finished_at TEXT, nodes_ok INTEGER DEFAULT 0, nodes_failed INTEGER DEFAULT 0,
    nodes_skipped INTEGER DEFAULT 0, checks_passed INTEGER DEFAULT 0, checks_warned INTEGER DEFAULT 0,
    checks_failed INTEGER DEFAULT 0, error TEXT);
CREATE TABLE IF NOT EXISTS node_runs (
    run_id TEXT NOT NULL, node TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL,
    rows_in INTEGER, rows_out INTEGER, rows_quarantined INTEGER, started_at TEXT NOT NULL, finished_at TEXT NOT NULL,
    duration_ms INTEGER NOT NULL, error TEXT, version INTEGER, PRIMARY KEY (run_id, node));
CREATE INDEX IF NOT EXISTS node_runs_by_node ON node_runs (node, finished_at);
CREATE TABLE IF NOT EXISTS check_results (
    run_id TEXT NOT NULL, check_name TEXT NOT NULL, model TEXT NOT NULL, kind TEXT NOT NULL, column_name TEXT,
    severity TEXT NOT NULL, status TEXT NOT NULL, failing_rows INTEGER NOT NULL, sample TEXT, message TEXT,
    checked_at TEXT NOT NULL, PRIMARY KEY (run_id, check_name));
CREATE INDEX IF NOT EXISTS check_results_by_model ON check_results (model, checked_at);
CREATE TABLE IF NOT EXISTS watermarks (
    node TEXT PRIMARY KEY, value TEXT NOT NULL, run_id TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS schedule_ticks (node TEXT PRIMARY KEY, last_tick TEXT NOT NULL);
-- Run control: cancels, leases, tick claims, node logs (sluice-orchestrate: control.rs).
CREATE TABLE IF NOT EXISTS run_cancels (run_id TEXT PRIMARY KEY, requested_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS leases (node TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS lease_owners (holder TEXT PRIMARY KEY, process TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tick_claims (
    node TEXT NOT NULL, tick TEXT NOT NULL, holder TEXT NOT NULL, claimed_ms INTEGER NOT NULL,
    PRIMARY KEY (node, tick));
CREATE TABLE IF NOT EXISTS node_logs (
    run_id TEXT NOT NULL, node TEXT NOT NULL, at TEXT NOT NULL, level TEXT NOT NULL, message TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS node_logs_by_run ON node_logs (run_id, node);
CREATE TABLE IF NOT EXISTS stale_inputs (
    run_id TEXT NOT NULL, node TEXT NOT NULL, inputs TEXT NOT NULL, PRIMARY KEY (run_id, node));
-- Processes executing runs, for abandoned-run detection (sluice-orchestrate: abandon.rs).
CREATE TABLE IF NOT EXISTS run_processes (
    run_id TEXT PRIMARY KEY, process TEXT NOT NULL, start_ticks INTEGER, heartbeat_ms INTEGER NOT NULL,
    plan TEXT);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status);
-- Built partitions and backfills (sluice-orchestrate: partition/store.rs).
CREATE TABLE IF NOT EXISTS partition_ranges (
    asset TEXT NOT NULL, grain TEXT NOT NULL, lo INTEGER NOT NULL, hi INTEGER NOT NULL,
    PRIMARY KEY (asset, grain, lo));
CREATE TABLE IF NOT EXISTS backfills (
    id TEXT PRIMARY KEY, selection TEXT NOT NULL, from_key TEXT NOT NULL, to_key TEXT NOT NULL,
    missing INTEGER NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    run_id TEXT, error TEXT);
CREATE TABLE IF NOT EXISTS backfill_plan (
    backfill_id TEXT NOT NULL, asset TEXT NOT NULL, lo INTEGER NOT NULL, hi INTEGER NOT NULL,
    PRIMARY KEY (backfill_id, asset, lo));
CREATE TABLE IF NOT EXISTS backfill_done (
    backfill_id TEXT NOT NULL, asset TEXT NOT NULL, lo INTEGER NOT NULL, hi INTEGER NOT NULL,
    PRIMARY KEY (backfill_id, asset, lo));
CREATE TABLE IF NOT EXISTS backfill_failed (
    backfill_id TEXT NOT NULL, asset TEXT NOT NULL, partition_key TEXT NOT NULL, error TEXT NOT NULL,
    PRIMARY KEY (backfill_id, asset, partition_key));
-- Incidents and their alert deliveries (sluice-monitor: incidents.rs).
CREATE TABLE IF NOT EXISTS alert_incidents (
    id INTEGER PRIMARY KEY AUTOINCREMENT, asset TEXT NOT NULL, kind TEXT NOT NULL, severity TEXT NOT NULL,
    owner TEXT, status TEXT NOT NULL, opened_at TEXT NOT NULL, updated_at TEXT NOT NULL, resolved_at TEXT,
    message TEXT NOT NULL, resolution TEXT, run_id TEXT, occurrences INTEGER NOT NULL DEFAULT 1);
CREATE UNIQUE INDEX IF NOT EXISTS alert_incidents_one_open ON alert_incidents (asset, kind) WHERE status = 'open';
CREATE TABLE IF NOT EXISTS alert_deliveries (
    incident_id INTEGER NOT NULL, event TEXT NOT NULL, status TEXT NOT NULL, route TEXT, channel TEXT,
    attempts INTEGER NOT NULL DEFAULT 0, error TEXT, created_at TEXT NOT NULL, claimed_at TEXT NOT NULL,
    finished_at TEXT, PRIMARY KEY (incident_id, event));
