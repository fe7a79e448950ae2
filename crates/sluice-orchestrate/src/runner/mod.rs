//! The run loop: execute the selected nodes in dependency order, independent nodes in parallel.
//!
//! A node starts when every selected upstream node has succeeded. When one fails, what happens to its
//! downstream follows the failed node's `on_failure` policy ([`crate::policy`]): `fail_fast` skips it,
//! `fail_open` runs it on the failed node's last good data and marks it as built from stale input.
//! Everything that does not depend on the failure still runs. Each node holds a lease in the state
//! database while it runs ([`crate::control`]), so two runs (or two servers) never execute the same
//! node at once, and a run stops promptly when it is cancelled, from this process or another.

mod dispatch;
mod record;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_transform::{CompiledProject, Engine};
use tokio_util::sync::CancellationToken;

use crate::execute::{ExecuteOptions, ProjectExecutor};
use crate::node::NodeExecutor;
use crate::policy::{NodePolicy, Policies, PolicyErrors};
use crate::state::StateStore;
pub use crate::summary::{NodeResult, NodeStatus, RunSummary, new_run_id};
use dispatch::{Dispatch, RunCx};
use record::{finish_run, now, watch_run};

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

/// Runs the selected nodes of a compiled project.
pub async fn run(
    project: Arc<CompiledProject>,
    engine: Engine,
    state: Arc<StateStore>,
    opts: RunOptions,
) -> Result<RunSummary, RunError> {
    let (selected, order) = selected_order(&project, &opts)?;
    let policies = policies(&project, &opts)?;
    // Other processes (schedulers, `sluice run`) may have committed since this engine loaded its
    // tables: read their latest versions, as this run's own writes will be.
    if let Err(e) = engine.sync_lake(Some(&project)).await {
        tracing::warn!(error = %e, "cannot read the lake's latest commits; using those known");
    }
    let run_id = opts.run_id.clone().unwrap_or_else(new_run_id);
    let started = Instant::now();
    state.start_run(&run_id, &opts.command, &opts.selection, &now())?;
    if let Some(o) = &opts.observer {
        o.run_started(&run_id, order.len());
    }
    let executor = executor(&project, &engine, &run_id, &opts);
    let plan: Vec<(String, String)> = order
        .iter()
        .map(|n| (n.clone(), executor.kind(n).to_string()))
        .collect();
    state.set_run_plan(&run_id, &plan)?;
    let cancel = opts.cancel.clone().unwrap_or_default();
    let watcher = watch_run(state.clone(), run_id.clone(), cancel.clone());
    let upstream = upstream_of(&project, &selected, &order);
    let cx = RunCx {
        executor,
        state: state.clone(),
        run_id: run_id.clone(),
        opts: &opts,
        policies: &policies,
        cancel,
    };
    let outcome = Dispatch::new(cx, &upstream, order.clone()).run().await;
    watcher.abort();
    let (nodes, cancelled) = outcome?;
    let summary = RunSummary {
        run_id,
        nodes,
        duration: started.elapsed(),
        cancelled,
    };
    finish_run(&state, &opts, &summary)?;
    maintain_published(&project, &engine, &state, &opts, &summary).await;
    Ok(summary)
}

/// Table maintenance the policies call for on the tables this run published (a project's own
/// executor only: benchmarks and tests that plug in another one publish nothing).
async fn maintain_published(
    project: &CompiledProject,
    engine: &Engine,
    state: &StateStore,
    opts: &RunOptions,
    summary: &RunSummary,
) {
    if opts.checks_only || opts.executor.is_some() {
        return;
    }
    let published: BTreeSet<String> = summary
        .nodes
        .iter()
        .filter(|n| n.status == NodeStatus::Success && n.output.version.is_some())
        .map(|n| n.node.clone())
        .collect();
    if !published.is_empty() {
        crate::maintain::after_run(project, engine.lake(), state, &published).await;
    }
}

/// The selected nodes, and them in topological order.
fn selected_order(
    project: &CompiledProject,
    opts: &RunOptions,
) -> Result<(BTreeSet<String>, Vec<String>), RunError> {
    let selected = match &opts.nodes {
        Some(nodes) => nodes.clone(),
        None => sluice_core::selector::select_nodes(&project.graph, &opts.selection, project)?,
    };
    let order = project
        .graph
        .topological_order()?
        .into_iter()
        .filter(|n| selected.contains(n))
        .collect();
    Ok((selected, order))
}

/// The run's policies: given, or resolved from the project on top of the run's retry settings.
fn policies(project: &CompiledProject, opts: &RunOptions) -> Result<Arc<Policies>, RunError> {
    if let Some(p) = &opts.policies {
        return Ok(p.clone());
    }
    let base = NodePolicy {
        retries: opts.retries,
        retry_backoff: opts.retry_backoff,
        ..NodePolicy::default()
    };
    Ok(Arc::new(Policies::from_project(project, base)?))
}

/// The executor given, or the project's own.
fn executor(
    project: &Arc<CompiledProject>,
    engine: &Engine,
    run_id: &str,
    opts: &RunOptions,
) -> Arc<dyn NodeExecutor> {
    match &opts.executor {
        Some(e) => e.clone(),
        None => Arc::new(ProjectExecutor::new(
            project.clone(),
            engine.clone(),
            run_id,
            ExecuteOptions {
                full_refresh: opts.full_refresh,
                checks_only: opts.checks_only,
            },
        )),
    }
}

/// Each node's selected upstream nodes.
fn upstream_of<'a>(
    project: &'a CompiledProject,
    selected: &BTreeSet<String>,
    order: &'a [String],
) -> HashMap<&'a str, Vec<&'a str>> {
    order
        .iter()
        .map(|n| {
            let ups = project
                .graph
                .parents(n)
                .filter(|p| selected.contains(*p))
                .collect();
            (n.as_str(), ups)
        })
        .collect()
}

#[cfg(test)]
mod tests;
