//! The run loop: execute the selected nodes in dependency order, independent nodes in parallel.
//!
//! A node starts when every selected upstream node has succeeded. When one fails, what happens to its
//! downstream follows the failed node's `on_failure` policy ([`crate::policy`]): `fail_fast` skips it,
//! `fail_open` runs it on the failed node's last good data and marks it as built from stale input.
//! Everything that does not depend on the failure still runs. Each node holds a lease in the state
//! database while it runs ([`crate::control`]), so two runs (or two servers) never execute the same
//! node at once, and a run stops promptly when it is cancelled, from this process or another.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use sluice_quality::CheckStatus;
use sluice_transform::{CompiledProject, Engine};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::attempt::{NodeExecutor, ProjectExecutor, run_node};
use crate::policy::{NodePolicy, OnFailure, Policies, PolicyErrors};
use crate::state::{CheckRecord, NodeRecord, RunRecord, StateStore};
pub use crate::summary::{NodeResult, NodeStatus, RunSummary};

/// Errors that stop a run before it starts.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The selection or graph is invalid.
    #[error(transparent)]
    Graph(#[from] sluice_core::GraphError),
    /// The state database failed.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    /// The engine could not open the lake.
    #[error(transparent)]
    Transform(#[from] sluice_transform::TransformError),
    /// A retry, timeout or failure setting is invalid.
    #[error(transparent)]
    Policy(#[from] PolicyErrors),
}

/// What a run does.
#[derive(Clone)]
pub struct RunOptions {
    /// Selection in dbt's grammar (`sluice_core::selector`; empty = all), recorded in the run history.
    pub selection: String,
    /// The selected nodes, already resolved by the caller (the CLI resolves `--exclude` and
    /// `--state` itself); when set, `selection` is only recorded.
    pub nodes: Option<BTreeSet<String>>,
    /// Nodes running at once.
    pub threads: usize,
    /// Rebuild incremental models from scratch.
    pub full_refresh: bool,
    /// Only run checks against published data (`sluice test`).
    pub checks_only: bool,
    /// Command name recorded in history.
    pub command: String,
    /// Retries after transient failures (per node; models may override).
    pub retries: u32,
    /// First retry delay.
    pub retry_backoff: Duration,
    /// Progress callbacks.
    pub observer: Option<Arc<dyn RunObserver>>,
    /// Record the run under this id (default: a new one from [`new_run_id`]).
    pub run_id: Option<String>,
    /// Selected nodes that run only if one of their selected upstream nodes wrote rows in this run
    /// (the scheduler's on-upstream-change models). Otherwise they are left out: not executed, not
    /// recorded, and neither are those of their downstream in this set.
    pub only_if_upstream_changed: BTreeSet<String>,
    /// Cancels the run from this process (a cancel request in the state database works too).
    pub cancel: Option<CancellationToken>,
    /// Does the work of each node (default: [`ProjectExecutor`]); benchmarks plug in a no-op.
    pub executor: Option<Arc<dyn NodeExecutor>>,
    /// Per-node policies (default: resolved from the project, with `retries` and `retry_backoff` as
    /// the base).
    pub policies: Option<Arc<Policies>>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            selection: String::new(),
            nodes: None,
            threads: 4,
            full_refresh: false,
            checks_only: false,
            command: "run".into(),
            retries: 2,
            retry_backoff: Duration::from_millis(200),
            observer: None,
            run_id: None,
            only_if_upstream_changed: BTreeSet::new(),
            cancel: None,
            executor: None,
            policies: None,
        }
    }
}

/// Receives progress events (the CLI draws progress bars from them).
pub trait RunObserver: Send + Sync {
    /// A run of `total` nodes starts.
    fn run_started(&self, _run_id: &str, _total: usize) {}
    /// A node starts.
    fn node_started(&self, _node: &str) {}
    /// A node finished.
    fn node_finished(&self, _result: &NodeResult) {}
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A new run id: sortable by time, unique.
pub fn new_run_id() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{}-{}", Utc::now().format("%Y%m%dT%H%M%S"), &id[..8])
}

