//! Cancels, leases, tick claims, node logs, stale inputs, heartbeats and abandoning.

use super::*;

pub fn cancels(s: &dyn RunControl) {
    assert!(!s.cancel_requested("r1").unwrap());
    s.request_cancel("r1", "t1").unwrap();
    s.request_cancel("r1", "t2").unwrap();
    assert!(s.cancel_requested("r1").unwrap());
    assert!(!s.cancel_requested("r2").unwrap());
}

pub fn leases(s: &dyn RunControl) {
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

pub fn tick_claims(s: &dyn RunControl) {
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

pub fn node_logs_and_stale_inputs(s: &dyn RunControl) {
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

pub fn heartbeats_and_running_runs<S: Core + ?Sized>(s: &S) {
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

pub fn abandoning_a_run<S: Core + ?Sized>(s: &S) {
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
