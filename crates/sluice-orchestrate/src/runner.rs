//! The run loop: execute the selected nodes in dependency order, independent nodes in parallel.
//!
//! A node starts when every selected upstream node has succeeded; if one failed (or was skipped), the
//! node is skipped, while everything that does not depend on the failure still runs. Transient errors
//! are retried with exponential backoff and jitter; permanent ones (SQL errors, failed checks) are not.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{SecondsFormat, Utc};
use sluice_ingest::IngestContext;
use sluice_quality::{CheckResult, CheckStatus};
use sluice_transform::{CompiledProject, Engine};
use tokio::task::JoinSet;

use crate::node::{
    Connectors, NodeError, NodeOutput, build_model, ingest_table, next_model_txn, run_checks,
};
use crate::state::{CheckRecord, NodeRecord, RunRecord, StateStore};

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
}

/// What a run does.
#[derive(Clone)]
pub struct RunOptions {
    /// Selection (`name`, `name+`, `+name`, `tag:x`; empty = all).
    pub selection: String,
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
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            selection: String::new(),
            threads: 4,
            full_refresh: false,
            checks_only: false,
            command: "run".into(),
            retries: 2,
            retry_backoff: Duration::from_millis(200),
            observer: None,
            run_id: None,
            only_if_upstream_changed: BTreeSet::new(),
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

/// A node's final state in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeStatus {
    /// Built (or ingested) and published.
    Success,
    /// Failed after its retries.
    Failed,
    /// Not run because an upstream node failed.
    Skipped,
}

impl NodeStatus {
    /// `success`, `failed`, `skipped`.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Success => "success",
            NodeStatus::Failed => "failed",
            NodeStatus::Skipped => "skipped",
        }
    }
}

/// One node's result.
#[derive(Debug, Clone)]
pub struct NodeResult {
    /// Asset name.
    pub node: String,
    /// `source` or `model`.
    pub kind: &'static str,
    /// Outcome.
    pub status: NodeStatus,
    /// Attempts made.
    pub attempts: u32,
    /// What it did.
    pub output: NodeOutput,
    /// Error, for failures (and the failed upstream, for skips).
    pub error: Option<String>,
    /// Wall time.
    pub duration: Duration,
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Run id.
    pub run_id: String,
    /// Per node, in completion order.
    pub nodes: Vec<NodeResult>,
    /// Wall time.
    pub duration: Duration,
}

impl RunSummary {
    /// Nodes with a status.
    pub fn count(&self, status: NodeStatus) -> usize {
        self.nodes.iter().filter(|n| n.status == status).count()
    }

    /// Every check result.
    pub fn checks(&self) -> impl Iterator<Item = &CheckResult> {
        self.nodes.iter().flat_map(|n| n.output.checks.iter())
    }

    /// Checks with a status.
    pub fn checks_with(&self, status: CheckStatus) -> usize {
        self.checks().filter(|c| c.status == status).count()
    }

    /// `success`, `partial` or `failed`.
    pub fn status(&self) -> &'static str {
        let failed = self.count(NodeStatus::Failed) + self.count(NodeStatus::Skipped);
        if failed == 0 {
            "success"
        } else if self.count(NodeStatus::Success) > 0 {
            "partial"
        } else {
            "failed"
        }
    }

    /// A node's result.
    pub fn node(&self, name: &str) -> Option<&NodeResult> {
        self.nodes.iter().find(|n| n.node == name)
    }
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
    let selected = project
        .graph
        .select(&opts.selection, |n| project.tags_of(n))?;
    let order: Vec<String> = project
        .graph
        .topological_order()?
        .into_iter()
        .filter(|n| selected.contains(n))
        .collect();
    let run_id = opts.run_id.clone().unwrap_or_else(new_run_id);
    let started = Instant::now();
    state.start_run(&run_id, &opts.command, &opts.selection, &now())?;
    if let Some(o) = &opts.observer {
        o.run_started(&run_id, order.len());
    }
    let connectors = Arc::new(Connectors::default());
    let threads = opts.threads.max(1);
    let mut done: BTreeMap<String, NodeStatus> = BTreeMap::new();
    let mut pending: Vec<String> = order.clone();
    let mut running: BTreeSet<String> = BTreeSet::new();
    // Conditional nodes left out because their inputs wrote nothing, and nodes that wrote rows.
    let mut unchanged: BTreeSet<String> = BTreeSet::new();
    let mut wrote_rows: BTreeSet<String> = BTreeSet::new();
    let mut tasks: JoinSet<NodeResult> = JoinSet::new();
    let mut results = Vec::new();
    let ingest_cx = IngestContext::new(engine.lake().clone(), run_id.clone());

    loop {
        // Settle nodes whose upstream failed, and start nodes whose upstream succeeded.
        let mut i = 0;
        while i < pending.len() {
            let name = pending[i].clone();
            let ups: Vec<&str> = project
                .graph
                .parents(&name)
                .filter(|p| selected.contains(*p))
                .collect();
            if let Some(bad) = ups.iter().find(|u| {
                matches!(
                    done.get(**u),
                    Some(NodeStatus::Failed | NodeStatus::Skipped)
                )
            }) {
                pending.remove(i);
                let r = NodeResult {
                    node: name.clone(),
                    kind: if project.models.contains_key(&name) {
                        "model"
                    } else {
                        "source"
                    },
                    status: NodeStatus::Skipped,
                    attempts: 0,
                    output: NodeOutput::default(),
                    error: Some(format!("skipped: upstream `{bad}` did not succeed")),
                    duration: Duration::ZERO,
                };
                finish_node(&state, &run_id, &r, opts.observer.as_deref())?;
                done.insert(name, NodeStatus::Skipped);
                results.push(r);
                continue;
            }
            let ready = ups
                .iter()
                .all(|u| done.get(*u) == Some(&NodeStatus::Success) || unchanged.contains(*u));
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
                running.insert(name.clone());
                if let Some(o) = &opts.observer {
                    o.node_started(&name);
                }
                let (p, e, c, o, rid, cx) = (
                    project.clone(),
                    engine.clone(),
                    connectors.clone(),
                    opts.clone(),
                    run_id.clone(),
                    ingest_cx.clone(),
                );
                tasks.spawn(async move { execute(&p, &e, &c, &o, &rid, &cx, &name).await });
                continue;
            }
            i += 1;
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        let r = match joined {
            Ok(r) => r,
            Err(e) => {
                // A panicking node task is a bug; fail the run's remaining work cleanly.
                tracing::error!(error = %e, "node task failed");
                continue;
            }
        };
        running.remove(&r.node);
        if r.status == NodeStatus::Success && r.output.rows_out.unwrap_or(0) > 0 {
            wrote_rows.insert(r.node.clone());
        }
        finish_node(&state, &run_id, &r, opts.observer.as_deref())?;
        done.insert(r.node.clone(), r.status);
        results.push(r);
        if pending.is_empty() && tasks.is_empty() {
            break;
        }
    }

    let summary = RunSummary {
        run_id: run_id.clone(),
        nodes: results,
        duration: started.elapsed(),
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
        nodes_skipped: summary.count(NodeStatus::Skipped) as i64,
        checks_passed: summary.checks_with(CheckStatus::Pass) as i64,
        checks_warned: summary.checks_with(CheckStatus::Warn) as i64,
        checks_failed: summary.checks_with(CheckStatus::Fail) as i64,
    })?;
    Ok(summary)
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
    if let Some(w) = &r.output.watermark {
        state.set_watermark(&r.node, w, run_id, &at)?;
    }
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

