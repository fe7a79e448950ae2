//! Tests of the monitor on small projects in temporary folders, with a [`ManualClock`] (no test
//! waits for real hours) and a local webhook receiver that counts what it gets.

mod channels;
mod failure_alerts;
mod freshness_alerts;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde_json::Value;
use sluice_orchestrate::schedule::ManualClock;
use sluice_orchestrate::{NodeRecord, NodeResult, NodeStatus, RunSummary, StateStore};
use sluice_transform::CompiledProject;

use crate::{DeliveryOptions, Monitor};

/// A webhook endpoint on 127.0.0.1 that records every JSON body; it can answer 503 a few times.
#[derive(Clone, Default)]
pub struct Receiver {
    bodies: Arc<Mutex<Vec<Value>>>,
    requests: Arc<AtomicUsize>,
    fail_next: Arc<AtomicUsize>,
}

impl Receiver {
    pub async fn start() -> (Receiver, SocketAddr) {
        let r = Receiver::default();
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (r, addr)
    }

    /// Bodies accepted (200) so far.
    pub fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }

    /// Every request, answered 200 or not.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Answer the next `n` requests with 503.
    pub fn fail_next(&self, n: usize) {
        self.fail_next.store(n, Ordering::SeqCst);
    }
}

async fn receive(State(r): State<Receiver>, axum::Json(body): axum::Json<Value>) -> StatusCode {
    r.requests.fetch_add(1, Ordering::SeqCst);
    if r.fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    r.bodies.lock().unwrap().push(body);
    StatusCode::OK
}

pub fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// A project with two gold models owned by `finance` (`sales` has a 2h/6h SLA, `broken` none),
/// whose alerts go to `owners_yaml`.
pub fn project(dir: &Path, owners_yaml: &str) -> Arc<CompiledProject> {
    // The state backend under test: SQLite in the project, or PostgreSQL (SLUICE_TEST_STATE_URL).
    let state = sluice_state::testing::state_line_for(&dir.display().to_string()).unwrap();
    write(
        dir,
        "sluice.yml",
        &format!("name: shop\n{state}{owners_yaml}"),
    );
    write(dir, "models/gold/sales.sql", "select 1 as id");
    write(dir, "models/gold/broken.sql", "select 1 as id");
    write(
        dir,
        "models/gold/schema.yml",
        "version: 2\nmodels:\n  - name: sales\n    owner: finance\n    freshness: {warn_after: 2h, error_after: 6h}\n  - name: broken\n    owner: finance\n",
    );
    compile(dir)
}

pub fn compile(dir: &Path) -> Arc<CompiledProject> {
    let p = sluice_core::Project::load(dir).unwrap();
    Arc::new(sluice_transform::compile(Arc::new(p)).unwrap())
}

pub fn webhook_owners(addr: SocketAddr) -> String {
    format!("owners:\n  finance: {{webhook: \"http://{addr}/hook\"}}\n")
}

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 6, 0, 0).unwrap()
}

pub fn hours(h: f64) -> Duration {
    Duration::from_secs_f64(h * 3600.0)
}

pub fn fast() -> DeliveryOptions {
    DeliveryOptions {
        timeout: Duration::from_secs(5),
        attempts: 3,
        backoff: Duration::from_millis(10),
        command_timeout: Duration::from_secs(5),
    }
}

pub fn monitor(compiled: &CompiledProject, clock: &ManualClock) -> Monitor {
    Monitor::with_options(compiled, Arc::new(clock.clone()), fast()).unwrap()
}

fn node_record(run_id: &str, node: &str, status: &str, at: &str) -> NodeRecord {
    NodeRecord {
        run_id: run_id.into(),
        node: node.into(),
        kind: "model".into(),
        status: status.into(),
        attempts: 1,
        rows_in: None,
        rows_out: None,
        rows_quarantined: None,
        started_at: at.into(),
        finished_at: at.into(),
        duration_ms: 5,
        error: None,
        version: None,
    }
}

/// Records a successful run of `node` that wrote `rows` rows, finished at `at`, in the state database.
pub fn record_success(compiled: &CompiledProject, node: &str, rows: i64, at: DateTime<Utc>) {
    let state = StateStore::open(&compiled.project.state_location().unwrap()).unwrap();
    let at = at.to_rfc3339_opts(SecondsFormat::Micros, true);
    state
        .record_node(&NodeRecord {
            rows_out: Some(rows),
            ..node_record(&format!("run-{node}-{at}"), node, "success", &at)
        })
        .unwrap();
}

/// Records a run made elsewhere (another process, `POST /api/runs`): `command` in which `node`
/// ended with `status`, finished at `at`.
pub fn record_result(
    compiled: &CompiledProject,
    run_id: &str,
    command: &str,
    node: &str,
    status: &str,
    at: DateTime<Utc>,
) {
    let state = StateStore::open(&compiled.project.state_location().unwrap()).unwrap();
    let at = at.to_rfc3339_opts(SecondsFormat::Micros, true);
    state.start_run(run_id, command, "", &at).unwrap();
    state
        .record_node(&NodeRecord {
            attempts: 3,
            error: Some("disk full".into()),
            ..node_record(run_id, node, status, &at)
        })
        .unwrap();
}

/// A run summary in which every `(node, status)` pair finished that way.
pub fn summary(run_id: &str, nodes: &[(&str, NodeStatus)]) -> RunSummary {
    RunSummary {
        run_id: run_id.into(),
        nodes: nodes
            .iter()
            .map(|(n, s)| {
                let why = if *s == NodeStatus::Failed {
                    format!("SQL error: no column `amount` in {n}")
                } else {
                    String::new()
                };
                NodeResult::not_run(n, sluice_core::NodeKind::Model, *s, why)
            })
            .collect(),
        duration: Duration::from_millis(10),
        cancelled: false,
    }
}
