//! What a run reports: each node's status and output, and the run's totals; and run ids.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sluice_core::NodeKind;
use sluice_quality::{CheckResult, CheckStatus};

use crate::control::LogLine;
use crate::node::NodeOutput;

/// A new run id: sortable by time, unique.
pub fn new_run_id() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{}-{}", Utc::now().format("%Y%m%dT%H%M%S"), &id[..8])
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
    /// Stopped (or never started) because the run was cancelled.
    Cancelled,
}

impl NodeStatus {
    /// `success`, `failed`, `skipped`, `cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Success => "success",
            NodeStatus::Failed => "failed",
            NodeStatus::Skipped => "skipped",
            NodeStatus::Cancelled => "cancelled",
        }
    }
}

/// One node's result.
#[derive(Debug, Clone)]
pub struct NodeResult {
    /// Asset name.
    pub node: String,
    /// Source table, model or export.
    pub kind: NodeKind,
    /// Outcome.
    pub status: NodeStatus,
    /// Attempts made.
    pub attempts: u32,
    /// What it did.
    pub output: NodeOutput,
    /// Error, for failures (and the failed upstream, for skips).
    pub error: Option<String>,
    /// Wall time (for a node that ran: from taking its lease to its end).
    pub duration: Duration,
    /// When it ended, taken while the node still held its lease, so that the recorded intervals
    /// of one node never overlap across runs and processes.
    pub finished_at: DateTime<Utc>,
    /// Failed `fail_open` inputs (direct or further upstream) whose last good data this node read.
    pub stale_inputs: Vec<String>,
    /// What happened while it ran (attempts, retries, timeouts), for `sluice runs show`.
    pub log: Vec<LogLine>,
}

impl NodeResult {
    /// A result for a node that did not execute.
    pub fn not_run(node: &str, kind: NodeKind, status: NodeStatus, why: String) -> NodeResult {
        NodeResult {
            node: node.to_string(),
            kind,
            status,
            attempts: 0,
            output: NodeOutput::default(),
            log: vec![LogLine::now("info", why.clone())],
            error: Some(why),
            duration: Duration::ZERO,
            finished_at: Utc::now(),
            stale_inputs: Vec::new(),
        }
    }
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
    /// The run was cancelled before it finished.
    pub cancelled: bool,
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

    /// `success`, `partial` (some nodes did not succeed), `failed` or `cancelled`.
    pub fn status(&self) -> &'static str {
        if self.cancelled {
            return "cancelled";
        }
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