async fn execute(
    project: &CompiledProject,
    engine: &Engine,
    connectors: &Connectors,
    opts: &RunOptions,
    run_id: &str,
    cx: &IngestContext,
    name: &str,
) -> NodeResult {
    let started = Instant::now();
    let model = project.models.get(name);
    let kind = if model.is_some() { "model" } else { "source" };
    let retries = model.and_then(|m| m.config.retries).unwrap_or(opts.retries);
    let mut delays = ExponentialBuilder::default()
        .with_min_delay(opts.retry_backoff)
        .with_max_delay(Duration::from_secs(30))
        .with_max_times(retries as usize)
        .with_jitter()
        .build();
    let mut attempts = 0;
    // The idempotency version is fixed once per run, so a retry after a commit whose reply was lost
    // does not commit twice.
    let txn = match model {
        Some(m) if !opts.checks_only => next_model_txn(engine, m).await,
        _ => Ok(0),
    };
    let outcome = loop {
        attempts += 1;
        let result: Result<NodeOutput, (NodeError, Vec<CheckResult>)> = match (model, &txn) {
            (_, Err(e)) => Err((NodeError::ChecksFailed(vec![e.to_string()]), Vec::new())),
            (Some(m), _) if opts.checks_only => {
                match run_checks(project, engine, &m.name, &m.relation).await {
                    Ok(checks) => {
                        let failed: Vec<String> = checks
                            .iter()
                            .filter(|c| c.status == CheckStatus::Fail)
                            .map(|c| c.message.clone())
                            .collect();
                        if failed.is_empty() {
                            Ok(NodeOutput {
                                checks,
                                ..NodeOutput::default()
                            })
                        } else {
                            Err((NodeError::ChecksFailed(failed), checks))
                        }
                    }
                    Err(e) => Err((e, Vec::new())),
                }
            }
            (Some(m), Ok(v)) => {
                build_model(project, engine, m, run_id, *v, opts.full_refresh).await
            }
            (None, _) if opts.checks_only => Ok(NodeOutput::default()),
            (None, _) => ingest_table(project, connectors, engine, name, cx)
                .await
                .map_err(|e| (e, Vec::new())),
        };
        match result {
            Ok(out) => break Ok(out),
            Err((e, checks)) if e.is_transient() => match delays.next() {
                Some(d) => {
                    tracing::warn!(node = name, attempt = attempts, delay_ms = d.as_millis() as u64, error = %e, "transient failure; retrying");
                    tokio::time::sleep(d).await;
                }
                None => break Err((e, checks)),
            },
            Err(other) => break Err(other),
        }
    };
    match outcome {
        Ok(output) => NodeResult {
            node: name.to_string(),
            kind,
            status: NodeStatus::Success,
            attempts,
            output,
            error: None,
            duration: started.elapsed(),
        },
        Err((e, checks)) => NodeResult {
            node: name.to_string(),
            kind,
            status: NodeStatus::Failed,
            attempts,
            output: NodeOutput {
                checks,
                ..NodeOutput::default()
            },
            error: Some(e.to_string()),
            duration: started.elapsed(),
        },
    }
}
