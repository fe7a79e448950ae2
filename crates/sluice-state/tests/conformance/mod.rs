//! The behaviour every state backend must have, as functions over `&dyn State`: each takes a fresh,
//! empty, migrated database and exercises one area through the store traits only (no SQL), so the
//! same functions run against SQLite (`tests/sqlite_store.rs`) and, later, PostgreSQL. [`ALL`]
//! lists them: a backend's test file runs every entry.

use sluice_state::{
    AlertEvent, BackfillRecord, Breach, CheckRecord, DeliveryOutcome, IncidentKind, KeyRange,
    LeaseOutcome, LogLine, NodeRecord, RunProcess, RunRecord, State,
};

/// One conformance test: it gets a fresh, empty, migrated database.
pub type Test = fn(&dyn State);

/// Every conformance test, by name.
pub const ALL: &[(&str, Test)] = &[
    ("run_history", run_history),
    (
        "a_duplicate_run_start_changes_nothing",
        a_duplicate_run_start_changes_nothing,
    ),
    ("latest_results_and_checks", latest_results_and_checks),
    ("cancels", cancels),
    ("leases", leases),
    ("tick_claims", tick_claims),
    ("node_logs_and_stale_inputs", node_logs_and_stale_inputs),
    ("heartbeats_and_running_runs", heartbeats_and_running_runs),
    ("abandoning_a_run", abandoning_a_run),
    ("schedule_ticks_and_marks", schedule_ticks_and_marks),
    ("built_partitions", built_partitions),
    ("backfills", backfills),
    (
        "incidents_open_escalate_resolve",
        incidents_open_escalate_resolve,
    ),
    (
        "deliveries_finish_and_reclaim",
        deliveries_finish_and_reclaim,
    ),
    ("monitor_reads", monitor_reads),
];

fn process(name: &str) -> RunProcess {
    RunProcess {
        process: name.into(),
        start_ticks: Some(7),
        heartbeat_ms: 1_000,
    }
}

