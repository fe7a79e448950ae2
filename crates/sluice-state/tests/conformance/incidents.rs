//! Incidents, deliveries, and the monitor's reads of the run history.

use super::*;

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
