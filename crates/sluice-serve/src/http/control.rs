//! Run control over HTTP: `POST /api/runs` starts a run of a selection in the background,
//! `POST /api/runs/{id}/cancel` stops one (in this or another process), `POST /api/runs/{id}/retry`
//! re-runs what did not succeed in one, and `GET /api/schedules` lists what starts by itself and when.
//!
//! [`start_run`] is the reusable part (any endpoint that starts a run goes through it): it checks the
//! selection, spawns [`sluice_orchestrate::run`] on the server's compiled project, engine and state
//! database, and returns the run id once the run is recorded, so that `GET /api/runs/{id}` finds it
//! from the first poll on.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock, Mutex};

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use sluice_orchestrate::{RunObserver, RunOptions};
use tokio::sync::oneshot;

use crate::app::AppState;
use crate::error::ApiError;

/// Body of `POST /api/runs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// Selection as `sluice run --select`: `name`, `name+`, `+name`, `tag:x`, comma-separated;
    /// empty or absent = everything.
    #[serde(default)]
    pub select: String,
    /// Leave out what this selects (same grammar), as `sluice run --exclude`.
    #[serde(default)]
    pub exclude: String,
    /// Rebuild incremental models from scratch.
    #[serde(default)]
    pub full_refresh: bool,
}

/// `POST /api/runs`: 202 `{"run_id": "..."}`; the run goes on in the background.
pub async fn trigger_run(
    State(s): State<AppState>,
    body: Result<Json<RunRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let Json(req) = body.map_err(|e| {
        ApiError::BadBody(format!(
            "expected JSON {{\"select\": \"name+\"}}: {}",
            e.body_text()
        ))
    })?;
    let mut opts = run_options(&s, &req.select, "api")?;
    opts.full_refresh = req.full_refresh;
    if !req.exclude.trim().is_empty() {
        let (nodes, display) = resolve_selection(&s, &req.select, &req.exclude)?;
        opts.nodes = Some(nodes);
        opts.selection = display;
    }
    let run_id = start_run(&s, opts).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"run_id": run_id, "url": format!("/api/runs/{run_id}")})),
    ))
}

/// The nodes `select` minus `exclude` names (dbt's grammar), and the selection as recorded in the run
/// history (`a b --exclude c`). A selection that names nothing known is a 400.
pub fn resolve_selection(
    s: &AppState,
    select: &str,
    exclude: &str,
) -> Result<(std::collections::BTreeSet<String>, String), ApiError> {
    let nodes =
        sluice_core::selector::select(&s.compiled.graph, s.compiled.as_ref(), select, exclude)
            .map_err(|e| {
                let text = format!("{select} --exclude {exclude}");
                ApiError::bad_param("select", text.trim(), e.to_string())
            })?;
    let display = if exclude.trim().is_empty() {
        select.trim().to_string()
    } else {
        format!("{} --exclude {}", select.trim(), exclude.trim())
            .trim()
            .to_string()
    };
    Ok((nodes, display))
}

/// Run options for `selection` from the project's defaults (`defaults.threads`, `retries`,
/// `retry_backoff`), as `sluice run` fills them.
pub fn run_options(s: &AppState, selection: &str, command: &str) -> Result<RunOptions, ApiError> {
    let d = &s.compiled.project.config.defaults;
    let retry_backoff = sluice_core::duration::parse_duration(&d.retry_backoff)
        .map_err(|e| ApiError::Engine(format!("sluice.yml: defaults.retry_backoff: {e}")))?;
    Ok(RunOptions {
        selection: selection.trim().to_string(),
        threads: d.threads,
        retries: d.retries,
        retry_backoff,
        command: command.to_string(),
        ..RunOptions::default()
    })
}