/// Runs the selected nodes of a compiled project.
pub async fn run(
    project: Arc<CompiledProject>,
    engine: Engine,
    state: Arc<StateStore>,
    opts: RunOptions,
) -> Result<RunSummary, RunError> {
    let selected = match &opts.nodes {
        Some(nodes) => nodes.clone(),
        None => project.graph.select(&opts.selection, project.as_ref())?,
    };
    let order: Vec<String> = project
        .graph
        .topological_order()?
        .into_iter()
        .filter(|n| selected.contains(n))
        .collect();
    let policies = match &opts.policies {
        Some(p) => p.clone(),
        None => {
            let base = NodePolicy {
                retries: opts.retries,
                retry_backoff: opts.retry_backoff,
                ..NodePolicy::default()
            };
            Arc::new(Policies::from_project(&project, base)?)
        }
    };
    let run_id = opts.run_id.clone().unwrap_or_else(new_run_id);
    let started = Instant::now();
    state.start_run(&run_id, &opts.command, &opts.selection, &now())?;
    if let Some(o) = &opts.observer {
        o.run_started(&run_id, order.len());
    }
    let executor: Arc<dyn NodeExecutor> = match &opts.executor {
        Some(e) => e.clone(),
        None => Arc::new(ProjectExecutor::new(
            project.clone(),
            engine.clone(),
            &run_id,
            &opts,
        )),
    };
    let plan: Vec<(String, String)> = order
        .iter()
        .map(|n| (n.clone(), executor.kind(n).to_string()))
        .collect();
    state.set_run_plan(&run_id, &plan)?;
    let cancel = opts.cancel.clone().unwrap_or_default();
    let watcher = watch_run(state.clone(), run_id.clone(), cancel.clone());
    let threads = opts.threads.max(1);
    let mut done: BTreeMap<String, NodeStatus> = BTreeMap::new();
    // Per finished node, the failed fail-open nodes its data (transitively) missed.
    let mut stale: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut pending: Vec<String> = order.clone();
    let mut running: HashMap<tokio::task::Id, (String, Instant)> = HashMap::new();
    // Conditional nodes left out because their inputs wrote nothing, and nodes that wrote rows.
    let mut unchanged: BTreeSet<String> = BTreeSet::new();
    let mut wrote_rows: BTreeSet<String> = BTreeSet::new();
    let mut tasks: JoinSet<NodeResult> = JoinSet::new();
    let mut results = Vec::new();
    let mut cancelled = false;
    // Each node's selected upstream, looked up once: the loop below revisits pending nodes often.
    let upstream: HashMap<&str, Vec<&str>> = order
        .iter()
        .map(|n| {
            let ups = project
                .graph
                .parents(n)
                .filter(|p| selected.contains(*p))
                .collect();
            (n.as_str(), ups)
        })
        .collect();

    loop {
        // Settle nodes whose upstream failed, and start nodes whose upstream is done.
        let mut i = 0;
        while !cancelled && i < pending.len() {
            let name = pending[i].clone();
            let ups: &[&str] = upstream.get(name.as_str()).map_or(&[], Vec::as_slice);
            let blocked = ups.iter().find(|u| match done.get(**u) {
                Some(NodeStatus::Skipped | NodeStatus::Cancelled) => true,
                Some(NodeStatus::Failed) => policies.get(u).on_failure == OnFailure::FailFast,
                _ => false,
            });
            if let Some(bad) = blocked {
                pending.remove(i);
                let r = NodeResult::not_run(
                    &name,
                    executor.kind(&name),
                    NodeStatus::Skipped,
                    format!("skipped: upstream `{bad}` did not succeed"),
                );
                finish_node(&state, &run_id, &r, opts.observer.as_deref())?;
                done.insert(name, NodeStatus::Skipped);
                results.push(r);
                continue;
            }
            let ready = ups
                .iter()
                .all(|u| done.contains_key(*u) || unchanged.contains(*u));
            if ready
                && opts.only_if_upstream_changed.contains(&name)
                && !ups.iter().any(|u| wrote_rows.contains(*u))
            {
                tracing::debug!(node = %name, "left out: no upstream node wrote rows");
                pending.remove(i);
                unchanged.insert(name);
                continue;
            }
            if running.len() < threads && ready {
                pending.remove(i);
                let mut inputs: BTreeSet<String> = BTreeSet::new();
                for u in ups {
                    if done.get(*u) == Some(&NodeStatus::Failed) {
                        inputs.insert(u.to_string());
                    }
                    inputs.extend(stale.get(*u).into_iter().flatten().cloned());
                }
                if let Some(o) = &opts.observer {
                    o.node_started(&name);
                }
                let work = run_node(
                    executor.clone(),
                    state.clone(),
                    run_id.clone(),
                    name.clone(),
                    policies.get(&name).clone(),
                    cancel.clone(),
                );
                let inputs: Vec<String> = inputs.into_iter().collect();
                let handle = tasks.spawn(async move {
                    let mut r = work.await;
                    r.stale_inputs = inputs;
                    r
                });
                running.insert(handle.id(), (name, Instant::now()));
                continue;
            }
            i += 1;
        }
        if tasks.is_empty() {
            break;
        }
        let joined = tokio::select! {
            joined = tasks.join_next_with_id() => joined,
            () = cancel.cancelled(), if !cancelled => {
                cancelled = true;
                tracing::info!(run_id = %run_id, "run cancelled; stopping its nodes");
                tasks.abort_all();
                continue;
            }
        };
        let Some(joined) = joined else { break };
        let r = match joined {
            Ok((id, r)) => {
                running.remove(&id);
                r
            }
            Err(e) => {
                let Some((name, at)) = running.remove(&e.id()) else {
                    continue;
                };
                let (status, why) = if e.is_cancelled() {
                    (NodeStatus::Cancelled, "cancelled while running".to_string())
                } else {
                    // A panicking node is a bug; record it as this node's failure.
                    tracing::error!(node = %name, error = %e, "node task panicked");
                    (NodeStatus::Failed, format!("internal error: {e}"))
                };
                let mut r = NodeResult::not_run(&name, executor.kind(&name), status, why);
                r.duration = at.elapsed();
                r
            }
        };
        if r.status == NodeStatus::Success && r.output.rows_out.unwrap_or(0) > 0 {
            wrote_rows.insert(r.node.clone());
        }
        finish_node(&state, &run_id, &r, opts.observer.as_deref())?;
        done.insert(r.node.clone(), r.status);
        if !r.stale_inputs.is_empty() {
            stale.insert(r.node.clone(), r.stale_inputs.clone());
        }
        results.push(r);
    }
    watcher.abort();
    if cancelled {
        for name in pending.drain(..) {
            let r = NodeResult::not_run(
                &name,
                executor.kind(&name),
                NodeStatus::Cancelled,
                "cancelled before it started".into(),
            );
            finish_node(&state, &run_id, &r, opts.observer.as_deref())?;
            results.push(r);
        }
    }

    let summary = RunSummary {
        run_id: run_id.clone(),
        nodes: results,
        duration: started.elapsed(),
        cancelled,
    };
    state.finish_run(&RunRecord {
        run_id,
        command: opts.command.clone(),
        selection: opts.selection.clone(),
        status: summary.status().to_string(),
        started_at: String::new(),
        finished_at: Some(now()),
        nodes_ok: summary.count(NodeStatus::Success) as i64,
        nodes_failed: summary.count(NodeStatus::Failed) as i64,
        nodes_skipped: (summary.count(NodeStatus::Skipped) + summary.count(NodeStatus::Cancelled))
            as i64,
        checks_passed: summary.checks_with(CheckStatus::Pass) as i64,
        checks_warned: summary.checks_with(CheckStatus::Warn) as i64,
        checks_failed: summary.checks_with(CheckStatus::Fail) as i64,
    })?;
    Ok(summary)
}

