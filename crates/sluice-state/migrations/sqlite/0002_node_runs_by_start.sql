-- 0002: per node, its results by start time. The scheduler asks for every node's latest attempt
-- (`Schedules::latest_attempts`) on each pass; with this index that is one ordered scan, as the
-- latest data change already is through `node_runs_by_node (node, finished_at)`.
CREATE INDEX IF NOT EXISTS node_runs_by_node_start ON node_runs (node, started_at);
