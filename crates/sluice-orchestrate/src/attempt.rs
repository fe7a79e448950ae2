//! Executing one node of a run: take its lease, make attempts with a timeout each, retry transient
//! failures with growing delays, and keep a log of what happened.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_core::NodeKind;
use tokio_util::sync::CancellationToken;

use crate::control::LogLine;
use crate::node::{AttemptResult, NodeError, NodeExecutor, NodeOutput};
use crate::policy::NodePolicy;
use crate::state::StateStore;
use crate::summary::{NodeResult, NodeStatus};

/// How long a node lease lasts without renewal (its holder renews it every third of this).
pub const LEASE_TTL: Duration = Duration::from_secs(30);

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
    // Time under the lease: waiting for another run's lease is in the log, not in the duration.
    let started = Instant::now();
    let (outcome, attempts) = attempt_until_done(executor.as_ref(), &node, &policy, &mut log).await;
    settle(node, kind, outcome, attempts, started, log)
}

/// Makes attempts until one succeeds, one fails permanently, or the retries are used up; returns
/// the last attempt's result and the number of attempts.
async fn attempt_until_done(
    executor: &dyn NodeExecutor,
    node: &str,
    policy: &NodePolicy,
    log: &mut Vec<LogLine>,
) -> (AttemptResult, u32) {
    let mut delays = policy.delays();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let attempt_started = Instant::now();
        let result = timed_attempt(executor, node, attempts, policy.timeout).await;
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
                return (Ok(out), attempts);
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
                    return (Err((e, checks)), attempts);
                }
            },
            Err((e, checks)) => {
                log.push(LogLine::now(
                    "error",
                    format!("attempt {attempts} failed (permanent, not retried): {e}"),
                ));
                return (Err((e, checks)), attempts);
            }
        }
    }
}

/// One attempt, failed as a timeout when it takes longer than `timeout`.
async fn timed_attempt(
    executor: &dyn NodeExecutor,
    node: &str,
    attempt: u32,
    timeout: Option<Duration>,
) -> AttemptResult {
    let work = executor.attempt(node, attempt);
    match timeout {
        Some(limit) => match tokio::time::timeout(limit, work).await {
            Ok(r) => r,
            Err(_) => Err((NodeError::Timeout(limit), Vec::new())),
        },
        None => work.await,
    }
}

/// The node's result from its last attempt.
fn settle(
    node: String,
    kind: NodeKind,
    outcome: AttemptResult,
    attempts: u32,
    started: Instant,
    log: Vec<LogLine>,
) -> NodeResult {
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
        finished_at: chrono::Utc::now(),
        stale_inputs: Vec::new(),
        log,
    }
}
