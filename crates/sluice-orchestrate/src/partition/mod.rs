//! Time partitions and backfills.
//!
//! A model with `partition_by: {field, granularity, start, lookback}` is built partition by
//! partition ([`build`]): a plain run rebuilds its `lookback` most recent partitions (its first build
//! builds everything from `start` in one pass), and [`backfill`] builds an explicit range of
//! partitions of the selected models, in parallel, idempotently, resumably. Which partitions are
//! built is recorded in the state database as merged ranges ([`store`], [`ranges`]).

pub mod backfill;
pub mod build;
pub mod store;

pub use crate::node::BuiltPartitions;
pub use backfill::{
    AssetProgress, BackfillError, BackfillObserver, BackfillProgress, BackfillRequest, execute,
    plan, progress,
};
// The range sets live below the run core (node outputs carry them); re-exported here, where
// they are used.
pub use crate::ranges::{self, Range, RangeSet};
pub use store::{BackfillRecord, PartitionStore};

use crate::node::NodeOutput;
use crate::state::{StateError, StateStore};

/// Records the partitions a successful node built (the run loop's hook; nothing for other nodes).
pub fn record_output(
    state: &StateStore,
    node: &str,
    output: &NodeOutput,
) -> Result<(), StateError> {
    let Some(p) = &output.partitions else {
        return Ok(());
    };
    PartitionStore::new(state)?.record_built_set(node, &p.grain, &p.built)
}

/// Built ranges and gaps of a time-partitioned asset, as keys, for `sluice partitions` and the API.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PartitionListing {
    /// The asset.
    pub asset: String,
    /// `day` or `hour`.
    pub granularity: String,
    /// `partition_by.start`, as a key.
    pub start: Option<String>,
    /// The current partition (from `SLUICE_NOW` or the clock).
    pub current: String,
    /// Partitions built.
    pub built_count: u64,
    /// Built ranges, `[first, last]` keys, both included.
    pub built: Vec<[String; 2]>,
    /// Never-built ranges between `start` (or the first built partition) and the current one.
    pub gaps: Vec<[String; 2]>,
}

/// Lists an asset's built ranges and gaps (linear in the number of ranges).
pub fn listing(
    state: &StateStore,
    asset: &str,
    tp: &sluice_transform::partition::TimePartition,
) -> Result<PartitionListing, StateError> {
    let g = tp.granularity;
    let built = PartitionStore::new(state)?.built(asset, g.as_str())?;
    let current = tp.current(sluice_transform::partition::now());
    let first = tp
        .start
        .or_else(|| built.ranges().first().map(|r| r.lo))
        .unwrap_or(current);
    let keys = |s: &RangeSet| -> Vec<[String; 2]> {
        s.ranges()
            .iter()
            .map(|r| [g.key(r.lo), g.key(r.hi)])
            .collect()
    };
    let gaps = if first <= current {
        built.gaps(first, current)
    } else {
        RangeSet::new()
    };
    Ok(PartitionListing {
        asset: asset.to_string(),
        granularity: g.as_str().to_string(),
        start: tp.start.map(|s| g.key(s)),
        current: g.key(current),
        built_count: built.count(),
        built: keys(&built),
        gaps: keys(&gaps),
    })
}
