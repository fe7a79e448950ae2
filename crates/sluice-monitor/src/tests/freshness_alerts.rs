//! Freshness SLAs: one alert when an SLA is breached, one on escalation, one on recovery.

use sluice_orchestrate::schedule::{Clock, ManualClock};

use super::*;
use crate::{FreshnessState, freshness_report};

#[tokio::test]
async fn an_sla_breach_alerts_once_and_once_on_recovery() {
    let (rx, addr) = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let compiled = project(dir.path(), &webhook_owners(addr));
    let clock = ManualClock::new(t0());
    let m = monitor(&compiled, &clock);
    record_success(&compiled, "sales", 10, t0());

    clock.advance(hours(1.0));
    assert!(m.check_freshness(clock.now()).await.unwrap().is_empty());
    assert_eq!(rx.requests(), 0, "fresh data alerts nobody");

    // 7 hours after the last new data: past error_after (6h) in one step.
    clock.advance(hours(6.0));
    let sent = m.check_freshness(clock.now()).await.unwrap();
    assert_eq!(sent.len(), 1);
    let bodies = rx.bodies();
    assert_eq!(bodies.len(), 1);
    let b = &bodies[0];
    assert_eq!(b["asset"], "sales");
    assert_eq!(b["owner"], "finance");
    assert_eq!(b["kind"], "freshness");
    assert_eq!(b["status"], "open");
    assert_eq!(b["severity"], "error");
    let text = b["text"].as_str().unwrap();
    assert!(
        text.contains("STALE") && text.contains("sales") && text.contains("7.0h"),
        "{text}"
    );

    // Still breached: more sweeps, no more alerts.
    for _ in 0..5 {
        clock.advance(hours(0.5));
        assert!(m.check_freshness(clock.now()).await.unwrap().is_empty());
    }
    assert_eq!(rx.requests(), 1);

    // New data lands: exactly one recovery alert for the same incident.
    record_success(&compiled, "sales", 3, clock.now());
    clock.advance(hours(0.1));
    m.check_freshness(clock.now()).await.unwrap();
    m.check_freshness(clock.now()).await.unwrap();
    let bodies = rx.bodies();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[1]["status"], "resolved");
    assert_eq!(bodies[1]["incident_id"], bodies[0]["incident_id"]);
    assert!(bodies[1]["text"].as_str().unwrap().contains("RESOLVED"));
    assert!(m.incidents().open_incidents().unwrap().is_empty());
}

#[tokio::test]
async fn warn_then_error_escalates_once() {
    let (rx, addr) = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let compiled = project(dir.path(), &webhook_owners(addr));
    let clock = ManualClock::new(t0());
    let m = monitor(&compiled, &clock);
    record_success(&compiled, "sales", 10, t0());

    clock.advance(hours(3.0));
    m.check_freshness(clock.now()).await.unwrap();
    clock.advance(hours(1.0));
    m.check_freshness(clock.now()).await.unwrap();
    assert_eq!(rx.requests(), 1, "warn opens once");
    assert_eq!(rx.bodies()[0]["severity"], "warn");

    clock.advance(hours(3.0));
    m.check_freshness(clock.now()).await.unwrap();
    clock.advance(hours(3.0));
    m.check_freshness(clock.now()).await.unwrap();
    let bodies = rx.bodies();
    assert_eq!(bodies.len(), 2, "escalation to error alerts once");
    assert_eq!(bodies[1]["event"], "escalated");
    assert_eq!(bodies[1]["severity"], "error");
    assert_eq!(bodies[1]["incident_id"], bodies[0]["incident_id"]);
    let open = m.incidents().open_incidents().unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].severity, "error");
}

