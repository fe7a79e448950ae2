//! Failures: a node failing after its retries alerts its owner once per incident, and once when it
//! next succeeds.

use sluice_orchestrate::schedule::{Clock, ManualClock};

use super::*;

#[tokio::test]
async fn a_failing_node_alerts_once_per_incident_and_once_on_recovery() {
    let (rx, addr) = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let compiled = project(dir.path(), &webhook_owners(addr));
    let clock = ManualClock::new(t0());
    let m = monitor(&compiled, &clock);

    for run in ["r1", "r2", "r3"] {
        clock.advance(hours(1.0));
        m.after_run(&summary(
            run,
            &[
                ("broken", NodeStatus::Failed),
                ("sales", NodeStatus::Success),
            ],
        ))
        .await
        .unwrap();
    }
    let bodies = rx.bodies();
    assert_eq!(bodies.len(), 1, "three failing runs, one alert");
    assert_eq!(bodies[0]["asset"], "broken");
    assert_eq!(bodies[0]["kind"], "failure");
    assert_eq!(bodies[0]["status"], "open");
    assert_eq!(bodies[0]["owner"], "finance");
    assert_eq!(bodies[0]["run_id"], "r1");
    assert!(
        bodies[0]["text"]
            .as_str()
            .unwrap()
            .contains("no column `amount`")
    );
    let open = m.incidents().open_incidents().unwrap();
    assert_eq!((open.len(), open[0].occurrences), (1, 3));
    assert_eq!(open[0].run_id.as_deref(), Some("r3"));

    // Skipped (an upstream failed) neither opens nor resolves.
    m.after_run(&summary("r4", &[("broken", NodeStatus::Skipped)]))
        .await
        .unwrap();
    assert_eq!(rx.requests(), 1);

    // Fixed: one recovery alert, then silence.
    m.after_run(&summary("r5", &[("broken", NodeStatus::Success)]))
        .await
        .unwrap();
    m.after_run(&summary("r6", &[("broken", NodeStatus::Success)]))
        .await
        .unwrap();
    let bodies = rx.bodies();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[1]["status"], "resolved");
    assert_eq!(bodies[1]["incident_id"], bodies[0]["incident_id"]);
    assert!(
        bodies[1]["text"]
            .as_str()
            .unwrap()
            .contains("succeeded in run r5")
    );

    // Breaking again is a new incident with its own alert.
    m.after_run(&summary("r7", &[("broken", NodeStatus::Failed)]))
        .await
        .unwrap();
    let bodies = rx.bodies();
    assert_eq!(bodies.len(), 3);
    assert_ne!(bodies[2]["incident_id"], bodies[0]["incident_id"]);
    let history = m.incidents().recent_incidents(10).unwrap();
    assert_eq!(history.len(), 2);
    let d = m.incidents().deliveries(history[1].id).unwrap();
    let events: Vec<(&str, &str)> = d
        .iter()
        .map(|d| (d.event.as_str(), d.status.as_str()))
        .collect();
    assert_eq!(events, [("opened", "sent"), ("resolved", "sent")]);
}

#[tokio::test]
async fn a_crashed_delivery_is_taken_over_after_its_lease() {
    let (rx, addr) = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let compiled = project(dir.path(), &webhook_owners(addr));
    let clock = ManualClock::new(t0());
    let m = monitor(&compiled, &clock);
    // A process claims the alert and dies before sending it.
    let obs = crate::incidents::Observation {
        asset: "broken".into(),
        kind: crate::IncidentKind::Failure,
        severity: sluice_core::Severity::Error,
        owner: Some("finance".into()),
        message: "boom".into(),
        run_id: Some("r1".into()),
    };
    assert!(
        m.incidents()
            .observe_breach(&obs, clock.now())
            .unwrap()
            .is_some()
    );
    m.check_freshness(clock.now()).await.unwrap();
    assert_eq!(rx.requests(), 0, "still within the dead process's lease");
    clock.advance(crate::monitor::DELIVERY_LEASE + Duration::from_secs(1));
    m.check_freshness(clock.now()).await.unwrap();
    m.check_freshness(clock.now()).await.unwrap();
    assert_eq!(rx.requests(), 1);
    assert_eq!(rx.bodies()[0]["message"], "boom");
}

#[tokio::test]
async fn runs_this_process_did_not_see_are_reconciled_from_the_run_history() {
    let (rx, addr) = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let compiled = project(dir.path(), &webhook_owners(addr));
    let clock = ManualClock::new(t0());
    let m = monitor(&compiled, &clock);
    let at = |h: i64| t0() + chrono::Duration::hours(h);
    // `sluice test` failures re-check published data: not a build failure.
    record_result(&compiled, "t1", "test", "broken", "failed", at(0));
    assert!(m.reconcile_failures().await.unwrap().is_empty());
    // A run started elsewhere (the HTTP API) failed; sweeps report it once.
    record_result(&compiled, "r1", "api", "broken", "failed", at(1));
    for _ in 0..3 {
        m.reconcile_failures().await.unwrap();
    }
    let bodies = rx.bodies();
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["run_id"], "r1");
    assert!(
        bodies[0]["text"]
            .as_str()
            .unwrap()
            .contains("failed after 3 attempts: disk full")
    );
    // The same run reported again by `after_run` (this process did see it) is not a new occurrence.
    m.after_run(&summary("r1", &[("broken", NodeStatus::Failed)]))
        .await
        .unwrap();
    assert_eq!(m.incidents().open_incidents().unwrap()[0].occurrences, 1);
    // A later skipped run changes nothing; a later success resolves it.
    record_result(&compiled, "r2", "schedule", "broken", "skipped", at(2));
    m.reconcile_failures().await.unwrap();
    assert_eq!(rx.requests(), 1);
    record_result(&compiled, "r3", "schedule", "broken", "success", at(3));
    m.reconcile_failures().await.unwrap();
    m.reconcile_failures().await.unwrap();
    let bodies = rx.bodies();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[1]["status"], "resolved");
}
