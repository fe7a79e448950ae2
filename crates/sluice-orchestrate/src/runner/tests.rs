//! The run loop's failure semantics, on a scripted executor: each node's attempts succeed, fail
//! transiently, fail permanently or hang, as the test says, so ordering, retries, timeouts,
//! fail_open/fail_fast, cancellation and leases are checked without real data.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use sluice_core::Project;
use sluice_lake::Lake;
use sluice_transform::{CompiledProject, Engine, compile};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::node::{AttemptResult, ExportFailure, NodeError, NodeOutput};
use crate::policy::OnFailure;

/// What one attempt of a node does.
#[derive(Debug, Clone, Copy)]
enum Step {
    Ok,
    Transient,
    Permanent,
    Hang,
}

/// An executor that follows a script per node (nodes without one succeed) and records every attempt.
#[derive(Default)]
struct Scripted {
    script: Mutex<HashMap<String, VecDeque<Step>>>,
    attempts: Mutex<Vec<(String, u32, Instant)>>,
    /// How long every attempt takes.
    hold: Duration,
    running: AtomicUsize,
    max_running: AtomicUsize,
}

impl Scripted {
    fn new(hold: Duration, script: &[(&str, &[Step])]) -> Arc<Scripted> {
        let s = Scripted {
            hold,
            ..Scripted::default()
        };
        {
            let mut m = s.script.lock().unwrap();
            for (node, steps) in script {
                m.insert(node.to_string(), steps.iter().copied().collect());
            }
        }
        Arc::new(s)
    }

    fn attempts_of(&self, node: &str) -> Vec<Instant> {
        let a = self.attempts.lock().unwrap();
        a.iter()
            .filter(|(n, _, _)| n == node)
            .map(|(_, _, at)| *at)
            .collect()
    }

    fn order(&self) -> Vec<String> {
        let a = self.attempts.lock().unwrap();
        a.iter().map(|(n, _, _)| n.clone()).collect()
    }
}

impl NodeExecutor for Scripted {
    fn kind(&self, _node: &str) -> sluice_core::NodeKind {
        sluice_core::NodeKind::Model
    }

    fn attempt<'a>(&'a self, node: &'a str, attempt: u32) -> BoxFuture<'a, AttemptResult> {
        Box::pin(async move {
            self.attempts
                .lock()
                .unwrap()
                .push((node.to_string(), attempt, Instant::now()));
            let step = self
                .script
                .lock()
                .unwrap()
                .get_mut(node)
                .and_then(VecDeque::pop_front)
                .unwrap_or(Step::Ok);
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_running.fetch_max(now, Ordering::SeqCst);
            let _done = Decrement(&self.running);
            tokio::time::sleep(self.hold).await;
            let fail = |transient| ExportFailure {
                export: node.to_string(),
                message: if transient {
                    "connection refused".into()
                } else {
                    "syntax error".into()
                },
                transient,
            };
            match step {
                Step::Ok => Ok(NodeOutput {
                    rows_out: Some(1),
                    ..NodeOutput::default()
                }),
                Step::Transient => Err((NodeError::Export(fail(true)), Vec::new())),
                Step::Permanent => Err((NodeError::Export(fail(false)), Vec::new())),
                Step::Hang => {
                    std::future::pending::<()>().await;
                    unreachable!("pending never returns")
                }
            }
        })
    }
}

struct Decrement<'a>(&'a AtomicUsize);

