//! The run loop proper: start each node when its selected upstream is done, settle what a failure
//! blocks, collect results as they finish, and stop everything on a cancel.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::record::finish_node;
use super::{RunError, RunOptions};
use crate::attempt::run_node;
use crate::node::NodeExecutor;
use crate::policy::{OnFailure, Policies};
use crate::state::StateStore;
use crate::summary::{NodeResult, NodeStatus};

/// What to do with a pending node now.
enum Step {
    /// An upstream node failed (fail-fast), was skipped or cancelled: skip it, naming that one.
    Skip(String),
    /// A conditional node whose upstream wrote nothing: leave it out of the run.
    LeaveOut,
    /// Start it; these failed fail-open nodes (direct or further up) are its stale inputs.
    Start(BTreeSet<String>),
    /// Not yet.
    Wait,
}

/// What every node of a run shares.
pub(super) struct RunCx<'a> {
    pub executor: Arc<dyn NodeExecutor>,
    pub state: Arc<StateStore>,
    pub run_id: String,
    pub opts: &'a RunOptions,
    pub policies: &'a Policies,
    pub cancel: CancellationToken,
}

/// The state of one run's loop.
pub(super) struct Dispatch<'a> {
    cx: RunCx<'a>,
    /// Each node's selected upstream, looked up once: the loop revisits pending nodes often.
    upstream: &'a HashMap<&'a str, Vec<&'a str>>,
    /// Nodes not started yet, in topological order.
    pending: Vec<String>,
    done: BTreeMap<String, NodeStatus>,
    /// Per finished node, the failed fail-open nodes its data (transitively) missed.
    stale: BTreeMap<String, Vec<String>>,
    running: HashMap<tokio::task::Id, (String, Instant)>,
    /// Conditional nodes left out because their inputs wrote nothing.
    unchanged: BTreeSet<String>,
    /// Nodes that wrote rows in this run.
    wrote_rows: BTreeSet<String>,
    tasks: JoinSet<NodeResult>,
    results: Vec<NodeResult>,
    cancelled: bool,
}

