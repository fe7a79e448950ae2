//! Liveness and readiness, for people and for container orchestrators.
//!
//! - `GET /api/health` (liveness) answers as long as the process serves HTTP at all — also while it
//!   sheds load ([`crate::server`] answers it past `max_connections`) — so an orchestrator restarts
//!   only a process that is really stuck.
//! - `GET /api/ready` (readiness) answers 200 only when what a request needs answers: the state
//!   database (one read) and the lake (its root folder is there). Otherwise 503 with the check that
//!   failed, so a load balancer sends traffic elsewhere without restarting the process (a restart
//!   would not bring a database back).
//!
//! Both are also served alone by [`probe_router`], for processes that serve no API (`sluice serve
//! --role scheduler`).

use std::path::Path;
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
    let lake_root = s.engine.lake().root_path().to_path_buf();
    let lake = check(tokio::task::spawn_blocking(move || {
        lake_reachable(&lake_root)
    }))
    .await;
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

/// Runs one blocking check with [`READY_CHECK_TIMEOUT`].
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

/// The lake answers when its root is a folder this process can list.
fn lake_reachable(path: &Path) -> Result<(), String> {
    std::fs::read_dir(path)
        .map(|_| ())
        .map_err(|e| format!("cannot list the lake folder {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_lake_folder_is_named() {
        let dir = tempfile::tempdir().unwrap();
        assert!(lake_reachable(dir.path()).is_ok());
        let err = lake_reachable(&dir.path().join("nope")).unwrap_err();
        assert!(err.contains("nope"), "{err}");
    }
}