impl Drop for Decrement<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The state backend under test: in memory, or a PostgreSQL schema of its own
/// (`SLUICE_TEST_STATE_URL`), left for `.ci/run` to drop with its database.
fn fresh_state() -> StateStore {
    match sluice_state::testing::TestSchema::from_env("runner").unwrap() {
        Some(s) => StateStore::open(&s.keep()).unwrap(),
        None => StateStore::in_memory().unwrap(),
    }
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// `a -> b -> c` and an independent `d`.
async fn chain(dir: &Path) -> (Arc<CompiledProject>, Engine) {
    write(dir, "sluice.yml", "name: policies\n");
    write(dir, "models/silver/a.sql", "select 1 as x");
    write(dir, "models/silver/b.sql", "select x from {{ ref('a') }}");
    write(dir, "models/gold/c.sql", "select x from {{ ref('b') }}");
    write(dir, "models/gold/d.sql", "select 2 as y");
    let project = Project::load(dir).unwrap_or_else(|e| panic!("{e}"));
    let compiled = compile(Arc::new(project)).unwrap_or_else(|e| panic!("{e:?}"));
    let lake = Lake::open(&compiled.project.lake_location()).unwrap();
    let engine = Engine::open(&lake, Some(&compiled)).await.unwrap();
    (Arc::new(compiled), engine)
}

fn policy(retries: u32, backoff_ms: u64, on_failure: OnFailure) -> NodePolicy {
    NodePolicy {
        retries,
        retry_backoff: Duration::from_millis(backoff_ms),
        max_retry_backoff: Duration::from_secs(5),
        timeout: None,
        on_failure,
    }
}

async fn run_with(
    project: &Arc<CompiledProject>,
    engine: &Engine,
    state: &Arc<StateStore>,
    exec: &Arc<Scripted>,
    policy: NodePolicy,
) -> RunSummary {
    run(
        project.clone(),
        engine.clone(),
        state.clone(),
        RunOptions {
            executor: Some(exec.clone()),
            policies: Some(Arc::new(Policies::uniform(policy))),
            ..RunOptions::default()
        },
    )
    .await
    .unwrap()
}

fn status(s: &RunSummary, node: &str) -> NodeStatus {
    s.node(node).unwrap_or_else(|| panic!("no {node}")).status
}

#[tokio::test]
async fn transient_failures_are_retried_with_growing_delays() {
    let tmp = tempfile::tempdir().unwrap();
    let (project, engine) = chain(tmp.path()).await;
    let state = Arc::new(fresh_state());
    let t = Step::Transient;
    let exec = Scripted::new(Duration::ZERO, &[("a", &[t, t, t, Step::Ok])]);
    let s = run_with(
        &project,
        &engine,
        &state,
        &exec,
        policy(3, 40, OnFailure::FailFast),
    )
    .await;
    assert_eq!(status(&s, "a"), NodeStatus::Success);
    assert_eq!(s.node("a").unwrap().attempts, 4);
    // Exponential with jitter: each planned delay lies in [b·2^k, b·2^(k+1)), so they only grow.
    // (Planned, from the log: the measured gaps add whatever the machine adds.)
    let log = state.node_log(&s.run_id, "a").unwrap();
    let planned: Vec<u64> = log
        .iter()
        .filter_map(|l| l.message.split("retrying in ").nth(1))
        .map(|ms| ms.trim_end_matches("ms").parse().unwrap())
        .collect();
    assert_eq!(planned.len(), 3, "{log:?}");
    for (k, ms) in planned.iter().enumerate() {
        let base = 40u64 << k;
        assert!((base..2 * base).contains(ms), "{planned:?}");
    }
    // And the node really waited that long between attempts.
    let at = exec.attempts_of("a");
    let gaps: Vec<Duration> = at.windows(2).map(|w| w[1] - w[0]).collect();
    for (gap, ms) in gaps.iter().zip(&planned) {
        assert!(*gap >= Duration::from_millis(*ms), "{gaps:?} {planned:?}");
    }
    assert!(log.last().unwrap().message.contains("attempt 4 succeeded"));
}

#[tokio::test]
async fn permanent_failures_are_not_retried_and_retries_run_out() {
    let tmp = tempfile::tempdir().unwrap();
    let (project, engine) = chain(tmp.path()).await;
    let state = Arc::new(fresh_state());
    let t = Step::Transient;
    let exec = Scripted::new(
        Duration::ZERO,
        &[
            ("a", &[Step::Permanent, Step::Ok]),
            ("d", &[t, t, t, Step::Ok]),
        ],
    );
    let s = run_with(
        &project,
        &engine,
        &state,
        &exec,
        policy(2, 5, OnFailure::FailFast),
    )
    .await;
    assert_eq!(status(&s, "a"), NodeStatus::Failed);
    assert_eq!(
        s.node("a").unwrap().attempts,
        1,
        "a permanent error is not retried"
    );
    assert_eq!(status(&s, "d"), NodeStatus::Failed);
    assert_eq!(
        s.node("d").unwrap().attempts,
        3,
        "2 retries, then it gives up"
    );
    assert!(
        s.node("d")
            .unwrap()
            .error
            .as_deref()
            .unwrap()
            .contains("connection refused")
    );
}

/// The chain run once with `a` failing permanently under `on_failure`.
async fn run_with_a_failing(on_failure: OnFailure) -> (RunSummary, Arc<StateStore>, Arc<Scripted>) {
    let tmp = tempfile::tempdir().unwrap();
    let (project, engine) = chain(tmp.path()).await;
    let state = Arc::new(fresh_state());
    let exec = Scripted::new(Duration::ZERO, &[("a", &[Step::Permanent])]);
    let s = run_with(&project, &engine, &state, &exec, policy(0, 5, on_failure)).await;
    (s, state, exec)
}

#[tokio::test]
async fn fail_fast_skips_the_downstream_and_runs_the_rest() {
    let (s, _, exec) = run_with_a_failing(OnFailure::FailFast).await;
    assert_eq!(status(&s, "a"), NodeStatus::Failed);
    assert_eq!(status(&s, "b"), NodeStatus::Skipped);
    assert_eq!(status(&s, "c"), NodeStatus::Skipped);
    assert_eq!(status(&s, "d"), NodeStatus::Success);
    assert!(!exec.order().contains(&"b".to_string()), "b never ran");
    assert_eq!(s.status(), "partial");
}

#[tokio::test]
async fn fail_open_runs_the_downstream_on_stale_input() {
    let (s, state, exec) = run_with_a_failing(OnFailure::FailOpen).await;
    assert!(exec.order().contains(&"b".to_string()), "b ran");
    assert_eq!(status(&s, "a"), NodeStatus::Failed);
    assert_eq!(status(&s, "b"), NodeStatus::Success);
    assert_eq!(status(&s, "c"), NodeStatus::Success);
    assert_eq!(s.node("b").unwrap().stale_inputs, vec!["a".to_string()]);
    // Staleness flows: c was built from b, which was built without a's new data.
    assert_eq!(s.node("c").unwrap().stale_inputs, vec!["a".to_string()]);
    assert!(s.node("d").unwrap().stale_inputs.is_empty());
    let recorded = state.stale_inputs_of_run(&s.run_id).unwrap();
    assert_eq!(recorded.get("c"), Some(&vec!["a".to_string()]));
    assert!(!recorded.contains_key("d"));
}

#[tokio::test]
async fn a_hanging_attempt_times_out_and_is_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let (project, engine) = chain(tmp.path()).await;
    let state = Arc::new(fresh_state());
    let exec = Scripted::new(Duration::ZERO, &[("d", &[Step::Hang, Step::Ok])]);
    let mut p = policy(1, 5, OnFailure::FailFast);
    p.timeout = Some(Duration::from_millis(150));
    let started = Instant::now();
    let s = run_with(&project, &engine, &state, &exec, p.clone()).await;
    assert_eq!(status(&s, "d"), NodeStatus::Success);
    assert_eq!(s.node("d").unwrap().attempts, 2);
    assert!(started.elapsed() >= Duration::from_millis(150));
    let log = state.node_log(&s.run_id, "d").unwrap();
    assert!(log[0].message.contains("timed out"), "{log:?}");

    // Without a retry left, the timeout is the node's failure.
    let exec = Scripted::new(Duration::ZERO, &[("d", &[Step::Hang])]);
    p.retries = 0;
    let s = run_with(&project, &engine, &state, &exec, p).await;
    assert_eq!(status(&s, "d"), NodeStatus::Failed);
    assert!(
        s.node("d")
            .unwrap()
            .error
            .as_deref()
            .unwrap()
            .contains("timed out")
    );
}

