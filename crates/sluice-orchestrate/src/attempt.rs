//! Executing one node of a run: take its lease, make attempts with a timeout each, retry transient
//! failures with growing delays, and keep a log of what happened.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use sluice_ingest::IngestContext;
use sluice_quality::{CheckResult, CheckStatus};
use sluice_transform::{CompiledProject, Engine};
use tokio_util::sync::CancellationToken;

use crate::control::LogLine;
use crate::node::{
    Connectors, NodeError, NodeOutput, build_model, ingest_table, next_model_txn, run_checks,
};
use crate::policy::NodePolicy;
use crate::runner::RunOptions;
use crate::state::StateStore;
use crate::summary::{NodeResult, NodeStatus};

/// What one attempt returns: the output, or the error with the check results gathered before it.
pub type AttemptResult = Result<NodeOutput, (NodeError, Vec<CheckResult>)>;

/// Does the work of one attempt of one node. The run loop adds ordering, leases, retries and
/// timeouts around it; [`ProjectExecutor`] is the real one (ingest, build, check), and a benchmark
/// can plug in one that does nothing to measure the scheduling overhead alone.
pub trait NodeExecutor: Send + Sync {
    /// `source` or `model` (or another kind an executor knows).
    fn kind(&self, node: &str) -> &'static str;
    /// One attempt (`attempt` counts from 1).
    fn attempt<'a>(&'a self, node: &'a str, attempt: u32) -> BoxFuture<'a, AttemptResult>;
}

/// How long a node lease lasts without renewal (its holder renews it every third of this).
pub const LEASE_TTL: Duration = Duration::from_secs(30);

/// Ingests source tables and builds and checks models of a compiled project.
pub struct ProjectExecutor {
    project: Arc<CompiledProject>,
    engine: Engine,
    connectors: Connectors,
    cx: IngestContext,
    run_id: String,
    opts: RunOptions,
    /// Each model's idempotency version, fixed at its first attempt so that a retry after a commit
    /// whose reply was lost does not commit twice.
    txns: tokio::sync::Mutex<HashMap<String, i64>>,
}

impl ProjectExecutor {
    /// The executor of one run.
    pub fn new(
        project: Arc<CompiledProject>,
        engine: Engine,
        run_id: &str,
        opts: &RunOptions,
    ) -> ProjectExecutor {
        let cx = IngestContext::new(engine.lake().clone(), run_id.to_string());
        ProjectExecutor {
            project,
            engine,
            connectors: Connectors::default(),
            cx,
            run_id: run_id.to_string(),
            opts: opts.clone(),
            txns: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    async fn model_attempt(&self, name: &str) -> AttemptResult {
        let Some(m) = self.project.models.get(name) else {
            return Err((
                NodeError::ChecksFailed(vec![format!("unknown model `{name}`")]),
                Vec::new(),
            ));
        };
        if self.opts.checks_only {
            let checks = run_checks(&self.project, &self.engine, &m.name, &m.relation)
                .await
                .map_err(|e| (e, Vec::new()))?;
            let failed: Vec<String> = checks
                .iter()
                .filter(|c| c.status == CheckStatus::Fail)
                .map(|c| c.message.clone())
                .collect();
            return if failed.is_empty() {
                Ok(NodeOutput {
                    checks,
                    ..NodeOutput::default()
                })
            } else {
                Err((NodeError::ChecksFailed(failed), checks))
            };
        }
        let txn = {
            let mut txns = self.txns.lock().await;
            match txns.get(name) {
                Some(v) => *v,
                None => {
                    let v = next_model_txn(&self.engine, m)
                        .await
                        .map_err(|e| (e, Vec::new()))?;
                    txns.insert(name.to_string(), v);
                    v
                }
            }
        };
        build_model(
            &self.project,
            &self.engine,
            m,
            &self.run_id,
            txn,
            self.opts.full_refresh,
        )
        .await
    }
}

impl NodeExecutor for ProjectExecutor {
    fn kind(&self, node: &str) -> &'static str {
        crate::export::node_kind(&self.project, node)
    }

    fn attempt<'a>(&'a self, node: &'a str, _attempt: u32) -> BoxFuture<'a, AttemptResult> {
        Box::pin(async move {
            if self.project.models.contains_key(node) {
                self.model_attempt(node).await
            } else if self.opts.checks_only {
                Ok(NodeOutput::default())
            } else if crate::export::is_export(node) {
                crate::export::run_export_node(&self.project, &self.engine, &self.run_id, node)
                    .await
                    .map_err(|e| (e, Vec::new()))
            } else {
                ingest_table(
                    &self.project,
                    &self.connectors,
                    &self.engine,
                    node,
                    &self.cx,
                )
                .await
                .map_err(|e| (e, Vec::new()))
            }
        })
    }
}

/// Holds a node's lease and renews it until dropped (also when the node task is aborted by a
/// cancel), then gives it back.
struct LeaseGuard {
    state: Arc<StateStore>,
    node: String,
    holder: String,
    renew: tokio::task::JoinHandle<()>,
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        self.renew.abort();
        if let Err(e) = self.state.release_lease(&self.node, &self.holder) {
            tracing::warn!(node = %self.node, error = %e, "could not release the node lease; it expires by itself");
        }
    }
}

