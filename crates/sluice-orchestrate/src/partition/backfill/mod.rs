//! Backfills: build an explicit range of partitions of the selected time-partitioned models.
//!
//! [`plan`] records a backfill and, per model, the partitions it must build: every partition from
//! `--from`'s to `--to`'s (both included), or with `--missing` only those never built. [`execute`]
//! builds them in parallel (at most `threads` at once), a model's partition only after the
//! overlapping partitions of its selected upstream models, and records each built partition at
//! once, so a backfill killed midway and executed again builds only what is not done. A partition
//! whose checks fail keeps its previous data and is reported; its downstream partitions are skipped.

mod run;

use serde::Serialize;
use sluice_transform::partition::TimePartition;
use sluice_transform::{CompiledModel, CompiledProject};

use super::store::{BackfillRecord, PartitionStore, timestamp};
use crate::ranges::{Range, RangeSet};
use crate::state::{StateError, StateStore};
use crate::summary::new_run_id;
pub use run::execute;

/// Why a backfill cannot start.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    /// The state database failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// The selection is invalid.
    #[error(transparent)]
    Graph(#[from] sluice_core::GraphError),
    /// The request does not make sense (bad dates, nothing partitioned selected, unknown id).
    #[error("{0}")]
    Request(String),
}

/// What to backfill.
#[derive(Debug, Clone, Default)]
pub struct BackfillRequest {
    /// Selection (`name`, `name+`, `+name`, `tag:x`); only time-partitioned models are built. With
    /// `nodes`, the selection as the user wrote it (`a --exclude b --state dir`), recorded and
    /// matched against unfinished backfills.
    pub selection: String,
    /// The selected nodes when the caller resolved the selection itself (`--exclude`, `--state`);
    /// `None`: `selection` is resolved here.
    pub nodes: Option<std::collections::BTreeSet<String>>,
    /// First partition (a date or time inside it); default: each model's `partition_by.start`.
    pub from: Option<String>,
    /// Last partition, included; default: the current partition.
    pub to: Option<String>,
    /// Only partitions never built.
    pub missing: bool,
}

/// Progress callbacks (the CLI draws a progress bar from them).
pub trait BackfillObserver: Send + Sync {
    /// `total` partitions are left to build.
    fn started(&self, _id: &str, _total: u64) {}
    /// One partition of one model finished (`error` when it failed or was skipped).
    fn finished(&self, _asset: &str, _key: &str, _error: Option<&str>) {}
}

/// One model's progress in a backfill.
#[derive(Debug, Clone, Serialize)]
pub struct AssetProgress {
    /// The model.
    pub asset: String,
    /// Partitions to build.
    pub planned: u64,
    /// Partitions built.
    pub done: u64,
}

/// A backfill's state: its record, counts, and the failed partitions.
#[derive(Debug, Clone, Serialize)]
pub struct BackfillProgress {
    /// The backfill.
    #[serde(flatten)]
    pub record: BackfillRecord,
    /// Partitions to build, over all models.
    pub total: u64,
    /// Partitions built.
    pub done: u64,
    /// Partitions that failed (or were skipped after an upstream failure) in the latest attempt.
    pub failed: u64,
    /// Per model.
    pub assets: Vec<AssetProgress>,
    /// The first failures: `{asset, partition, error}`.
    pub failures: Vec<serde_json::Value>,
}

fn request_error(m: impl Into<String>) -> BackfillError {
    BackfillError::Request(m.into())
}

/// The selected time-partitioned models, upstream first.
fn partitioned_models<'a>(
    project: &'a CompiledProject,
    selection: &str,
    nodes: Option<&std::collections::BTreeSet<String>>,
) -> Result<Vec<(&'a CompiledModel, &'a TimePartition)>, BackfillError> {
    let selected = match nodes {
        Some(nodes) => nodes.clone(),
        None => sluice_core::selector::select_nodes(&project.graph, selection, project)?,
    };
    let out: Vec<_> = project
        .graph
        .topological_order()?
        .iter()
        .filter(|n| selected.contains(*n))
        .filter_map(|n| project.models.get(n))
        .filter_map(|m| m.config.time_partition.as_ref().map(|tp| (m, tp)))
        .collect();
    if out.is_empty() {
        return Err(request_error(format!(
            "no time-partitioned model in the selection `{selection}`; give a model `partition_by: {{field: ..., granularity: day}}`"
        )));
    }
    Ok(out)
}

/// Records a backfill and its plan, or finds the unfinished backfill of the same request (which is
/// then resumed). Returns the record and whether it was resumed.
pub fn plan(
    project: &CompiledProject,
    state: &StateStore,
    req: &BackfillRequest,
) -> Result<(BackfillRecord, bool), BackfillError> {
    let store = PartitionStore::new(state)?;
    let from_text = req.from.clone().unwrap_or_default();
    let to_text = req.to.clone().unwrap_or_default();
    let models = partitioned_models(project, &req.selection, req.nodes.as_ref())?;
    if let Some(r) = store.unfinished_like(&req.selection, &from_text, &to_text, req.missing)? {
        return Ok((r, true));
    }
    let now = sluice_transform::partition::now();
    let mut planned = Vec::new();
    for (m, tp) in models {
        let g = tp.granularity;
        let bad = |what: &str, e: String| request_error(format!("--{what}: {e}"));
        let from = match &req.from {
            Some(f) => g.parse(f).map_err(|e| bad("from", e))?,
            None => tp.start.ok_or_else(|| {
                request_error(format!(
                    "model `{}` has no partition_by.start; give --from",
                    m.name
                ))
            })?,
        };
        let to = match &req.to {
            Some(t) => g.parse(t).map_err(|e| bad("to", e))?,
            None => tp.current(now),
        };
        if from > to {
            return Err(request_error(format!(
                "--from {} is after --to {} (for `{}`)",
                g.key(from),
                g.key(to),
                m.name
            )));
        }
        let set = if req.missing {
            store.built(&m.name, g.as_str())?.gaps(from, to)
        } else {
            RangeSet::from_ranges([Range::new(from, to)])
        };
        planned.push((m.name.clone(), set));
    }
    let id = format!("bf-{}", new_run_id());
    let at = timestamp();
    let record = BackfillRecord {
        id,
        selection: req.selection.clone(),
        from: from_text,
        to: to_text,
        missing: req.missing,
        status: "planned".into(),
        created_at: at.clone(),
        updated_at: at,
        run_id: None,
        error: None,
    };
    store.create_backfill(&record, &planned)?;
    tracing::info!(backfill = %record.id, partitions = planned.iter().map(|(_, s)| s.count()).sum::<u64>(), "backfill planned");
    Ok((record, false))
}

/// A backfill's progress.
pub fn progress(state: &StateStore, id: &str) -> Result<Option<BackfillProgress>, StateError> {
    let store = PartitionStore::new(state)?;
    let Some(record) = store.backfill(id)? else {
        return Ok(None);
    };
    let mut assets = Vec::new();
    for asset in store.plan_assets(id)? {
        let planned = store.plan(id, &asset)?;
        let done = store.done(id, &asset)?.intersect(&planned);
        assets.push(AssetProgress {
            asset,
            planned: planned.count(),
            done: done.count(),
        });
    }
    let failures = store
        .failed(id, 50)?
        .into_iter()
        .map(|(asset, partition, error)| serde_json::json!({"asset": asset, "partition": partition, "error": error}))
        .collect();
    Ok(Some(BackfillProgress {
        total: assets.iter().map(|a| a.planned).sum(),
        done: assets.iter().map(|a| a.done).sum(),
        failed: store.failed_count(id)?,
        assets,
        failures,
        record,
    }))
}