impl<'a> Dispatch<'a> {
    /// A loop over `order` (the selected nodes in topological order).
    pub fn new(
        cx: RunCx<'a>,
        upstream: &'a HashMap<&'a str, Vec<&'a str>>,
        order: Vec<String>,
    ) -> Dispatch<'a> {
        Dispatch {
            cx,
            upstream,
            pending: order,
            done: BTreeMap::new(),
            stale: BTreeMap::new(),
            running: HashMap::new(),
            unchanged: BTreeSet::new(),
            wrote_rows: BTreeSet::new(),
            tasks: JoinSet::new(),
            results: Vec::new(),
            cancelled: false,
        }
    }

    /// Runs every node to a result; returns the results in completion order and whether the run
    /// was cancelled.
    pub async fn run(mut self) -> Result<(Vec<NodeResult>, bool), RunError> {
        loop {
            self.start_ready()?;
            if self.tasks.is_empty() {
                break;
            }
            if let Some(r) = self.next_finished().await {
                self.finish(r)?;
            }
        }
        if self.cancelled {
            self.cancel_pending()?;
        }
        Ok((self.results, self.cancelled))
    }

    /// Settles nodes whose upstream failed, and starts nodes whose upstream is done (as many as
    /// the thread limit allows).
    fn start_ready(&mut self) -> Result<(), RunError> {
        let mut i = 0;
        while !self.cancelled && i < self.pending.len() {
            let upstream: &'a HashMap<&'a str, Vec<&'a str>> = self.upstream;
            let ups: &'a [&'a str] = upstream
                .get(self.pending[i].as_str())
                .map_or(&[], Vec::as_slice);
            match self.next_step(&self.pending[i], ups) {
                Step::Wait => i += 1,
                Step::Skip(bad) => {
                    let name = self.pending.remove(i);
                    let r = NodeResult::not_run(
                        &name,
                        self.cx.executor.kind(&name),
                        NodeStatus::Skipped,
                        format!("skipped: upstream `{bad}` did not succeed"),
                    );
                    self.record(&r)?;
                    self.done.insert(name, NodeStatus::Skipped);
                    self.results.push(r);
                }
                Step::LeaveOut => {
                    let name = self.pending.remove(i);
                    tracing::debug!(node = %name, "left out: no upstream node wrote rows");
                    self.unchanged.insert(name);
                }
                Step::Start(inputs) => {
                    let name = self.pending.remove(i);
                    self.start(name, inputs);
                }
            }
        }
        Ok(())
    }

    fn next_step(&self, name: &str, ups: &[&str]) -> Step {
        let blocked = ups.iter().find(|u| match self.done.get(**u) {
            Some(NodeStatus::Skipped | NodeStatus::Cancelled) => true,
            Some(NodeStatus::Failed) => self.cx.policies.get(u).on_failure == OnFailure::FailFast,
            _ => false,
        });
        if let Some(bad) = blocked {
            return Step::Skip(bad.to_string());
        }
        let ready = ups
            .iter()
            .all(|u| self.done.contains_key(*u) || self.unchanged.contains(*u));
        if ready
            && self.cx.opts.only_if_upstream_changed.contains(name)
            && !ups.iter().any(|u| self.wrote_rows.contains(*u))
        {
            return Step::LeaveOut;
        }
        if !ready || self.running.len() >= self.cx.opts.threads.max(1) {
            return Step::Wait;
        }
        let mut inputs = BTreeSet::new();
        for u in ups {
            if self.done.get(*u) == Some(&NodeStatus::Failed) {
                inputs.insert(u.to_string());
            }
            inputs.extend(self.stale.get(*u).into_iter().flatten().cloned());
        }
        Step::Start(inputs)
    }

    fn start(&mut self, name: String, inputs: BTreeSet<String>) {
        if let Some(o) = &self.cx.opts.observer {
            o.node_started(&name);
        }
        let work = run_node(
            self.cx.executor.clone(),
            self.cx.state.clone(),
            self.cx.run_id.clone(),
            name.clone(),
            self.cx.policies.get(&name).clone(),
            self.cx.cancel.clone(),
        );
        let inputs: Vec<String> = inputs.into_iter().collect();
        let handle = self.tasks.spawn(async move {
            let mut r = work.await;
            r.stale_inputs = inputs;
            r
        });
        self.running.insert(handle.id(), (name, Instant::now()));
    }

    /// The next node to finish; `None` when the wait ended otherwise (a cancel, which aborts every
    /// running node, or a task that was not a node's).
    async fn next_finished(&mut self) -> Option<NodeResult> {
        let joined = tokio::select! {
            joined = self.tasks.join_next_with_id() => joined?,
            () = self.cx.cancel.cancelled(), if !self.cancelled => {
                self.cancelled = true;
                tracing::info!(run_id = %self.cx.run_id, "run cancelled; stopping its nodes");
                self.tasks.abort_all();
                return None;
            }
        };
        match joined {
            Ok((id, r)) => {
                self.running.remove(&id);
                Some(r)
            }
            Err(e) => {
                let (name, at) = self.running.remove(&e.id())?;
                let (status, why) = if e.is_cancelled() {
                    (NodeStatus::Cancelled, "cancelled while running".to_string())
                } else {
                    // A panicking node is a bug; record it as this node's failure.
                    tracing::error!(node = %name, error = %e, "node task panicked");
                    (NodeStatus::Failed, format!("internal error: {e}"))
                };
                let mut r = NodeResult::not_run(&name, self.cx.executor.kind(&name), status, why);
                r.duration = at.elapsed();
                Some(r)
            }
        }
    }

    fn finish(&mut self, r: NodeResult) -> Result<(), RunError> {
        if r.status == NodeStatus::Success && r.output.rows_out.unwrap_or(0) > 0 {
            self.wrote_rows.insert(r.node.clone());
        }
        self.record(&r)?;
        self.done.insert(r.node.clone(), r.status);
        if !r.stale_inputs.is_empty() {
            self.stale.insert(r.node.clone(), r.stale_inputs.clone());
        }
        self.results.push(r);
        Ok(())
    }

    /// Records the nodes a cancel kept from starting.
    fn cancel_pending(&mut self) -> Result<(), RunError> {
        for name in std::mem::take(&mut self.pending) {
            let r = NodeResult::not_run(
                &name,
                self.cx.executor.kind(&name),
                NodeStatus::Cancelled,
                "cancelled before it started".into(),
            );
            self.record(&r)?;
            self.results.push(r);
        }
        Ok(())
    }

    fn record(&self, r: &NodeResult) -> Result<(), RunError> {
        finish_node(
            &self.cx.state,
            &self.cx.run_id,
            r,
            self.cx.opts.observer.as_deref(),
        )
    }
}
