//! Building partitions of a time-partitioned model: stage one window, run the model's checks on it,
//! publish it (write, audit, publish per partition).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sluice_quality::CheckResult;
use sluice_transform::materialize::partition::{
    WindowWrite, has_partitioned_table, publish_window, stage_window,
};
use sluice_transform::partition::{PARTITION_COLUMN, PartitionWindow, TimePartition};
use sluice_transform::{CompiledModel, CompiledProject, Engine, ModelRun};

use crate::checks::{failures, run_checks};
use crate::node::{BuiltPartitions, NodeError, NodeOutput};
use crate::ranges::{Range, RangeSet};

/// What building one window did.
#[derive(Debug, Clone, Default)]
pub struct WindowOutput {
    /// Rows published.
    pub rows: u64,
    /// Delta version committed.
    pub version: Option<i64>,
    /// Check results.
    pub checks: Vec<CheckResult>,
    /// The partitions now built: the window.
    pub built: RangeSet,
    /// For a window over several partitions: the first one holding rows.
    pub first_with_rows: Option<i64>,
}

/// One publish at a time per model table: parallel partition builds stage and check in parallel,
/// but commit (and refresh the engine's view of the table) one after the other.
#[derive(Default, Clone)]
pub struct TableLocks {
    locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl TableLocks {
    fn get(&self, model: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut m = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(model.to_string()).or_default().clone()
    }
}

/// Builds partitions `lo..=hi` of `model` as one window: the whole table is replaced when
/// `whole_table` (first build, full refresh), else exactly that one partition (`lo == hi`).
pub async fn build_window(
    project: &CompiledProject,
    engine: &Engine,
    model: &CompiledModel,
    tp: &TimePartition,
    window: &PartitionWindow,
    run_id: &str,
    locks: &TableLocks,
) -> Result<WindowOutput, (NodeError, Vec<CheckResult>)> {
    let run = ModelRun {
        engine,
        project,
        model,
        run_id,
        txn_version: 0,
        full_refresh: false,
    };
    let partitioned = has_partitioned_table(&run)
        .await
        .map_err(|e| (NodeError::from(e), Vec::new()))?;
    let staged = stage_window(&run, tp, window, partitioned)
        .await
        .map_err(|e| (NodeError::from(e), Vec::new()))?;
    let checks = match run_checks(project, engine, &model.name, &staged.relation).await {
        Ok(c) => c,
        Err(e) => {
            engine.deregister(&staged.relation);
            return Err((e, Vec::new()));
        }
    };
    let failed = failures(&checks);
    if !failed.is_empty() {
        engine.deregister(&staged.relation);
        return Err((NodeError::ChecksFailed(failed), checks));
    }
    let built = RangeSet::from_ranges([Range::new(window.first, window.last)]);
    let first_with_rows = if window.single() {
        None
    } else {
        partitions_in(&staged.batches, tp).min()
    };
    let lock = locks.get(&model.name);
    let _guard = lock.lock().await;
    // Decided under the lock: the first publish of a new table creates it partitioned; a table
    // built before the model was partitioned is replaced whole once.
    let id = sluice_transform::relation::model_table(model.layer, &model.name);
    let exists = engine
        .lake()
        .exists(&id)
        .await
        .map_err(|e| (NodeError::Transform(e.into()), checks.clone()))?;
    let partitioned_now = exists
        && has_partitioned_table(&run)
            .await
            .map_err(|e| (NodeError::from(e), checks.clone()))?;
    let how = if window.single() && (partitioned_now || !exists) {
        WindowWrite::ReplacePartition
    } else {
        WindowWrite::ReplaceTable
    };
    let published = publish_window(&run, staged, window, how)
        .await
        .map_err(|e| (NodeError::from(e), checks.clone()))?;
    Ok(WindowOutput {
        rows: published.rows,
        version: published.version,
        checks,
        built,
        first_with_rows,
    })
}

/// The partitions named in the `_partition` column of staged rows.
fn partitions_in<'a>(
    batches: &'a [arrow::array::RecordBatch],
    tp: &'a TimePartition,
) -> impl Iterator<Item = i64> + 'a {
    batches.iter().flat_map(move |b| {
        let keys: Vec<i64> = b
            .column_by_name(PARTITION_COLUMN)
            .and_then(|c| arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8).ok())
            .and_then(|c| {
                c.as_any()
                    .downcast_ref::<arrow::array::StringArray>()
                    .map(|a| {
                        a.iter()
                            .flatten()
                            .filter_map(|k| tp.granularity.parse(k).ok())
                            .collect()
                    })
            })
            .unwrap_or_default();
        keys
    })
}

/// A plain run of a time-partitioned model: its first build (or a full refresh) builds every
/// partition from `start` up to the current one in one pass; later runs rebuild the `lookback` most
/// recent partitions, one by one.
pub async fn build_recent(
    project: &CompiledProject,
    engine: &Engine,
    model: &CompiledModel,
    tp: &TimePartition,
    run_id: &str,
    full_refresh: bool,
) -> Result<NodeOutput, (NodeError, Vec<CheckResult>)> {
    let now = sluice_transform::partition::now();
    let (lo, hi) = tp.recent(now);
    let run = ModelRun {
        engine,
        project,
        model,
        run_id,
        txn_version: 0,
        full_refresh,
    };
    let partitioned = has_partitioned_table(&run)
        .await
        .map_err(|e| (NodeError::from(e), Vec::new()))?;
    let locks = TableLocks::default();
    let mut windows = Vec::new();
    if full_refresh || !partitioned {
        let first = tp.start.unwrap_or(0).min(hi);
        windows.push(tp.window(first, hi));
    } else {
        windows.extend((lo..=hi).map(|k| tp.window(k, k)));
    }
    let mut out = NodeOutput::default();
    let mut built = RangeSet::new();
    let mut rows = 0;
    for w in &windows {
        let mut o = build_window(project, engine, model, tp, w, run_id, &locks).await?;
        // A whole-table build over an open start records from the first partition holding rows.
        if !w.single() && tp.start.is_none() {
            let first = o.first_with_rows.unwrap_or(hi).min(hi);
            o.built = RangeSet::from_ranges([Range::new(first, hi)]);
        }
        rows += o.rows;
        out.version = o.version.or(out.version);
        out.checks.extend(o.checks);
        for r in o.built.ranges() {
            built.insert(r.lo, r.hi);
        }
    }
    out.rows_out = Some(rows);
    out.partitions = Some(BuiltPartitions {
        grain: tp.granularity.as_str().to_string(),
        built,
    });
    Ok(out)
}