#[tokio::test]
async fn a_cancelled_run_stops_its_nodes_and_starts_no_more() {
    let tmp = tempfile::tempdir().unwrap();
    let (project, engine) = chain(tmp.path()).await;
    let state = Arc::new(fresh_state());
    let exec = Scripted::new(
        Duration::ZERO,
        &[("a", &[Step::Hang]), ("d", &[Step::Hang])],
    );
    let cancel = CancellationToken::new();
    let task = tokio::spawn({
        let (project, engine, state, exec, cancel) = (
            project.clone(),
            engine.clone(),
            state.clone(),
            exec.clone(),
            cancel.clone(),
        );
        async move {
            run(
                project,
                engine,
                state,
                RunOptions {
                    executor: Some(exec),
                    policies: Some(Arc::new(Policies::uniform(policy(
                        0,
                        5,
                        OnFailure::FailFast,
                    )))),
                    cancel: Some(cancel),
                    ..RunOptions::default()
                },
            )
            .await
        }
    });
    while exec.order().len() < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cancel.cancel();
    let s = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the run stops promptly")
        .unwrap()
        .unwrap();
    assert!(s.cancelled);
    assert_eq!(s.status(), "cancelled");
    for n in ["a", "b", "c", "d"] {
        assert_eq!(status(&s, n), NodeStatus::Cancelled, "{n}");
    }
    assert_eq!(
        exec.running.load(Ordering::SeqCst),
        0,
        "no attempt left running"
    );
    let run = state.run(&s.run_id).unwrap().unwrap();
    assert_eq!(run.status, "cancelled");
    // The leases went back: another run takes the nodes at once.
    assert_eq!(
        state
            .acquire_lease("a", "other", Duration::from_secs(5))
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn a_cancel_request_in_the_state_database_stops_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (project, engine) = chain(tmp.path()).await;
    let state = Arc::new(StateStore::open_sqlite(&tmp.path().join("state.db")).unwrap());
    let exec = Scripted::new(Duration::ZERO, &[("d", &[Step::Hang])]);
    let id = new_run_id();
    let task = tokio::spawn({
        let (project, engine, state, exec, id) = (
            project.clone(),
            engine.clone(),
            state.clone(),
            exec.clone(),
            id.clone(),
        );
        async move {
            run(
                project,
                engine,
                state,
                RunOptions {
                    executor: Some(exec),
                    run_id: Some(id),
                    policies: Some(Arc::new(Policies::uniform(policy(
                        0,
                        5,
                        OnFailure::FailFast,
                    )))),
                    ..RunOptions::default()
                },
            )
            .await
        }
    });
    // Another process (its own connection) asks for the cancel once the run hangs on `d`.
    let other = StateStore::open_sqlite(&tmp.path().join("state.db")).unwrap();
    while !exec.order().contains(&"d".to_string()) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(other.request_cancel(&id).unwrap());
    let s = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the run notices the request")
        .unwrap()
        .unwrap();
    assert!(s.cancelled);
    assert_eq!(status(&s, "d"), NodeStatus::Cancelled);
    // What finished before the cancel stays finished.
    assert_eq!(status(&s, "a"), NodeStatus::Success);
}

#[tokio::test]
async fn two_runs_never_run_the_same_node_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (project, engine) = chain(tmp.path()).await;
    let db = tmp.path().join("state.db");
    // Two state connections, as two `sluice serve` processes on one database would have, sharing
    // one executor that counts how many attempts of a node overlap.
    let exec = Scripted::new(Duration::from_millis(60), &[]);
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let state = Arc::new(StateStore::open_sqlite(&db).unwrap());
        let (project, engine, exec) = (project.clone(), engine.clone(), exec.clone());
        tasks.push(tokio::spawn(async move {
            run(
                project,
                engine,
                state,
                RunOptions {
                    selection: "d".into(),
                    executor: Some(exec),
                    ..RunOptions::default()
                },
            )
            .await
            .unwrap()
        }));
    }
    for t in tasks {
        assert_eq!(status(&t.await.unwrap(), "d"), NodeStatus::Success);
    }
    let at = exec.attempts_of("d");
    assert_eq!(at.len(), 2, "both runs ran d");
    assert_eq!(
        exec.max_running.load(Ordering::SeqCst),
        1,
        "never at the same time"
    );
    assert!(
        at[1] - at[0] >= Duration::from_millis(60),
        "the second waited for the lease"
    );
}

#[tokio::test]
async fn independent_nodes_run_in_parallel_up_to_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let (project, engine) = chain(tmp.path()).await;
    let state = Arc::new(fresh_state());
    let exec = Scripted::new(Duration::from_millis(50), &[]);
    let s = run_with(
        &project,
        &engine,
        &state,
        &exec,
        policy(0, 5, OnFailure::FailFast),
    )
    .await;
    assert_eq!(s.count(NodeStatus::Success), 4);
    assert_eq!(
        exec.max_running.load(Ordering::SeqCst),
        2,
        "a and d together"
    );
    let order = exec.order();
    let pos = |n: &str| order.iter().position(|x| x == n).unwrap();
    assert!(pos("a") < pos("b") && pos("b") < pos("c"), "{order:?}");
}
