//! Table maintenance on a schedule, on a [`ManualClock`]: a real table, real compaction.

use sluice_lake::TableId;

use super::testkit::*;
use super::*;
use crate::runner::{NodeStatus, RunOptions, run};

const MODEL: (&str, &str) = (
    "models/silver/events.sql",
    "{{ config(materialized='incremental') }}\nselect 1 as x",
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_maintenance_schedule_compacts_its_tables_at_its_ticks() {
    let config = "maintenance:\n  silver:\n    schedule: '0 3 * * *'\n";
    let h = harness_with(config, &[MODEL], at(2, 30, 0)).await;
    let plan = h.scheduler(options(DAY)).plan().clone();
    let schedules = plan.maintenance();
    assert_eq!(schedules.len(), 1);
    assert_eq!(schedules[0].key, "maintenance:0 3 * * *");
    assert_eq!(schedules[0].targets.len(), 1);

    // Three builds: three small files.
    let id = TableId::silver("events");
    for _ in 0..3 {
        let summary = run(
            h.project.clone(),
            h.engine.clone(),
            h.state.clone(),
            RunOptions::default(),
        )
        .await
        .unwrap();
        assert_eq!(summary.node("events").unwrap().status, NodeStatus::Success);
    }
    let lake = h.engine.lake().clone();
    let files = || async { lake.file_stats(&id, 1 << 20).await.unwrap().unwrap().files };
    assert_eq!(files().await, 3);

    let mut s = h.start(options(DAY));
    let ev = s.settle(at(2, 30, 0)).await;
    assert_eq!(idle_wake(&ev), Some(at(3, 0, 0)), "it wakes for the tick");
    assert_eq!(files().await, 3, "nothing before the tick");

    h.clock.set(at(3, 0, 0));
    s.settle(at(3, 0, 0)).await;
    assert_eq!(files().await, 1, "compacted at 03:00");
    let maintained: Vec<_> = h
        .state
        .runs(20)
        .unwrap()
        .into_iter()
        .filter(|r| r.command == "maintain")
        .collect();
    assert_eq!(maintained.len(), 1, "{maintained:?}");
    assert_eq!(maintained[0].selection, "(schedule 0 3 * * *)");
    assert_eq!(maintained[0].status, "success");
    assert_eq!(
        h.state.schedule_tick("maintenance:0 3 * * *").unwrap(),
        Some(at(3, 0, 0))
    );

    // The next tick is tomorrow's; a restart does not repeat the handled one.
    s.stop().await;
    let mut s = h.start(options(DAY));
    let ev = s.settle(at(3, 0, 0)).await;
    assert_eq!(
        idle_wake(&ev),
        Some(at(3, 0, 0) + chrono::Duration::days(1))
    );
    s.stop().await;
    let passes = h
        .state
        .runs(20)
        .unwrap()
        .into_iter()
        .filter(|r| r.command == "maintain")
        .count();
    assert_eq!(passes, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_maintenance_schedule_is_an_error_at_its_line() {
    let config = "maintenance:\n  assets:\n    events:\n      schedule: every never\n";
    let h = harness_with(config, &[MODEL], at(2, 30, 0)).await;
    let err = SchedulePlan::from_project(&h.project)
        .unwrap_err()
        .to_string();
    assert!(
        // Line 5 (6 with a PostgreSQL `state:` line), at the value.
        (err.contains("sluice.yml:5:") || err.contains("sluice.yml:6:"))
            && err.contains("field `maintenance.assets.events.schedule`")
            && err.contains("invalid schedule `every never`"),
        "{err}"
    );
}
