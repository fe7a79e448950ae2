//! Scheduler tests on a [`ManualClock`]: small projects in temporary folders (a `files` or `sqlite`
//! source and a few models), real ingestion and builds, and time moved by hand, so "three hours
//! later" costs nothing and every tick's instant is checked exactly.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::testkit::*;
use super::*;
use crate::runner::RunOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_and_interval_ticks_fire_on_time() {
    let h = harness(
        &[
            (
                "sources/events.yml",
                "kind: files\ntables:\n  - name: events\n    path: data/events/*.csv\n    schedule: every 15m\n",
            ),
            (
                "sources/crm.yml",
                "kind: files\nschedule: \"0 * * * *\"\ntables:\n  - name: accounts\n    path: data/crm/*.csv\n",
            ),
            ("data/events/001.csv", "id,kind\n1,view\n"),
            ("data/crm/001.csv", "id,name\n1,acme\n"),
        ],
        at(10, 7, 0),
    )
    .await;
    let mut s = h.start(options(DAY));
    let ev = s.settle(at(10, 7, 0)).await;
    assert!(started(&ev).is_empty(), "nothing is due at start");
    // It sleeps until 10:15: nothing can start a second earlier.
    assert_eq!(idle_wake(&ev), Some(at(10, 15, 0)));

    h.clock.set(at(10, 15, 0));
    let ev = s.settle(at(10, 15, 0)).await;
    let runs = started(&ev);
    assert_eq!(runs.len(), 1, "{ev:?}");
    assert_eq!(
        runs[0].0,
        BTreeMap::from([("events.events".into(), DueReason::Tick(at(10, 15, 0)))])
    );
    assert_eq!(ran(&finished(&ev)[0]), set(&["events.events"]));
    assert_eq!(idle_wake(&ev), Some(at(10, 30, 0)));

    h.clock.set(at(10, 30, 0));
    let ev = s.settle(at(10, 30, 0)).await;
    assert_eq!(started(&ev).len(), 1);
    assert_eq!(
        started(&ev)[0].0["events.events"],
        DueReason::Tick(at(10, 30, 0))
    );

    // At 11:00 both the interval and the hourly cron fire, in one run.
    h.clock.set(at(11, 0, 0));
    let ev = s.settle(at(11, 0, 0)).await;
    let runs = started(&ev);
    assert_eq!(runs.len(), 1, "{ev:?}");
    assert_eq!(
        runs[0].0,
        BTreeMap::from([
            ("crm.accounts".into(), DueReason::Tick(at(11, 0, 0))),
            ("events.events".into(), DueReason::Tick(at(11, 0, 0))),
        ])
    );
    assert_eq!(
        ran(&finished(&ev)[0]),
        set(&["crm.accounts", "events.events"])
    );
    s.stop().await;
    assert_eq!(
        h.state.schedule_tick("crm.accounts").unwrap(),
        Some(at(11, 0, 0))
    );
    assert_eq!(
        h.state.schedule_tick("events.events").unwrap(),
        Some(at(11, 0, 0))
    );
    let runs = h.state.runs(10).unwrap();
    assert_eq!(runs.len(), 3);
    assert!(
        runs.iter()
            .all(|r| r.command == "schedule" && r.status == "success")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_window_runs_each_interval_with_all_and_once_with_latest() {
    let h = harness(
        &[
            (
                "sources/a.yml",
                "kind: files\nschedule: \"@hourly\"\ncatchup: all\ntables:\n  - name: t\n    path: data/a/*.csv\n",
            ),
            (
                "sources/b.yml",
                "kind: files\nschedule: \"@hourly\"\ntables:\n  - name: t\n    path: data/b/*.csv\n",
            ),
        ],
        at(10, 0, 0),
    )
    .await;
    // First life: starts at 10:00 and stops; nothing has run.
    let mut s = h.start(options(DAY));
    s.settle(at(10, 0, 0)).await;
    s.stop().await;

    // The process is down until 13:30: 11:00, 12:00 and 13:00 were missed.
    h.clock.set(at(13, 30, 0));
    let second = h.scheduler(options(DAY));
    let upcoming: BTreeMap<String, ScheduleInfo> = second
        .upcoming()
        .unwrap()
        .into_iter()
        .map(|i| (i.node.clone(), i))
        .collect();
    assert_eq!(upcoming["a.t"].missed, 3);
    assert_eq!(upcoming["a.t"].next_tick, Some(at(13, 30, 0)));
    assert_eq!(upcoming["a.t"].trigger, "@hourly (catchup all)");
    assert_eq!(upcoming["b.t"].missed, 3);
    drop(second);

    let mut s = h.start(options(DAY));
    let ev = s.settle(at(13, 30, 0)).await;
    let ticks = |node: &str| -> Vec<DateTime<Utc>> {
        started(&ev)
            .iter()
            .filter_map(|(due, _)| match due.get(node) {
                Some(DueReason::Tick(t)) => Some(*t),
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        ticks("a.t"),
        vec![at(11, 0, 0), at(12, 0, 0), at(13, 0, 0)],
        "catchup all: each missed interval, oldest first"
    );
    assert_eq!(ticks("b.t"), vec![at(13, 0, 0)], "catchup latest: once");
    assert_eq!(finished(&ev).len(), 3);
    assert_eq!(idle_wake(&ev), Some(at(14, 0, 0)));
    s.stop().await;
    assert_eq!(h.state.schedule_tick("a.t").unwrap(), Some(at(13, 0, 0)));
    assert_eq!(h.state.schedule_tick("b.t").unwrap(), Some(at(13, 0, 0)));
}

const SHOP: &[(&str, &str)] = &[
    (
        "sources/shop.yml",
        "kind: files\nschedule: every 1h\ntables:\n  - name: orders\n    path: data/orders/*.csv\n  - name: clicks\n    path: data/clicks/*.csv\n",
    ),
    ("data/orders/001.csv", "order_id,amount\n1,10\n2,20\n"),
    ("data/clicks/001.csv", "click_id,page\n1,home\n"),
    (
        "models/silver/stg_orders.sql",
        "select order_id, amount from {{ source('shop', 'orders') }}",
    ),
    (
        "models/gold/order_totals.sql",
        "select count(*) as n, sum(amount) as total from {{ ref('stg_orders') }}",
    ),
    (
        "models/silver/stg_clicks.sql",
        "select click_id, page from {{ source('shop', 'clicks') }}",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_change_triggers_exactly_its_downstream() {
    let h = harness(SHOP, at(9, 30, 0)).await;
    let mut s = h.start(options(DAY));
    let ev = s.settle(at(9, 30, 0)).await;
    assert!(started(&ev).is_empty(), "no data yet, nothing to build");

    // 10:00: both tables land their first file; every model follows in the same run.
    h.clock.set(at(10, 0, 0));
    let ev = s.settle(at(10, 0, 0)).await;
    let runs = started(&ev);
    assert_eq!(runs.len(), 1, "{ev:?}");
    assert_eq!(
        runs[0].1,
        set(&["order_totals", "stg_clicks", "stg_orders"]),
        "on-upstream-change models join the run"
    );
    assert_eq!(
        ran(&finished(&ev)[0]),
        set(&[
            "shop.orders",
            "shop.clicks",
            "stg_orders",
            "order_totals",
            "stg_clicks"
        ])
    );

    // 11:00: only orders has a new file: its downstream runs, the clicks model does not.
    write(&h.dir, "data/orders/002.csv", "order_id,amount\n3,30\n");
    h.clock.set(at(11, 0, 0));
    let ev = s.settle(at(11, 0, 0)).await;
    assert_eq!(started(&ev).len(), 1, "{ev:?}");
    let summary = &finished(&ev)[0];
    assert_eq!(
        ran(summary),
        set(&["shop.orders", "shop.clicks", "stg_orders", "order_totals"])
    );
    assert_eq!(
        summary.node("shop.clicks").unwrap().output.rows_out,
        Some(0)
    );

    // 12:00: no new files: the sources run, land nothing, and trigger nothing.
    h.clock.set(at(12, 0, 0));
    let ev = s.settle(at(12, 0, 0)).await;
    assert_eq!(started(&ev).len(), 1, "{ev:?}");
    assert_eq!(ran(&finished(&ev)[0]), set(&["shop.orders", "shop.clicks"]));
    s.stop().await;
    let totals = h
        .engine
        .query("select cast(n * 1000 + total as varchar) as v from gold.order_totals")
        .await
        .unwrap();
    let shown = sluice_transform::pretty(&totals);
    assert!(shown.contains("3060"), "3 orders worth 60: {shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_by_another_run_is_picked_up_at_the_next_poll() {
    let h = harness(SHOP, at(9, 30, 0)).await;
    // Everything is built once by a plain `sluice run`: the scheduler finds nothing stale.
    crate::runner::run(
        h.project.clone(),
        h.engine.clone(),
        h.state.clone(),
        RunOptions::default(),
    )
    .await
    .unwrap();
    let mut s = h.start(options(Duration::from_secs(30)));
    let ev = s.settle(at(9, 30, 0)).await;
    assert!(started(&ev).is_empty(), "{ev:?}");

    // Another process lands new orders (`sluice run --select shop.orders`).
    write(&h.dir, "data/orders/002.csv", "order_id,amount\n3,30\n");
    crate::runner::run(
        h.project.clone(),
        h.engine.clone(),
        h.state.clone(),
        RunOptions {
            selection: "shop.orders".into(),
            ..RunOptions::default()
        },
    )
    .await
    .unwrap();
    h.clock.set(at(9, 30, 30));
    let ev = s.settle(at(9, 30, 30)).await;
    let runs = started(&ev);
    assert_eq!(runs.len(), 1, "{ev:?}");
    assert_eq!(
        runs[0].0,
        BTreeMap::from([(
            "stg_orders".into(),
            DueReason::UpstreamChanged(vec!["shop.orders".into()])
        )])
    );
    assert_eq!(ran(&finished(&ev)[0]), set(&["stg_orders", "order_totals"]));

    // Consumed: the next poll starts nothing.
    h.clock.set(at(9, 31, 0));
    let ev = s.settle(at(9, 31, 0)).await;
    assert!(started(&ev).is_empty(), "{ev:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_file_triggers_the_sensor() {
    let h = harness(
        &[
            (
                "sources/drop.yml",
                "kind: files\ntables:\n  - name: events\n    path: data/drop/*.csv\n",
            ),
            (
                "models/silver/stg_drop.sql",
                "select id from {{ source('drop', 'events') }}",
            ),
        ],
        at(8, 0, 0),
    )
    .await;
    assert_eq!(
        h.scheduler(options(DAY))
            .plan()
            .get("drop.events")
            .unwrap()
            .describe(),
        "on file arrival"
    );
    let mut s = h.start(options(Duration::from_secs(30)));
    let ev = s.settle(at(8, 0, 0)).await;
    assert!(started(&ev).is_empty(), "no files yet");
    // The next look is one interval later.
    assert_eq!(idle_wake(&ev), Some(at(8, 0, 30)));

    write(&h.dir, "data/drop/a.csv", "id\n1\n2\n");

    h.clock.set(at(8, 0, 30));
    let ev = s.settle(at(8, 0, 30)).await;
    let runs = started(&ev);
    assert_eq!(runs.len(), 1, "{ev:?}");
    assert_eq!(
        runs[0].0["drop.events"],
        DueReason::FilesArrived(vec!["data/drop/a.csv".into()])
    );
    assert_eq!(ran(&finished(&ev)[0]), set(&["drop.events", "stg_drop"]));

    h.clock.set(at(8, 1, 0));
    let ev = s.settle(at(8, 1, 0)).await;
    assert!(started(&ev).is_empty(), "a landed file does not fire again");

    write(&h.dir, "data/drop/b.csv", "id\n3\n");
    h.clock.set(at(8, 1, 30));
    let ev = s.settle(at(8, 1, 30)).await;
    assert_eq!(
        started(&ev)[0].0["drop.events"],
        DueReason::FilesArrived(vec!["data/drop/b.csv".into()])
    );
    assert_eq!(
        finished(&ev)[0]
            .node("drop.events")
            .unwrap()
            .output
            .rows_out,
        Some(1)
    );
    s.stop().await;
}

/// A project whose only source waits on a SQLite lock the test holds, so a run stays in flight
/// until the test lets go.
async fn locked_sqlite(start: DateTime<Utc>) -> (Harness, rusqlite::Connection) {
    let h = harness(
        &[(
            "sources/app.yml",
            "kind: sqlite\nconnection: app.db\nbusy_timeout: 120s\nschedule: \"@hourly\"\ntables:\n  - name: items\n",
        )],
        start,
    )
    .await;
    let conn = rusqlite::Connection::open(h.dir.join("app.db")).unwrap();
    conn.execute_batch(
        "CREATE TABLE items (id INTEGER, name TEXT); INSERT INTO items VALUES (1, 'a');
         BEGIN EXCLUSIVE; UPDATE items SET name = 'b';",
    )
    .unwrap();
    (h, conn)
}

/// Tells the test when the runner starts a node.
struct NodeStarts(tokio::sync::mpsc::UnboundedSender<String>);

impl crate::runner::RunObserver for NodeStarts {
    fn node_started(&self, node: &str) {
        let _ = self.0.send(node.to_string());
    }
}

/// Starts a scheduler whose runner reports node starts.
fn start_observed(h: &Harness) -> (Running, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut opts = options(DAY);
    opts.run.observer = Some(Arc::new(NodeStarts(tx)));
    (h.start(opts), rx)
}

/// Starts the 11:00 run and asks for shutdown once its source is reading (and waiting on the lock).
async fn stop_during_a_run(
    h: &Harness,
    s: &mut Running,
    starts: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
) -> String {
    s.settle(at(10, 0, 0)).await;
    h.clock.set(at(11, 0, 0));
    let run_id = loop {
        if let SchedulerEvent::RunStarted { run_id, .. } = s.next().await {
            break run_id;
        }
    };
    assert_eq!(starts.recv().await.as_deref(), Some("app.items"));
    let _ = s.stop.take().unwrap().send(());
    loop {
        if let SchedulerEvent::Stopping { in_flight } = s.next().await {
            assert_eq!(in_flight, 1);
            break;
        }
    }
    tokio::task::yield_now().await;
    assert!(!s.task.is_finished(), "the scheduler waits for its run");
    run_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_the_in_flight_run_finish() {
    let (h, conn) = locked_sqlite(at(10, 0, 0)).await;
    let (mut s, mut starts) = start_observed(&h);
    let run_id = stop_during_a_run(&h, &mut s, &mut starts).await;
    conn.execute_batch("COMMIT;").unwrap();
    let ev = s.stop().await;
    let summary = &finished(&ev)[0];
    assert_eq!(summary.run_id, run_id);
    assert_eq!(ran(summary), set(&["app.items"]));
    assert!(
        !ev.iter()
            .any(|e| matches!(e, SchedulerEvent::RunCancelled { .. }))
    );
    assert_eq!(h.state.run(&run_id).unwrap().unwrap().status, "success");
    assert_eq!(
        h.state.schedule_tick("app.items").unwrap(),
        Some(at(11, 0, 0))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_cancels_a_run_that_outlives_the_grace_period() {
    let (h, conn) = locked_sqlite(at(10, 0, 0)).await;
    let (mut s, mut starts) = start_observed(&h);
    let run_id = stop_during_a_run(&h, &mut s, &mut starts).await;
    h.clock.advance(Duration::from_secs(10));
    let ev = s.stop().await;
    assert!(
        ev.iter()
            .any(|e| matches!(e, SchedulerEvent::RunCancelled { run_id: r } if *r == run_id)),
        "{ev:?}"
    );
    assert_eq!(h.state.run(&run_id).unwrap().unwrap().status, "cancelled");
    // The tick was not handled, so a restart catches it up.
    assert_eq!(
        h.state.schedule_tick("app.items").unwrap(),
        Some(at(10, 0, 0))
    );
    conn.execute_batch("COMMIT;").unwrap();
}

/// How many times each node ran across the runs of several schedulers.
fn runs_per_node(events: &[&[SchedulerEvent]]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for ev in events {
        for summary in finished(ev) {
            for n in &summary.nodes {
                *out.entry(n.node.clone()).or_insert(0) += 1;
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_on_one_state_database_do_not_double_run() {
    let h = harness(SHOP, at(9, 30, 0)).await;
    let poll = Duration::from_secs(30);
    let mut a = h.start(options(poll));
    let mut b = start_scheduler(h.second_scheduler(options(poll)));
    a.settle(at(9, 30, 0)).await;
    b.settle(at(9, 30, 0)).await;

    // 10:00: both see the hourly tick; one claims it and runs it with its downstream.
    h.clock.set(at(10, 0, 0));
    let ea = a.settle(at(10, 0, 0)).await;
    let eb = b.settle(at(10, 0, 0)).await;
    // Let both poll again after the run: nothing is left to trigger.
    h.clock.set(at(10, 0, 30));
    let ea2 = a.settle(at(10, 0, 30)).await;
    let eb2 = b.settle(at(10, 0, 30)).await;
    let counts = runs_per_node(&[&ea, &eb, &ea2, &eb2]);
    assert_eq!(
        counts,
        BTreeMap::from([
            ("order_totals".to_string(), 1),
            ("shop.clicks".to_string(), 1),
            ("shop.orders".to_string(), 1),
            ("stg_clicks".to_string(), 1),
            ("stg_orders".to_string(), 1),
        ]),
        "each node once across both schedulers"
    );

    // Another process lands new orders; both schedulers notice; one builds the downstream.
    write(&h.dir, "data/orders/002.csv", "order_id,amount\n3,30\n");
    crate::runner::run(
        h.project.clone(),
        h.engine.clone(),
        h.state.clone(),
        RunOptions {
            selection: "shop.orders".into(),
            ..RunOptions::default()
        },
    )
    .await
    .unwrap();
    h.clock.set(at(10, 1, 0));
    let ea = a.settle(at(10, 1, 0)).await;
    let eb = b.settle(at(10, 1, 0)).await;
    h.clock.set(at(10, 1, 30));
    let ea2 = a.settle(at(10, 1, 30)).await;
    let eb2 = b.settle(at(10, 1, 30)).await;
    let counts = runs_per_node(&[&ea, &eb, &ea2, &eb2]);
    assert_eq!(
        counts,
        BTreeMap::from([
            ("order_totals".to_string(), 1),
            ("stg_orders".to_string(), 1)
        ]),
        "the change is built once"
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_is_abandoned_and_holds_no_trigger_back() {
    let Some(gone) = crate::process::exited_process() else {
        eprintln!("skipping: /proc does not identify processes here");
        return;
    };
    let h = harness(SHOP, at(9, 30, 0)).await;
    crate::runner::run(
        h.project.clone(),
        h.engine.clone(),
        h.state.clone(),
        RunOptions::default(),
    )
    .await
    .unwrap();
    // Another process lands new orders, then is SIGKILLed before stg_orders (its on-upstream-change
    // downstream) ran in it: its run stays `running`, recorded by a process that is gone.
    write(&h.dir, "data/orders/002.csv", "order_id,amount\n3,30\n");
    let killed = crate::runner::run(
        h.project.clone(),
        h.engine.clone(),
        h.state.clone(),
        RunOptions {
            selection: "shop.orders".into(),
            ..RunOptions::default()
        },
    )
    .await
    .unwrap()
    .run_id;
    // What the killed process left: no store operation un-finishes a run, so its rows are written
    // as it would have left them, through a second connection to the state database.
    raw_sql(
        &h,
        "UPDATE runs SET status = 'running', finished_at = NULL WHERE run_id = ?1",
        "UPDATE runs SET status = 'running', finished_at = NULL WHERE run_id = $1",
        std::slice::from_ref(&killed),
    );
    let plan = "UPDATE run_processes SET process = ?2, start_ticks = NULL,
                plan = 'shop.orders\tsource\nstg_orders\tmodel' WHERE run_id = ?1";
    raw_sql(
        &h,
        plan,
        &plan.replace('?', "$"),
        &[killed.clone(), gone.to_string()],
    );
    assert!(
        h.state.unfinished_runs().unwrap().contains(&killed),
        "unreaped, it would hold the trigger back"
    );

    // The scheduler reaps it on start, and the change it landed triggers stg_orders.
    let mut s = h.start(options(Duration::from_secs(30)));
    let ev = s.settle(at(9, 30, 0)).await;
    let run = h.state.run(&killed).unwrap().unwrap();
    assert_eq!(run.status, "abandoned");
    let runs = started(&ev);
    assert_eq!(runs.len(), 1, "{ev:?}");
    assert_eq!(
        runs[0].0,
        BTreeMap::from([(
            "stg_orders".into(),
            DueReason::UpstreamChanged(vec!["shop.orders".into()])
        )])
    );
    assert_eq!(ran(&finished(&ev)[0]), set(&["stg_orders", "order_totals"]));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unfinished_nodes_of_a_killed_scheduled_run_are_taken_over_once() {
    let Some(gone) = crate::process::exited_process() else {
        eprintln!("skipping: /proc does not identify processes here");
        return;
    };
    let h = harness(SHOP, at(9, 30, 0)).await;
    crate::runner::run(
        h.project.clone(),
        h.engine.clone(),
        h.state.clone(),
        RunOptions::default(),
    )
    .await
    .unwrap();
    // A scheduled run on another worker lands new orders, then the worker is SIGKILLed before
    // stg_orders (its on-upstream-change downstream) ran in it.
    write(&h.dir, "data/orders/002.csv", "order_id,amount\n3,30\n");
    let killed = crate::runner::run(
        h.project.clone(),
        h.engine.clone(),
        h.state.clone(),
        RunOptions {
            selection: "shop.orders".into(),
            ..RunOptions::default()
        },
    )
    .await
    .unwrap()
    .run_id;
    raw_sql(
        &h,
        "UPDATE runs SET status = 'running', finished_at = NULL, command = 'schedule' WHERE run_id = ?1",
        "UPDATE runs SET status = 'running', finished_at = NULL, command = 'schedule' WHERE run_id = $1",
        std::slice::from_ref(&killed),
    );
    let plan = "UPDATE run_processes SET process = ?2, start_ticks = NULL,
                plan = 'shop.orders\tsource\nstg_orders\tmodel' WHERE run_id = ?1";
    raw_sql(
        &h,
        plan,
        &plan.replace('?', "$"),
        &[killed.clone(), gone.to_string()],
    );

    // Two schedulers start; one marks the run abandoned and takes stg_orders over (with its
    // downstream), the other sees the change claimed: stg_orders is built once, and what the dead
    // run finished (shop.orders) is not run again.
    let mut a = h.start(options(Duration::from_secs(30)));
    let mut b = start_scheduler(h.second_scheduler(options(Duration::from_secs(30))));
    let ev_a = a.settle(at(9, 30, 0)).await;
    let ev_b = b.settle(at(9, 30, 0)).await;
    assert_eq!(h.state.run(&killed).unwrap().unwrap().status, "abandoned");
    let runs: Vec<_> = started(&ev_a).into_iter().chain(started(&ev_b)).collect();
    assert_eq!(runs.len(), 1, "{ev_a:?} {ev_b:?}");
    // Taken over; or, when the other scheduler saw the abandoned run's change first, built for it.
    let reason = runs[0].0.get("stg_orders").cloned();
    assert_eq!(runs[0].0.len(), 1, "{:?}", runs[0]);
    assert!(
        reason == Some(DueReason::TakenOver(killed.clone()))
            || reason == Some(DueReason::UpstreamChanged(vec!["shop.orders".into()])),
        "{reason:?}"
    );
    let done: Vec<_> = finished(&ev_a).into_iter().chain(finished(&ev_b)).collect();
    assert_eq!(done.len(), 1);
    assert_eq!(ran(&done[0]), set(&["stg_orders", "order_totals"]));
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_run_is_executed_by_exactly_one_scheduler() {
    let h = harness(SHOP, at(9, 30, 0)).await;
    let queued = h
        .state
        .enqueue_run(&RunOptions {
            selection: "shop.orders".into(),
            command: "api".into(),
            ..RunOptions::default()
        })
        .unwrap();
    let with_queue = || SchedulerOptions {
        queue_interval: Some(Duration::from_secs(1)),
        ..options(Duration::from_secs(30))
    };
    let mut a = h.start(with_queue());
    let mut b = start_scheduler(h.second_scheduler(with_queue()));
    let ev_a = a.settle(at(9, 30, 0)).await;
    let ev_b = b.settle(at(9, 30, 0)).await;
    // (What it lands then triggers its on-upstream-change downstream, as any run's would.)
    let is_queued =
        |due: &BTreeMap<String, DueReason>| due.values().any(|r| *r == DueReason::Queued);
    let runs: Vec<_> = started(&ev_a)
        .into_iter()
        .chain(started(&ev_b))
        .filter(|(due, _)| is_queued(due))
        .collect();
    assert_eq!(runs.len(), 1, "{ev_a:?} {ev_b:?}");
    assert_eq!(
        runs[0].0,
        BTreeMap::from([("shop.orders".into(), DueReason::Queued)])
    );
    let run = h.state.run(&queued).unwrap().unwrap();
    assert_eq!(run.status, "success");
    assert_eq!(run.command, "api");
    // Gone from the queue: a later poll starts nothing.
    h.clock.set(at(9, 30, 5));
    let later_a = a.settle(at(9, 30, 5)).await;
    let later_b = b.settle(at(9, 30, 5)).await;
    let again = started(&later_a).into_iter().chain(started(&later_b));
    assert_eq!(again.filter(|(due, _)| is_queued(due)).count(), 0);
    a.stop().await;
    b.stop().await;
}