#[tokio::test]
async fn a_sweep_without_new_rows_does_not_make_data_fresh() {
    let (rx, addr) = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let compiled = project(dir.path(), &webhook_owners(addr));
    let clock = ManualClock::new(t0());
    let m = monitor(&compiled, &clock);
    record_success(&compiled, "sales", 10, t0());
    // Later runs that wrote nothing (an incremental model with no new input).
    record_success(&compiled, "sales", 0, t0() + chrono::Duration::hours(5));
    clock.advance(hours(7.0));
    m.check_freshness(clock.now()).await.unwrap();
    assert_eq!(rx.requests(), 1);
    assert_eq!(
        freshness_report(
            &compiled,
            &StateStore::open(&compiled.project.state_location().unwrap()).unwrap(),
            clock.now()
        )
        .unwrap()
        .iter()
        .find(|a| a.asset == "sales")
        .unwrap()
        .state,
        FreshnessState::Error
    );
}

#[tokio::test]
async fn a_restarted_monitor_does_not_alert_again() {
    let (rx, addr) = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let compiled = project(dir.path(), &webhook_owners(addr));
    let clock = ManualClock::new(t0());
    record_success(&compiled, "sales", 10, t0());
    clock.advance(hours(8.0));
    monitor(&compiled, &clock)
        .check_freshness(clock.now())
        .await
        .unwrap();
    // A new process (a restart of `sluice serve`) over the same state database.
    let again = monitor(&compiled, &clock);
    clock.advance(hours(1.0));
    again.check_freshness(clock.now()).await.unwrap();
    assert_eq!(rx.requests(), 1);
}

#[tokio::test]
async fn two_monitors_on_one_state_database_send_each_alert_once() {
    let (rx, addr) = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let compiled = project(dir.path(), &webhook_owners(addr));
    let clock = ManualClock::new(t0());
    let (a, b) = (monitor(&compiled, &clock), monitor(&compiled, &clock));
    record_success(&compiled, "sales", 10, t0());
    let mut expected = 0;
    for round in 0..4 {
        // Breach, seen by both at the same moment.
        clock.advance(hours(7.0));
        let (x, y) = tokio::join!(
            a.check_freshness(clock.now()),
            b.check_freshness(clock.now())
        );
        assert_eq!(
            x.unwrap().len() + y.unwrap().len(),
            1,
            "round {round}: one opening"
        );
        // Recovery, seen by both.
        record_success(&compiled, "sales", 1, clock.now());
        let (x, y) = tokio::join!(
            a.check_freshness(clock.now()),
            b.check_freshness(clock.now())
        );
        assert_eq!(
            x.unwrap().len() + y.unwrap().len(),
            1,
            "round {round}: one resolution"
        );
        expected += 2;
        assert_eq!(rx.requests(), expected);
    }
    // Two failing runs reported to both monitors at once: one alert.
    let failed = summary("r1", &[("broken", NodeStatus::Failed)]);
    let (x, y) = tokio::join!(a.after_run(&failed), b.after_run(&failed));
    assert_eq!(x.unwrap().len() + y.unwrap().len(), 1);
    assert_eq!(rx.requests(), expected + 1);
}

#[tokio::test]
async fn the_report_shows_state_owner_bounds_and_open_incidents() {
    let (_rx, addr) = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let compiled = project(dir.path(), &webhook_owners(addr));
    let clock = ManualClock::new(t0());
    let m = monitor(&compiled, &clock);
    record_success(&compiled, "sales", 10, t0());
    clock.advance(hours(3.0));
    m.check_freshness(clock.now()).await.unwrap();
    let report = freshness_report(
        &compiled,
        &StateStore::open(&compiled.project.state_location().unwrap()).unwrap(),
        clock.now(),
    )
    .unwrap();
    let sales = report.iter().find(|a| a.asset == "sales").unwrap();
    assert_eq!(sales.state, FreshnessState::Warn);
    assert_eq!(sales.owner.as_deref(), Some("finance"));
    assert_eq!(sales.alert_route.as_deref(), Some("finance"));
    assert_eq!(sales.warn_after.as_deref(), Some("2h"));
    assert_eq!(sales.error_after.as_deref(), Some("6h"));
    assert_eq!(sales.age_seconds, Some(3 * 3600));
    assert_eq!(sales.open_incidents.len(), 1);
    let broken = report.iter().find(|a| a.asset == "broken").unwrap();
    assert_eq!(broken.state, FreshnessState::NoSla);
    assert!(broken.open_incidents.is_empty());
}