/// Waits for and takes the lease on `node`. None when the run was cancelled while waiting.
async fn take_lease(
    state: &Arc<StateStore>,
    node: &str,
    run_id: &str,
    cancel: &CancellationToken,
    log: &mut Vec<LogLine>,
) -> Option<LeaseGuard> {
    let mut waiting_for: Option<String> = None;
    loop {
        match state.acquire_lease(node, run_id, LEASE_TTL) {
            Ok(None) => break,
            Ok(Some(holder)) => {
                if waiting_for.as_deref() != Some(holder.as_str()) {
                    log.push(LogLine::now(
                        "info",
                        format!("waiting: `{node}` is running in run {holder}"),
                    ));
                    waiting_for = Some(holder);
                }
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                    () = cancel.cancelled() => return None,
                }
            }
            Err(e) => {
                // Without the state database there is nobody to coordinate with; run anyway.
                log.push(LogLine::now(
                    "warn",
                    format!("no lease (state database: {e})"),
                ));
                break;
            }
        }
    }
    let (s, n, h) = (state.clone(), node.to_string(), run_id.to_string());
    let renew = tokio::spawn(async move {
        loop {
            tokio::time::sleep(LEASE_TTL / 3).await;
            if let Err(e) = s.acquire_lease(&n, &h, LEASE_TTL) {
                tracing::warn!(node = %n, error = %e, "could not renew the node lease");
            }
        }
    });
    Some(LeaseGuard {
        state: state.clone(),
        node: node.to_string(),
        holder: run_id.to_string(),
        renew,
    })
}

/// Runs one node to its final result under `policy`.
pub(crate) async fn run_node(
    executor: Arc<dyn NodeExecutor>,
    state: Arc<StateStore>,
    run_id: String,
    node: String,
    policy: NodePolicy,
    cancel: CancellationToken,
) -> NodeResult {
    let started = Instant::now();
    let kind = executor.kind(&node);
    let mut log = Vec::new();
    let Some(_lease) = take_lease(&state, &node, &run_id, &cancel, &mut log).await else {
        let mut r = NodeResult::not_run(
            &node,
            kind,
            NodeStatus::Cancelled,
            "cancelled while waiting for the node lease".into(),
        );
        r.log.splice(0..0, log);
        return r;
    };
    let mut delays = policy.delays();
    let mut attempts = 0;
    let outcome = loop {
        attempts += 1;
        let attempt_started = Instant::now();
        let work = executor.attempt(&node, attempts);
        let result = match policy.timeout {
            Some(limit) => match tokio::time::timeout(limit, work).await {
                Ok(r) => r,
                Err(_) => Err((NodeError::Timeout(limit), Vec::new())),
            },
            None => work.await,
        };
        let took = attempt_started.elapsed().as_secs_f64();
        match result {
            Ok(out) => {
                log.push(LogLine::now(
                    "info",
                    format!(
                        "attempt {attempts} succeeded in {took:.3}s: {} row(s) in, {} out",
                        out.rows_in.map(|r| r.to_string()).unwrap_or("-".into()),
                        out.rows_out.map(|r| r.to_string()).unwrap_or("-".into())
                    ),
                ));
                break Ok(out);
            }
            Err((e, checks)) if e.is_transient() => match delays.next() {
                Some(d) => {
                    log.push(LogLine::now(
                        "warn",
                        format!(
                            "attempt {attempts} failed after {took:.3}s (transient): {e}; retrying in {}ms",
                            d.as_millis()
                        ),
                    ));
                    tracing::warn!(node = %node, attempt = attempts, delay_ms = d.as_millis() as u64, error = %e, "transient failure; retrying");
                    tokio::time::sleep(d).await;
                }
                None => {
                    log.push(LogLine::now(
                        "error",
                        format!("attempt {attempts} failed (transient, no retries left): {e}"),
                    ));
                    break Err((e, checks));
                }
            },
            Err((e, checks)) => {
                log.push(LogLine::now(
                    "error",
                    format!("attempt {attempts} failed (permanent, not retried): {e}"),
                ));
                break Err((e, checks));
            }
        }
    };
    let (status, output, error) = match outcome {
        Ok(output) => (NodeStatus::Success, output, None),
        Err((e, checks)) => (
            NodeStatus::Failed,
            NodeOutput {
                checks,
                ..NodeOutput::default()
            },
            Some(e.to_string()),
        ),
    };
    NodeResult {
        node,
        kind,
        status,
        attempts,
        output,
        error,
        duration: started.elapsed(),
        stale_inputs: Vec::new(),
        log,
    }
}
