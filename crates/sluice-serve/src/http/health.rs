//! Liveness and readiness, for people and for container orchestrators.
//!
//! - `GET /api/health` (liveness) answers as long as the process serves HTTP at all — also while it
//!   sheds load ([`crate::server`] answers it past `max_connections`) — so an orchestrator restarts
//!   only a process that is really stuck.
//! - `GET /api/ready` (readiness) answers 200 only when what a request needs answers: the state
//!   database (one read) and the lake (one listing of its root through its object store: the folder
//!   of a local lake, the bucket and credentials of an S3/GCS/Azure one). Otherwise 503 with the check that
//!   failed, so a load balancer sends traffic elsewhere without restarting the process (a restart
//!   would not bring a database back).
//!
//! Both are also served alone by [`probe_router`], for processes that serve no API (`sluice serve
//! --role scheduler`).

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use crate::app::AppState;

/// How long one readiness check may take before it counts as failed: a probe that hangs on a
/// database that does not answer would otherwise hang the orchestrator's probe too.
pub const READY_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// `GET /api/health`: the process is alive; its version.
pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
}

/// `GET /api/ready`: 200 `{"status": "ready", "checks": {...}}` when the state database and the
/// lake answer, 503 `{"status": "not_ready", ...}` naming the failed check otherwise.
pub async fn ready(State(s): State<AppState>) -> (StatusCode, Json<Value>) {
    let state = {
        let store = s.state.clone();
        check(tokio::task::spawn_blocking(move || {
            store.runs(1).map(|_| ()).map_err(|e| e.to_string())
        }))
        .await
    };
    // The lake this process reads (the engine's), not only the one the project names.
    let lake = s.engine.lake().clone();
    let lake = check(tokio::spawn(async move { lake.probe().await })).await;
    let ok = state.is_ok() && lake.is_ok();
    let body = json!({
        "status": if ok { "ready" } else { "not_ready" },
        "checks": {"state": outcome(&state), "lake": outcome(&lake)},
    });
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body))
}

/// A router with only `/api/health` and `/api/ready`, for a process that serves no API.
pub fn probe_router(state: AppState) -> Router {
    Router::new()
        .route("/api/health", get(health))
        .route("/api/ready", get(ready))
        .with_state(state)
}

/// Runs one check (a task of its own) with [`READY_CHECK_TIMEOUT`].
async fn check(task: tokio::task::JoinHandle<Result<(), String>>) -> Result<(), String> {
    match tokio::time::timeout(READY_CHECK_TIMEOUT, task).await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => Err(format!("the check failed: {e}")),
        Err(_) => Err(format!(
            "no answer within {} s",
            READY_CHECK_TIMEOUT.as_secs()
        )),
    }
}

fn outcome(r: &Result<(), String>) -> Value {
    match r {
        Ok(()) => json!({"ok": true}),
        Err(e) => json!({"ok": false, "error": e}),
    }
}
