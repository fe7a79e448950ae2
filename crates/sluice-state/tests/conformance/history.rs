//! Run history and the scheduler's reads of it.

use super::*;

pub fn run_history<S: Core + ?Sized>(s: &S) {
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

pub fn a_duplicate_run_start_changes_nothing<S: Core + ?Sized>(s: &S) {
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

pub fn latest_results_and_checks<S: Core + ?Sized>(s: &S) {
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

pub fn schedule_ticks_and_marks<S: Core + ?Sized>(s: &S) {
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