fn start(s: &dyn State, run: &str, command: &str, at: &str) {
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

fn ranges(v: &[KeyRange]) -> Vec<(i64, i64)> {
    v.iter().map(|r| (r.lo, r.hi)).collect()
}

pub fn run_history(s: &dyn State) {
    assert!(s.runs(10).unwrap().is_empty());
    assert_eq!(s.run("r1").unwrap(), None);
    start(s, "r1", "run", "2026-01-01T00:00:00Z");
    start(s, "r2", "run", "2026-01-02T00:00:00Z");
    // Same start: the later recorded comes first.
    start(s, "r3", "test", "2026-01-02T00:00:00Z");
    assert_eq!(ids(&s.runs(10).unwrap()), ["r3", "r2", "r1"]);
    assert_eq!(ids(&s.runs(2).unwrap()), ["r3", "r2"]);
    let r1 = s.run("r1").unwrap().unwrap();
    assert_eq!(
        (r1.status.as_str(), r1.finished_at.as_deref()),
        ("running", None)
    );
    let done = RunRecord {
        status: "partial".into(),
        finished_at: Some("2026-01-01T00:01:00Z".into()),
        nodes_ok: 1,
        nodes_failed: 1,
        nodes_skipped: 2,
        checks_passed: 3,
        checks_warned: 4,
        checks_failed: 5,
        ..r1
    };
    s.finish_run(&done).unwrap();
    assert_eq!(s.run("r1").unwrap().unwrap(), done);

    let b = node(
        "r1",
        "b",
        "success",
        3,
        "2026-01-01T00:00:02Z",
        "2026-01-01T00:00:03Z",
    );
    let a = node(
        "r1",
        "a",
        "failed",
        0,
        "2026-01-01T00:00:01Z",
        "2026-01-01T00:00:02Z",
    );
    s.record_node(&b).unwrap();
    s.record_node(&a).unwrap();
    assert_eq!(s.nodes_of_run("r1").unwrap(), [a.clone(), b.clone()]);
    // Recording a node again replaces its result.
    let a2 = NodeRecord {
        status: "success".into(),
        error: None,
        ..a.clone()
    };
    s.record_node(&a2).unwrap();
    assert_eq!(s.nodes_of_run("r1").unwrap(), [a2, b]);
    assert!(s.nodes_of_run("r2").unwrap().is_empty());

    let c = check("r1", "unique_id", "m", "fail", "2026-01-01T00:00:04Z");
    s.record_check(&c).unwrap();
    let c2 = CheckRecord {
        status: "pass".into(),
        ..c
    };
    s.record_check(&c2).unwrap();
    assert_eq!(s.checks_of_run("r1").unwrap(), [c2]);

    assert_eq!(s.watermark("src.t").unwrap(), None);
    s.set_watermark("src.t", &serde_json::json!("2026-01-05"), "r1", "t1")
        .unwrap();
    s.set_watermark("src.t", &serde_json::json!({"id": 6}), "r2", "t2")
        .unwrap();
    assert_eq!(
        s.watermark("src.t").unwrap(),
        Some(serde_json::json!({"id": 6}))
    );
}

pub fn a_duplicate_run_start_changes_nothing(s: &dyn State) {
    s.start_run("r1", "run", "", "t", &process("first"))
        .unwrap();
    assert!(
        s.start_run("r1", "run", "", "t", &process("second"))
            .is_err()
    );
    let running = s.running_runs(Some("r1")).unwrap();
    assert_eq!(running.len(), 1);
    assert_eq!(
        running[0].process.as_deref(),
        Some("first"),
        "the transaction rolled back"
    );
}

pub fn latest_results_and_checks(s: &dyn State) {
    for (run, day) in [("r1", "01"), ("r2", "02"), ("r3", "03")] {
        start(s, run, "run", &format!("2026-01-{day}T00:00:00Z"));
    }
    let at = |d: &str| format!("2026-01-{d}T00:00:01Z");
    s.record_node(&node("r1", "a", "success", 1, &at("01"), &at("01")))
        .unwrap();
    s.record_node(&node("r2", "a", "failed", 0, &at("02"), &at("02")))
        .unwrap();
    s.record_node(&node("r1", "b", "success", 1, &at("01"), &at("01")))
        .unwrap();
    s.record_node(&node("r3", "b", "success", 1, &at("03"), &at("03")))
        .unwrap();
    let latest: Vec<(String, String)> = s
        .latest_nodes()
        .unwrap()
        .into_iter()
        .map(|n| (n.node, n.run_id))
        .collect();
    assert_eq!(
        latest,
        [("a".into(), "r2".into()), ("b".into(), "r3".into())]
    );
    let ok: Vec<(String, String)> = s
        .latest_successes()
        .unwrap()
        .into_iter()
        .map(|n| (n.node, n.run_id))
        .collect();
    assert_eq!(ok, [("a".into(), "r1".into()), ("b".into(), "r3".into())]);
    let history: Vec<String> = s
        .node_history("a", 10)
        .unwrap()
        .into_iter()
        .map(|n| n.run_id)
        .collect();
    assert_eq!(history, ["r2", "r1"]);
    assert_eq!(s.node_history("a", 1).unwrap().len(), 1);

    s.record_check(&check("r1", "c1", "m2", "fail", &at("01")))
        .unwrap();
    s.record_check(&check("r2", "c1", "m2", "pass", &at("02")))
        .unwrap();
    s.record_check(&check("r1", "c0", "m1", "warn", &at("01")))
        .unwrap();
    let checks: Vec<(String, String, String)> = s
        .latest_checks()
        .unwrap()
        .into_iter()
        .map(|c| (c.model, c.check_name, c.status))
        .collect();
    assert_eq!(
        checks,
        [
            ("m1".into(), "c0".into(), "warn".into()),
            ("m2".into(), "c1".into(), "pass".into())
        ]
    );
}

pub fn cancels(s: &dyn State) {
    assert!(!s.cancel_requested("r1").unwrap());
    s.request_cancel("r1", "t1").unwrap();
    s.request_cancel("r1", "t2").unwrap();
    assert!(s.cancel_requested("r1").unwrap());
    assert!(!s.cancel_requested("r2").unwrap());
}

pub fn leases(s: &dyn State) {
    let held = |holder: &str, process: Option<&str>| LeaseOutcome::Held {
        holder: holder.into(),
        process: process.map(str::to_string),
    };
    assert_eq!(
        s.acquire_lease("n", "run-a", Some("pa"), 1_000, 31_000)
            .unwrap(),
        LeaseOutcome::Acquired
    );
    assert_eq!(
        s.acquire_lease("n", "run-b", Some("pb"), 2_000, 32_000)
            .unwrap(),
        held("run-a", Some("pa"))
    );
    // Renewing one's own lease works, and keeps the first process recorded for the holder.
    assert_eq!(
        s.acquire_lease("n", "run-a", Some("pa2"), 3_000, 33_000)
            .unwrap(),
        LeaseOutcome::Acquired
    );
    assert_eq!(
        s.acquire_lease("n", "run-b", None, 4_000, 34_000).unwrap(),
        held("run-a", Some("pa"))
    );
    // Only the holder releases; then it is free.
    s.release_lease("n", "run-b").unwrap();
    assert!(matches!(
        s.acquire_lease("n", "run-b", None, 5_000, 35_000).unwrap(),
        LeaseOutcome::Held { .. }
    ));
    s.release_lease("n", "run-a").unwrap();
    assert_eq!(
        s.acquire_lease("n", "run-b", None, 6_000, 36_000).unwrap(),
        LeaseOutcome::Acquired
    );
    // Expired (its holder died): anyone takes it; not at the very moment it expires.
    assert_eq!(
        s.acquire_lease("n", "run-c", None, 36_000, 66_000).unwrap(),
        held("run-b", Some("pb"))
    );
    assert_eq!(
        s.acquire_lease("n", "run-c", None, 36_001, 66_001).unwrap(),
        LeaseOutcome::Acquired
    );
    // A holder recorded without a process.
    assert_eq!(
        s.acquire_lease("n", "run-d", None, 37_000, 67_000).unwrap(),
        held("run-c", None)
    );
    // Taking over only from the holder named, once.
    assert!(!s.take_over_lease("n", "run-d", "run-b", 70_000).unwrap());
    assert!(s.take_over_lease("n", "run-d", "run-c", 70_000).unwrap());
    assert!(!s.take_over_lease("n", "run-e", "run-c", 70_000).unwrap());
    assert_eq!(
        s.acquire_lease("n", "run-e", None, 38_000, 68_000).unwrap(),
        held("run-d", None)
    );
    // Leases are per node.
    assert_eq!(
        s.acquire_lease("m", "run-e", None, 38_000, 68_000).unwrap(),
        LeaseOutcome::Acquired
    );
}

pub fn tick_claims(s: &dyn State) {
    let day = 86_400_000;
    let now = 10 * day;
    assert!(
        s.claim_tick("n", "10:00", "s1", now, now - 600_000)
            .unwrap()
    );
    assert!(
        !s.claim_tick("n", "10:00", "s2", now + 1, now - 600_000)
            .unwrap()
    );
    // The holder may claim again; other ticks and nodes are free.
    assert!(
        s.claim_tick("n", "10:00", "s1", now + 2, now - 600_000)
            .unwrap()
    );
    assert!(
        s.claim_tick("n", "11:00", "s2", now + 3, now - 600_000)
            .unwrap()
    );
    assert!(
        s.claim_tick("m", "10:00", "s2", now + 3, now - 600_000)
            .unwrap()
    );
    // A claim older than the stale bound is taken over.
    assert!(
        s.claim_tick("n", "10:00", "s2", now + 700_000, now + 100_000)
            .unwrap()
    );
    assert!(
        !s.claim_tick("n", "10:00", "s1", now + 700_001, now + 100_000)
            .unwrap()
    );
}

pub fn node_logs_and_stale_inputs(s: &dyn State) {
    assert!(s.node_log("r", "n").unwrap().is_empty());
    s.append_node_log("r", "n", &[]).unwrap();
    let line = |m: &str| LogLine {
        at: "2026-01-01T00:00:00.000Z".into(),
        level: "info".into(),
        message: m.into(),
    };
    s.append_node_log("r", "n", &[line("one"), line("two")])
        .unwrap();
    s.append_node_log("r", "other", &[line("elsewhere")])
        .unwrap();
    s.append_node_log("r", "n", &[LogLine::now("warn", "three")])
        .unwrap();
    let log: Vec<String> = s
        .node_log("r", "n")
        .unwrap()
        .into_iter()
        .map(|l| l.message)
        .collect();
    assert_eq!(
        log,
        ["one", "two", "three"],
        "same timestamps keep append order"
    );
    assert_eq!(s.node_log("r", "n").unwrap()[2].level, "warn");

    assert!(s.stale_inputs_of_run("r").unwrap().is_empty());
    s.set_stale_inputs("r", "m", &["a".into(), "b".into()])
        .unwrap();
    s.set_stale_inputs("r", "m", &["c".into()]).unwrap();
    s.set_stale_inputs("r", "k", &["a".into()]).unwrap();
    s.set_stale_inputs("r2", "m", &["z".into()]).unwrap();
    let stale = s.stale_inputs_of_run("r").unwrap();
    assert_eq!(stale.len(), 2);
    assert_eq!(stale["m"], ["c"]);
    assert_eq!(stale["k"], ["a"]);
}

pub fn heartbeats_and_running_runs(s: &dyn State) {
    s.start_run("r1", "run", "", "2026-01-01T00:00:00Z", &process("p1"))
        .unwrap();
    s.start_run("r2", "run", "", "2026-01-02T00:00:00Z", &process("p2"))
        .unwrap();
    assert!(s.heartbeat_run("r1", 5_000).unwrap());
    assert!(!s.heartbeat_run("nope", 5_000).unwrap());
    // A lease records the holder's process: the trace of runs from before run processes.
    s.acquire_lease("n", "r2", Some("lease-process"), 0, 10)
        .unwrap();
    let mut running = s.running_runs(None).unwrap();
    running.sort_by(|a, b| a.run_id.cmp(&b.run_id));
    assert_eq!(running.len(), 2);
    assert_eq!(running[0].run_id, "r1");
    assert_eq!(running[0].started_at, "2026-01-01T00:00:00Z");
    assert_eq!(running[0].process.as_deref(), Some("p1"));
    assert_eq!(running[0].start_ticks, Some(7));
    assert_eq!(running[0].heartbeat_ms, Some(5_000));
    assert_eq!(running[0].lease_process, None);
    assert_eq!(running[1].lease_process.as_deref(), Some("lease-process"));
    assert_eq!(s.running_runs(Some("r2")).unwrap().len(), 1);
    // A finished run is not running.
    let mut r1 = s.run("r1").unwrap().unwrap();
    r1.status = "success".into();
    r1.finished_at = Some("2026-01-01T00:01:00Z".into());
    s.finish_run(&r1).unwrap();
    assert!(s.running_runs(Some("r1")).unwrap().is_empty());

    assert_eq!(
        s.unfinished_runs("2026-01-01T12:00:00Z").unwrap(),
        std::collections::BTreeSet::from(["r2".to_string()])
    );
    assert!(
        s.unfinished_runs("2026-01-03T00:00:00Z")
            .unwrap()
            .is_empty()
    );
}

pub fn abandoning_a_run(s: &dyn State) {
    s.start_run("r1", "run", "", "2026-01-01T00:00:00Z", &process("p1"))
        .unwrap();
    s.set_run_plan(
        "r1",
        &[
            ("a".into(), "source".into()),
            ("b".into(), "model".into()),
            ("c".into(), "model".into()),
        ],
    )
    .unwrap();
    let t = "2026-01-01T00:00:01Z";
    s.record_node(&node("r1", "a", "success", 2, t, t)).unwrap();
    s.record_check(&check("r1", "k", "a", "warn", t)).unwrap();
    // b runs (holds a lease), and so does d, which was not in the plan.
    s.acquire_lease("b", "r1", None, 0, 10).unwrap();
    s.acquire_lease("d", "r1", None, 0, 10).unwrap();

    assert!(
        s.mark_abandoned("r1", "its process is gone", "2026-01-01T01:00:00Z")
            .unwrap()
    );
    assert!(
        !s.mark_abandoned("r1", "again", "2026-01-01T02:00:00Z")
            .unwrap()
    );
    assert!(
        !s.mark_abandoned("nope", "why", "2026-01-01T02:00:00Z")
            .unwrap()
    );
    let run = s.run("r1").unwrap().unwrap();
    assert_eq!(run.status, "abandoned");
    assert_eq!(run.finished_at.as_deref(), Some("2026-01-01T01:00:00Z"));
    assert_eq!(
        (run.nodes_ok, run.nodes_failed, run.nodes_skipped),
        (1, 0, 3)
    );
    assert_eq!(
        (run.checks_passed, run.checks_warned, run.checks_failed),
        (0, 1, 0)
    );
    assert_eq!(
        s.run_error("r1").unwrap().as_deref(),
        Some("its process is gone")
    );
    assert_eq!(s.run_error("nope").unwrap(), None);
    let nodes = s.nodes_of_run("r1").unwrap();
    let by = |n: &str| nodes.iter().find(|r| r.node == n).unwrap();
    assert_eq!(by("a").status, "success", "a recorded result is kept");
    assert_eq!(
        (
            by("b").status.as_str(),
            by("b").kind.as_str(),
            by("b").attempts
        ),
        ("abandoned", "model", 1)
    );
    assert!(by("b").error.as_deref().unwrap().contains("was running"));
    assert_eq!(
        (by("c").status.as_str(), by("c").attempts),
        ("abandoned", 0)
    );
    assert!(by("c").error.as_deref().unwrap().contains("did not start"));
    assert_eq!(by("d").kind, "unknown");
    // Its heartbeat now tells it to stop; it is no longer running.
    assert!(!s.heartbeat_run("r1", 9).unwrap());
    assert!(s.running_runs(None).unwrap().is_empty());
}

pub fn schedule_ticks_and_marks(s: &dyn State) {
    assert_eq!(s.schedule_tick("a").unwrap(), None);
    s.set_schedule_tick("b", "2026-01-01T10:00:00.000000Z")
        .unwrap();
    s.set_schedule_tick("a", "2026-01-01T10:00:00.000000Z")
        .unwrap();
    s.set_schedule_tick("a", "2026-01-01T11:00:00.000000Z")
        .unwrap();
    assert_eq!(
        s.schedule_tick("a").unwrap().as_deref(),
        Some("2026-01-01T11:00:00.000000Z")
    );
    assert_eq!(
        s.schedule_ticks().unwrap(),
        [
            ("a".to_string(), "2026-01-01T11:00:00.000000Z".to_string()),
            ("b".to_string(), "2026-01-01T10:00:00.000000Z".to_string())
        ]
    );

    let at = |d: &str, sec: u32| format!("2026-01-{d}T00:00:0{sec}Z");
    s.record_node(&node("r1", "src", "success", 5, &at("01", 0), &at("01", 1)))
        .unwrap();
    s.record_node(&node("r2", "src", "success", 0, &at("02", 0), &at("02", 1)))
        .unwrap();
    s.record_node(&node("r3", "src", "failed", 9, &at("03", 0), &at("03", 1)))
        .unwrap();
    s.record_node(&node(
        "r4",
        "src",
        "abandoned",
        0,
        &at("04", 0),
        &at("04", 0),
    ))
    .unwrap();
    // Two runs of m ending at the same moment: the greater run id wins.
    s.record_node(&node("r5", "m", "success", 1, &at("01", 0), &at("01", 5)))
        .unwrap();
    s.record_node(&node("r6", "m", "success", 1, &at("01", 0), &at("01", 5)))
        .unwrap();
    let changes = s.latest_data_changes().unwrap();
    assert_eq!(changes.len(), 2);
    assert_eq!(changes["src"].run_id, "r1", "only r1 wrote rows");
    assert_eq!(changes["src"].at, at("01", 1));
    assert_eq!(changes["m"].run_id, "r6");
    let attempts = s.latest_attempts().unwrap();
    assert_eq!(attempts["src"].run_id, "r3", "abandoned is no attempt");
    assert_eq!(attempts["src"].at, at("03", 0));
    assert_eq!(attempts["m"].run_id, "r6");
}

pub fn built_partitions(s: &dyn State) {
    let put = |lo, hi| s.record_built("m", "day", KeyRange::new(lo, hi)).unwrap();
    for k in [5, 7, 6, 1, 2, 10] {
        put(k, k);
    }
    assert_eq!(
        ranges(&s.built("m", "day").unwrap()),
        [(1, 2), (5, 7), (10, 10)]
    );
    // Backwards is the same range; overlapping and adjacent ranges merge.
    put(4, 3);
    assert_eq!(ranges(&s.built("m", "day").unwrap()), [(1, 7), (10, 10)]);
    put(6, 12);
    assert_eq!(ranges(&s.built("m", "day").unwrap()), [(1, 12)]);
    s.forget_built("m", "day", KeyRange::new(3, 3)).unwrap();
    s.forget_built("m", "day", KeyRange::new(11, 20)).unwrap();
    assert_eq!(ranges(&s.built("m", "day").unwrap()), [(1, 2), (4, 10)]);
    s.forget_built("m", "day", KeyRange::new(0, 100)).unwrap();
    assert!(s.built("m", "day").unwrap().is_empty());
    put(1, 1);
    assert!(s.built("m", "hour").unwrap().is_empty());
    assert!(s.built("other", "day").unwrap().is_empty());
    // Far apart keys (hour partitions over centuries) keep their values.
    s.record_built("big", "hour", KeyRange::new(-5, i64::MAX - 1))
        .unwrap();
    assert_eq!(
        ranges(&s.built("big", "hour").unwrap()),
        [(-5, i64::MAX - 1)]
    );
}

fn backfill(id: &str, created: &str) -> BackfillRecord {
    BackfillRecord {
        id: id.into(),
        selection: "m".into(),
        from: "2024-01-01".into(),
        to: "2024-01-05".into(),
        missing: false,
        status: "planned".into(),
        created_at: created.into(),
        updated_at: created.into(),
        run_id: None,
        error: None,
    }
}

pub fn backfills(s: &dyn State) {
    assert!(s.backfills(10).unwrap().is_empty());
    let b1 = backfill("b1", "2026-01-01T00:00:00Z");
    s.create_backfill(
        &b1,
        &[
            ("m".into(), vec![KeyRange::new(1, 5)]),
            ("a".into(), vec![KeyRange::new(1, 1), KeyRange::new(3, 3)]),
        ],
    )
    .unwrap();
    s.create_backfill(&backfill("b2", "2026-01-02T00:00:00Z"), &[])
        .unwrap();
    s.create_backfill(&backfill("b3", "2026-01-02T00:00:00Z"), &[])
        .unwrap();
    assert!(
        s.create_backfill(&b1, &[]).is_err(),
        "a backfill id is recorded once"
    );
    let listed: Vec<String> = s.backfills(10).unwrap().into_iter().map(|b| b.id).collect();
    assert_eq!(
        listed,
        ["b3", "b2", "b1"],
        "newest first, later recorded first"
    );
    assert_eq!(s.backfills(1).unwrap().len(), 1);
    assert_eq!(s.backfill("b1").unwrap(), Some(b1.clone()));
    assert_eq!(s.backfill("nope").unwrap(), None);
    assert_eq!(s.backfill_plan_assets("b1").unwrap(), ["a", "m"]);
    assert_eq!(
        ranges(&s.backfill_plan("b1", "a").unwrap()),
        [(1, 1), (3, 3)]
    );

    s.mark_partition_failed("b1", "m", "k2", "boom").unwrap();
    s.mark_partition_failed("b1", "m", "k2", "boom again")
        .unwrap();
    s.mark_partition_failed("b1", "m", "k3", "bang").unwrap();
    s.mark_partition_failed("b1", "a", "k9", "bust").unwrap();
    assert_eq!(s.failed_partition_count("b1").unwrap(), 3);
    let failed: Vec<(String, String, String)> = s
        .failed_partitions("b1", 2)
        .unwrap()
        .into_iter()
        .map(|f| (f.asset, f.key, f.error))
        .collect();
    assert_eq!(
        failed,
        [
            ("a".into(), "k9".into(), "bust".into()),
            ("m".into(), "k2".into(), "boom again".into())
        ]
    );
    for k in [1, 2, 4] {
        s.mark_partition_done("b1", "m", "day", k, &format!("k{k}"))
            .unwrap();
    }
    assert_eq!(
        ranges(&s.backfill_done("b1", "m").unwrap()),
        [(1, 2), (4, 4)]
    );
    assert_eq!(
        ranges(&s.built("m", "day").unwrap()),
        [(1, 2), (4, 4)],
        "done is built"
    );
    assert_eq!(s.failed_partition_count("b1").unwrap(), 2, "k2 cleared");

    let like = |missing| {
        s.unfinished_backfill_like("m", "2024-01-01", "2024-01-05", missing)
            .unwrap()
            .map(|b| b.id)
    };
    assert_eq!(like(false).as_deref(), Some("b3"));
    assert_eq!(like(true), None);
    s.set_backfill_status("b3", "success", Some("r3"), None, "t3")
        .unwrap();
    s.set_backfill_status("b2", "success", None, None, "t2")
        .unwrap();
    assert_eq!(like(false).as_deref(), Some("b1"));
    s.set_backfill_status("b1", "running", Some("r1"), None, "t4")
        .unwrap();
    s.set_backfill_status("b1", "failed", None, Some("2 failed"), "t5")
        .unwrap();
    let b = s.backfill("b1").unwrap().unwrap();
    assert_eq!(
        (
            b.status.as_str(),
            b.run_id.as_deref(),
            b.error.as_deref(),
            b.updated_at.as_str()
        ),
        ("failed", Some("r1"), Some("2 failed"), "t5"),
        "a status without a run keeps the latest run"
    );
}

fn breach(asset: &str, kind: IncidentKind, severity: &str, run: Option<&str>) -> Breach {
    Breach {
        asset: asset.into(),
        kind,
        severity: severity.into(),
        owner: Some("finance".into()),
        message: format!("{asset} is {severity}"),
        run_id: run.map(str::to_string),
    }
}

pub fn incidents_open_escalate_resolve(s: &dyn State) {
    use IncidentKind::{Failure, Freshness};
    let opened = s
        .observe_breach(&breach("a", Freshness, "warn", None), "t1")
        .unwrap()
        .unwrap();
    assert_eq!(opened.event, AlertEvent::Opened);
    let i = &opened.incident;
    assert_eq!(
        (
            i.asset.as_str(),
            i.kind,
            i.severity.as_str(),
            i.status.as_str()
        ),
        ("a", Freshness, "warn", "open")
    );
    assert_eq!((i.opened_at.as_str(), i.occurrences), ("t1", 1));
    // Seen again: nothing to send; then worse: escalated once.
    assert_eq!(
        s.observe_breach(&breach("a", Freshness, "warn", None), "t2")
            .unwrap(),
        None
    );
    let escalated = s
        .observe_breach(&breach("a", Freshness, "error", None), "t3")
        .unwrap()
        .unwrap();
    assert_eq!(escalated.event, AlertEvent::Escalated);
    assert_eq!(escalated.incident.id, i.id);
    assert_eq!(escalated.incident.severity, "error");
    assert_eq!(
        s.observe_breach(&breach("a", Freshness, "warn", None), "t4")
            .unwrap(),
        None,
        "never de-escalated, never alerted twice"
    );
    assert_eq!(s.open_incidents().unwrap()[0].severity, "error");

    // A failure incident of the same asset is another incident; each failed run counts once.
    let failure = s
        .observe_breach(&breach("a", Failure, "error", Some("r1")), "t5")
        .unwrap()
        .unwrap();
    assert_ne!(failure.incident.id, i.id);
    for run in ["r1", "r2", "r2", "r3"] {
        assert_eq!(
            s.observe_breach(&breach("a", Failure, "error", Some(run)), "t6")
                .unwrap(),
            None
        );
    }
    let open = s.open_incidents().unwrap();
    assert_eq!(open.len(), 2);
    assert_eq!(open[0].id, i.id, "oldest first");
    assert_eq!(open[1].occurrences, 3);
    assert_eq!(open[1].run_id.as_deref(), Some("r3"));

    let resolved = s
        .observe_recovery("a", Failure, "succeeded in run r4", "t7")
        .unwrap()
        .unwrap();
    assert_eq!(resolved.event, AlertEvent::Resolved);
    let r = &resolved.incident;
    assert_eq!(
        (
            r.status.as_str(),
            r.resolved_at.as_deref(),
            r.resolution.as_deref()
        ),
        ("resolved", Some("t7"), Some("succeeded in run r4"))
    );
    assert_eq!(
        s.observe_recovery("a", Failure, "again", "t8").unwrap(),
        None
    );
    assert_eq!(
        s.observe_recovery("b", Freshness, "never open", "t8")
            .unwrap(),
        None
    );
    // A new breach after resolution opens a new incident.
    let again = s
        .observe_breach(&breach("a", Failure, "error", Some("r9")), "t9")
        .unwrap()
        .unwrap();
    assert_eq!(again.event, AlertEvent::Opened);
    let recent: Vec<i64> = s
        .recent_incidents(10)
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(recent, [again.incident.id, failure.incident.id, i.id]);
    assert_eq!(s.recent_incidents(1).unwrap().len(), 1);
}

pub fn deliveries_finish_and_reclaim(s: &dyn State) {
    let c = s
        .observe_breach(
            &breach("a", IncidentKind::Freshness, "warn", None),
            "2026-01-01T00:00:00Z",
        )
        .unwrap()
        .unwrap();
    let id = c.incident.id;
    s.observe_breach(
        &breach("a", IncidentKind::Freshness, "error", None),
        "2026-01-01T00:10:00Z",
    )
    .unwrap()
    .unwrap();
    let d = s.deliveries(id).unwrap();
    let events: Vec<(&str, &str)> = d
        .iter()
        .map(|d| (d.event.as_str(), d.status.as_str()))
        .collect();
    assert_eq!(events, [("opened", "sending"), ("escalated", "sending")]);

    let outcome = DeliveryOutcome {
        status: "sent".into(),
        route: Some("finance".into()),
        channel: Some("webhook".into()),
        attempts: 2,
        error: None,
    };
    s.finish_delivery(id, AlertEvent::Opened, &outcome, "2026-01-01T00:00:01Z")
        .unwrap();
    let opened = &s.deliveries(id).unwrap()[0];
    assert_eq!(
        (
            opened.status.as_str(),
            opened.route.as_deref(),
            opened.channel.as_deref(),
            opened.attempts
        ),
        ("sent", Some("finance"), Some("webhook"), 2)
    );

    // The escalation is still `sending`: a claim older than the bound is handed out again, once.
    assert!(
        s.reclaim_stale_deliveries("2026-01-01T00:05:00Z", "2026-01-01T00:20:00Z")
            .unwrap()
            .is_empty(),
        "claimed after the bound"
    );
    let reclaimed = s
        .reclaim_stale_deliveries("2026-01-01T00:15:00Z", "2026-01-01T00:20:00Z")
        .unwrap();
    assert_eq!(reclaimed.len(), 1);
    assert_eq!(reclaimed[0].event, AlertEvent::Escalated);
    assert_eq!(reclaimed[0].incident.id, id);
    assert!(
        s.reclaim_stale_deliveries("2026-01-01T00:15:00Z", "2026-01-01T00:21:00Z")
            .unwrap()
            .is_empty(),
        "claimed again at 00:20"
    );
    let failed = DeliveryOutcome {
        status: "failed".into(),
        error: Some("503".into()),
        ..outcome
    };
    s.finish_delivery(id, AlertEvent::Escalated, &failed, "2026-01-01T00:20:01Z")
        .unwrap();
    assert!(
        s.reclaim_stale_deliveries("2026-01-02T00:00:00Z", "2026-01-02T00:00:00Z")
            .unwrap()
            .is_empty(),
        "finished deliveries are not reclaimed"
    );
    assert_eq!(s.deliveries(id).unwrap()[1].error.as_deref(), Some("503"));
    assert!(s.deliveries(id + 100).unwrap().is_empty());
}

pub fn monitor_reads(s: &dyn State) {
    start(s, "r1", "run", "2026-01-01T00:00:00Z");
    start(s, "r2", "run", "2026-01-02T00:00:00Z");
    start(s, "t1", "test", "2026-01-03T00:00:00Z");
    let at = |d: &str| format!("2026-01-{d}T00:00:01Z");
    s.record_node(&node("r1", "a", "success", 3, &at("01"), &at("01")))
        .unwrap();
    s.record_node(&node("r2", "a", "failed", 0, &at("02"), &at("02")))
        .unwrap();
    s.record_node(&node("t1", "a", "success", 0, &at("03"), &at("03")))
        .unwrap();
    s.record_node(&node("r1", "b", "success", 0, &at("01"), &at("01")))
        .unwrap();
    // A result without a run row (recorded by a tool) has no command: left out like a test.
    s.record_node(&node("x", "c", "success", 1, &at("01"), &at("01")))
        .unwrap();
    let latest: Vec<(String, String, String)> = s
        .latest_build_results()
        .unwrap()
        .into_iter()
        .map(|r| (r.node, r.status, r.run_id))
        .collect();
    assert_eq!(
        latest,
        [
            ("a".into(), "failed".into(), "r2".into()),
            ("b".into(), "success".into(), "r1".into())
        ]
    );
    let failed = &s.latest_build_results().unwrap()[0];
    assert_eq!(
        (failed.attempts, failed.error.as_deref()),
        (1, Some("boom"))
    );
    assert_eq!(
        s.last_data_updates().unwrap(),
        [("a".to_string(), at("01")), ("c".to_string(), at("01"))]
    );
}
