-- 0002: per node, its results by start time (see sqlite/0002_node_runs_by_start.sql).
CREATE INDEX IF NOT EXISTS node_runs_by_node_start ON node_runs (node, started_at);
