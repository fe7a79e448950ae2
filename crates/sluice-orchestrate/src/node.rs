//! What one attempt of one node produces, and the contract of whatever does that work.
//!
//! The bottom of the run core: plain data and one trait, used by every layer above ([`crate::execute`]
//! implements [`NodeExecutor`], [`crate::attempt`] drives it, [`crate::runner`] records its output).

use futures::future::BoxFuture;
use sluice_core::NodeKind;
use sluice_ingest::IngestError;
use sluice_quality::CheckResult;
use sluice_transform::TransformError;

use crate::ranges::RangeSet;

/// Why a node failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Ingestion failed.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// The model failed to build.
    #[error(transparent)]
    Transform(#[from] TransformError),
    /// Error-level checks failed; the model was not published.
    #[error("{} error check(s) failed: {}", .0.len(), .0.join("; "))]
    ChecksFailed(Vec<String>),
    /// A check could not be built from its declaration.
    #[error(transparent)]
    Quality(#[from] sluice_quality::QualityError),
    /// An export (reverse ETL) failed.
    #[error(transparent)]
    Export(#[from] ExportFailure),
    /// One attempt took longer than the node's `timeout`.
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
}

impl NodeError {
    /// Transient errors are retried; the rest fail the same way every time.
    pub fn is_transient(&self) -> bool {
        match self {
            NodeError::Ingest(e) => e.is_transient(),
            NodeError::Transform(e) => e.is_transient(),
            NodeError::Export(e) => e.transient,
            NodeError::Timeout(_) => true,
            _ => false,
        }
    }
}

/// Why an export failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("export `{export}` failed: {message}")]
pub struct ExportFailure {
    /// The export's name.
    pub export: String,
    /// What went wrong.
    pub message: String,
    /// Whether running the whole export again may succeed (a dropped connection) and is safe (the
    /// sink is idempotent).
    pub transient: bool,
}

/// What a node did.
#[derive(Debug, Clone, Default)]
pub struct NodeOutput {
    /// Rows read.
    pub rows_in: Option<u64>,
    /// Rows written.
    pub rows_out: Option<u64>,
    /// Rows quarantined.
    pub rows_quarantined: Option<u64>,
    /// Delta version published.
    pub version: Option<i64>,
    /// New watermark (sources).
    pub watermark: Option<serde_json::Value>,
    /// Check results (models).
    pub checks: Vec<CheckResult>,
    /// Time partitions built (time-partitioned models), recorded by the run loop.
    pub partitions: Option<BuiltPartitions>,
}

/// The partitions a node built in a run (recorded as built when the run records the node).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuiltPartitions {
    /// `day` or `hour`.
    pub grain: String,
    /// The partitions.
    pub built: RangeSet,
}

/// What one attempt returns: the output, or the error with the check results gathered before it.
pub type AttemptResult = Result<NodeOutput, (NodeError, Vec<CheckResult>)>;

/// Does the work of one attempt of one node. The run loop adds ordering, leases, retries and
/// timeouts around it; [`crate::ProjectExecutor`] is the real one (ingest, build, check, export),
/// and a benchmark can plug in one that does nothing to measure the scheduling overhead alone.
pub trait NodeExecutor: Send + Sync {
    /// What the node is (recorded with its result).
    fn kind(&self, node: &str) -> NodeKind;
    /// One attempt (`attempt` counts from 1).
    fn attempt<'a>(&'a self, node: &'a str, attempt: u32) -> BoxFuture<'a, AttemptResult>;
}