/// `POST /api/runs/{id}/cancel`: 202 when the run was running (it stops within a second: running
/// nodes are stopped, no new ones start), 404 for an unknown run, 409 for a finished one.
pub async fn cancel_run(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    use sluice_orchestrate::CancelOutcome;
    match s.state.cancel_run(&id)? {
        CancelOutcome::Unknown => Err(ApiError::UnknownRun { id }),
        CancelOutcome::Dequeued => Ok((
            StatusCode::OK,
            Json(json!({"run_id": id, "cancelled": true})),
        )),
        CancelOutcome::Requested => Ok((
            StatusCode::ACCEPTED,
            Json(json!({"run_id": id, "cancel_requested": true})),
        )),
        // Nothing runs it any more: say so, with why, and that it can be retried.
        CancelOutcome::Abandoned { reason } => Err(ApiError::Conflict(format!(
            "run `{id}` is abandoned ({reason}); POST /api/runs/{id}/retry re-runs what it did \
             not finish"
        ))),
        CancelOutcome::Finished { status } => Err(ApiError::Conflict(format!(
            "run `{id}` is not running (it is {status})"
        ))),
    }
}

/// `POST /api/runs/{id}/retry`: starts a run of the nodes that did not succeed in run `id` (failed,
/// skipped, cancelled); 202 `{"run_id", "retry_of", "nodes"}`, 404 unknown, 409 still running or
/// nothing to retry.
pub async fn retry_run(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    use sluice_orchestrate::RetryError;
    let nodes = sluice_orchestrate::retry_selection(&s.state, &id).map_err(|e| match e {
        RetryError::UnknownRun(id) => ApiError::UnknownRun { id },
        RetryError::State(e) => ApiError::State(e),
        other => ApiError::Conflict(other.to_string()),
    })?;
    let opts = run_options(&s, &nodes.join(" "), "retry")?;
    let run_id = start_run(&s, opts).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "run_id": run_id,
            "url": format!("/api/runs/{run_id}"),
            "retry_of": id,
            "nodes": nodes,
        })),
    ))
}

/// `GET /api/schedules`: every asset that starts by itself (schedule, upstream change, file arrival),
/// its trigger, its next tick and the ticks missed since the last one handled.
pub async fn schedules(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    use sluice_orchestrate::schedule::{SchedulePlan, SchedulerOptions, upcoming};
    let plan = SchedulePlan::from_project(&s.compiled)
        .map_err(|e| ApiError::Engine(format!("the project's schedules: {e}")))?;
    let now = chrono::Utc::now();
    let list = upcoming(
        &plan,
        &s.state,
        now,
        SchedulerOptions::default().max_catchup,
    )
    .map_err(|e| ApiError::Engine(e.to_string()))?;
    let items: Vec<serde_json::Value> = list
        .into_iter()
        .map(|i| {
            json!({
                "asset": i.node,
                "trigger": i.trigger,
                "next_tick": i.next_tick.map(|t| t.to_rfc3339()),
                "missed": i.missed,
            })
        })
        .collect();
    Ok(Json(json!({"now": now.to_rfc3339(), "schedules": items})))
}