/// Polls the state database for a cancel request (from `sluice runs cancel` or the API of another
/// process) and fires `cancel` when one arrives; touches the run's heartbeat meanwhile, so other
/// machines can tell it is alive ([`crate::abandon`]).
fn watch_run(
    state: Arc<StateStore>,
    run_id: String,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last_beat = Instant::now();
        loop {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
                () = cancel.cancelled() => return,
            }
            if last_beat.elapsed() >= crate::abandon::HEARTBEAT_INTERVAL {
                last_beat = Instant::now();
                match state.heartbeat_run(&run_id) {
                    // Taken for dead (no heartbeat for long): a retry may run its nodes now.
                    Ok(false) => {
                        tracing::error!(run_id = %run_id, "run was marked abandoned by another process; stopping it");
                        cancel.cancel();
                        return;
                    }
                    Ok(true) => {}
                    Err(e) => {
                        tracing::warn!(run_id = %run_id, error = %e, "cannot touch the run's heartbeat")
                    }
                }
            }
            match state.cancel_requested(&run_id) {
                Ok(true) => {
                    cancel.cancel();
                    return;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(run_id = %run_id, error = %e, "cannot read cancel requests")
                }
            }
        }
    })
}

fn finish_node(
    state: &StateStore,
    run_id: &str,
    r: &NodeResult,
    observer: Option<&dyn RunObserver>,
) -> Result<(), RunError> {
    let at = now();
    let started = Utc::now() - chrono::Duration::from_std(r.duration).unwrap_or_default();
    state.record_node(&NodeRecord {
        run_id: run_id.to_string(),
        node: r.node.clone(),
        kind: r.kind.to_string(),
        status: r.status.as_str().to_string(),
        attempts: i64::from(r.attempts),
        rows_in: r.output.rows_in.map(|v| v as i64),
        rows_out: r.output.rows_out.map(|v| v as i64),
        rows_quarantined: r.output.rows_quarantined.map(|v| v as i64),
        started_at: started.to_rfc3339_opts(SecondsFormat::Micros, true),
        finished_at: at.clone(),
        duration_ms: r.duration.as_millis() as i64,
        error: r.error.clone(),
        version: r.output.version,
    })?;
    state.append_node_log(run_id, &r.node, &r.log)?;
    if !r.stale_inputs.is_empty() {
        state.set_stale_inputs(run_id, &r.node, &r.stale_inputs)?;
    }
    if let Some(w) = &r.output.watermark {
        state.set_watermark(&r.node, w, run_id, &at)?;
    }
    // Time partitions built by this node (crate::partition).
    crate::partition::record_output(state, &r.node, &r.output)?;
    for c in &r.output.checks {
        state.record_check(&CheckRecord {
            run_id: run_id.to_string(),
            check_name: c.name.clone(),
            model: c.model.clone(),
            kind: c.kind.clone(),
            column_name: c.column.clone(),
            severity: c.severity.as_str().to_string(),
            status: c.status.as_str().to_string(),
            failing_rows: c.failing_rows as i64,
            sample: serde_json::Value::Array(c.sample.clone()),
            message: Some(c.message.clone()),
            checked_at: at.clone(),
        })?;
    }
    if let Some(o) = observer {
        o.node_finished(r);
    }
    Ok(())
}

#[cfg(test)]
#[path = "runner_tests.rs"]
mod tests;
