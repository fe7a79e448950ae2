//! The behaviour every state backend must have, as functions over `&dyn State`: each takes a fresh,
//! empty, migrated database and exercises one area through the store traits only (no SQL), so the
//! same functions run against SQLite (`tests/sqlite_store.rs`) and PostgreSQL
//! (`tests/postgres_backend.rs`). [`ALL`]
//! lists them: a backend's test file runs every entry. Tests of one trait take that trait, so a
//! backend can run them while it implements only some (`tests/postgres_backend.rs`).

mod auth;
pub mod control;
pub mod history;
mod incidents;
mod partitions;

pub use sluice_state::{
    AlertEvent, BackfillRecord, Breach, CheckRecord, DeliveryOutcome, IncidentKind, KeyRange,
    LeaseOutcome, LogLine, NodeRecord, RunControl, RunHistory, RunProcess, RunProcesses, RunRecord,
    Schedules, State,
};

/// The traits of runs, their control and the scheduler's reads: what the tests that need more
/// than one of them take (so a backend can run them before it implements all of [`State`]).
pub trait Core: RunHistory + RunControl + RunProcesses + Schedules {}

impl<T: RunHistory + RunControl + RunProcesses + Schedules + ?Sized> Core for T {}

/// One conformance test: it gets a fresh, empty, migrated database.
pub type Test = fn(&dyn State);

/// Every conformance test, by name.
pub const ALL: &[(&str, Test)] = &[
    ("run_history", |s| history::run_history(s)),
    ("a_duplicate_run_start_changes_nothing", |s| {
        history::a_duplicate_run_start_changes_nothing(s)
    }),
    ("latest_results_and_checks", |s| {
        history::latest_results_and_checks(s)
    }),
    ("cancels", |s| control::cancels(s)),
    ("leases", |s| control::leases(s)),
    ("tick_claims", |s| control::tick_claims(s)),
    ("node_logs_and_stale_inputs", |s| {
        control::node_logs_and_stale_inputs(s)
    }),
    ("heartbeats_and_running_runs", |s| {
        control::heartbeats_and_running_runs(s)
    }),
    ("abandoning_a_run", |s| control::abandoning_a_run(s)),
    ("schedule_ticks_and_marks", |s| {
        history::schedule_ticks_and_marks(s)
    }),
    ("built_partitions", partitions::built_partitions),
    ("backfills", partitions::backfills),
    (
        "incidents_open_escalate_resolve",
        incidents::incidents_open_escalate_resolve,
    ),
    (
        "deliveries_finish_and_reclaim",
        incidents::deliveries_finish_and_reclaim,
    ),
    ("monitor_reads", incidents::monitor_reads),
    ("users_and_tokens", auth::users_and_tokens),
];

fn process(name: &str) -> RunProcess {
    RunProcess {
        process: name.into(),
        start_ticks: Some(7),
        heartbeat_ms: 1_000,
    }
}

fn start<S: Core + ?Sized>(s: &S, run: &str, command: &str, at: &str) {
    s.start_run(run, command, "", at, &process("p1")).unwrap();
}

fn node(run: &str, name: &str, status: &str, rows_out: i64, start: &str, end: &str) -> NodeRecord {
    NodeRecord {
        run_id: run.into(),
        node: name.into(),
        kind: "model".into(),
        status: status.into(),
        attempts: 1,
        rows_in: Some(4),
        rows_out: Some(rows_out),
        rows_quarantined: None,
        started_at: start.into(),
        finished_at: end.into(),
        duration_ms: 5,
        error: (status == "failed").then(|| "boom".to_string()),
        version: Some(3),
    }
}

fn check(run: &str, name: &str, model: &str, status: &str, at: &str) -> CheckRecord {
    CheckRecord {
        run_id: run.into(),
        check_name: name.into(),
        model: model.into(),
        kind: "unique".into(),
        column_name: Some("id".into()),
        severity: "error".into(),
        status: status.into(),
        failing_rows: 2,
        sample: serde_json::json!([{"id": 1}]),
        message: None,
        checked_at: at.into(),
    }
}

fn ids(runs: &[RunRecord]) -> Vec<&str> {
    runs.iter().map(|r| r.run_id.as_str()).collect()
}