/// Starts a run in the background and returns its id once the state database has recorded it.
///
/// A selection that names nothing known is a 400 before anything starts. The run id is generated here
/// unless `opts.run_id` is set. An observer already in `opts` still receives every event.
pub async fn start_run(s: &AppState, mut opts: RunOptions) -> Result<String, ApiError> {
    let compiled = s.compiled.clone();
    if opts.nodes.is_none() {
        sluice_core::selector::select_nodes(&compiled.graph, &opts.selection, compiled.as_ref())
            .map_err(|e| ApiError::bad_param("select", &opts.selection, e.to_string()))?;
    }
    if s.queue_runs {
        let run_id = s.state.enqueue_run(&opts)?;
        tracing::info!(run_id = %run_id, selection = %opts.selection, "queued a run for a scheduler");
        return Ok(run_id);
    }
    let run_id = opts
        .run_id
        .get_or_insert_with(sluice_orchestrate::new_run_id)
        .clone();
    let (tx, rx) = oneshot::channel();
    opts.observer = Some(Arc::new(Started {
        run_id: run_id.clone(),
        tx: Mutex::new(Some(tx)),
        inner: opts.observer.take(),
    }));
    tracing::info!(run_id = %run_id, selection = %opts.selection, "starting a run from the API");
    let task = tokio::spawn(sluice_orchestrate::run(
        compiled,
        s.engine.clone(),
        s.state.clone(),
        opts,
    ));
    // The observer's sender fires right after the run is recorded; if it is dropped unfired, the run
    // ended before it started and the task holds the reason.
    match rx.await {
        Ok(()) => {
            let id = run_id.clone();
            tokio::spawn(async move {
                let outcome = task.await;
                forget_run(&id);
                match outcome {
                    Ok(Ok(summary)) => {
                        tracing::info!(run_id = %id, status = summary.status(), "run finished")
                    }
                    Ok(Err(e)) => tracing::error!(run_id = %id, error = %e, "run failed"),
                    Err(e) => tracing::error!(run_id = %id, error = %e, "run task panicked"),
                }
            });
            Ok(run_id)
        }
        Err(_) => match task.await.inspect(|_| forget_run(&run_id)) {
            Ok(Err(e)) => Err(ApiError::Engine(format!("the run could not start: {e}"))),
            Ok(Ok(_)) => Ok(run_id),
            Err(e) => Err(ApiError::Engine(format!("the run task failed: {e}"))),
        },
    }
}

/// Nodes running now in runs started through [`start_run`]: run id → node → start time. The state
/// database records a node when it finishes; this is what lets a run's page show the ones in flight.
static RUNNING: LazyLock<Mutex<BTreeMap<String, BTreeMap<String, String>>>> =
    LazyLock::new(Mutex::default);

/// The nodes of run `run_id` that have started and not finished, as `{"node", "started_at"}`
/// (empty for runs this server did not start, or that are over).
pub fn running_nodes(run_id: &str) -> Vec<serde_json::Value> {
    RUNNING
        .lock()
        .ok()
        .and_then(|r| {
            r.get(run_id).map(|nodes| {
                nodes
                    .iter()
                    .map(|(n, at)| json!({"node": n, "started_at": at}))
                    .collect()
            })
        })
        .unwrap_or_default()
}

fn forget_run(run_id: &str) {
    if let Ok(mut r) = RUNNING.lock() {
        r.remove(run_id);
    }
}

/// Signals when the run has been recorded, tracks the nodes in flight, and passes every event on.
struct Started {
    run_id: String,
    tx: Mutex<Option<oneshot::Sender<()>>>,
    inner: Option<Arc<dyn RunObserver>>,
}

impl RunObserver for Started {
    fn run_started(&self, run_id: &str, total: usize) {
        if let Some(tx) = self.tx.lock().ok().and_then(|mut t| t.take()) {
            let _ = tx.send(());
        }
        if let Some(o) = &self.inner {
            o.run_started(run_id, total);
        }
    }

    fn node_started(&self, node: &str) {
        if let Ok(mut r) = RUNNING.lock() {
            let at = chrono_now();
            r.entry(self.run_id.clone())
                .or_default()
                .insert(node.to_string(), at);
        }
        if let Some(o) = &self.inner {
            o.node_started(node);
        }
    }

    fn node_finished(&self, result: &sluice_orchestrate::NodeResult) {
        if let Ok(mut r) = RUNNING.lock()
            && let Some(nodes) = r.get_mut(&self.run_id)
        {
            nodes.remove(&result.node);
        }
        if let Some(o) = &self.inner {
            o.node_finished(result);
        }
    }
}

/// Now as RFC 3339 with microseconds, as the state database writes times.
fn chrono_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[cfg(test)]
#[path = "control_tests.rs"]
mod tests;
