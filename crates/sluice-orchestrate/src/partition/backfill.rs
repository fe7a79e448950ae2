//! Backfills: build an explicit range of partitions of the selected time-partitioned models.
//!
//! [`plan`] records a backfill and, per model, the partitions it must build: every partition from
//! `--from`'s to `--to`'s (both included), or with `--missing` only those never built. [`execute`]
//! builds them in parallel (at most `threads` at once), a model's partition only after the
//! overlapping partitions of its selected upstream models, and records each built partition at
//! once, so a backfill killed midway and executed again builds only what is not done. A partition
//! whose checks fail keeps its previous data and is reported; its downstream partitions are skipped.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use sluice_transform::partition::TimePartition;
use sluice_transform::{CompiledModel, CompiledProject, Engine};
use tokio::task::JoinSet;

use super::build::{TableLocks, build_window};
use super::ranges::{Range, RangeSet};
use super::store::{BackfillRecord, PartitionStore, timestamp};
use crate::state::{NodeRecord, RunRecord, StateError, StateStore};

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
    /// Selection (`name`, `name+`, `+name`, `tag:x`); only time-partitioned models are built.
    pub selection: String,
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
) -> Result<Vec<(&'a CompiledModel, &'a TimePartition)>, BackfillError> {
    let selected = project.graph.select(selection, project)?;
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
    let models = partitioned_models(project, &req.selection)?;
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
    let id = format!("bf-{}", crate::runner::new_run_id());
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

/// One model in an executing backfill.
struct Asset<'a> {
    model: &'a CompiledModel,
    tp: &'a TimePartition,
    /// Selected upstream models in the backfill (indices).
    upstream: Vec<usize>,
    /// Partitions left to build.
    todo: RangeSet,
    /// Finished partitions of this attempt: true = built.
    finished: HashMap<i64, bool>,
    rows: u64,
    ok: u64,
    failed: Vec<String>,
    version: Option<i64>,
}

/// Builds what is left of backfill `id`; records progress as it goes and the attempt in run history.
pub async fn execute(
    project: Arc<CompiledProject>,
    engine: Engine,
    state: Arc<StateStore>,
    id: &str,
    threads: usize,
    observer: Option<Arc<dyn BackfillObserver>>,
) -> Result<BackfillProgress, BackfillError> {
    let store = PartitionStore::new(&state)?;
    let record = store
        .backfill(id)?
        .ok_or_else(|| request_error(format!("no backfill `{id}`")))?;
    let planned_assets = store.plan_assets(id)?;
    let order = project.graph.topological_order()?;
    let mut assets: Vec<Asset<'_>> = Vec::new();
    for name in order.iter().filter(|n| planned_assets.contains(*n)) {
        let m = project.models.get(name).ok_or_else(|| {
            request_error(format!(
                "backfill `{id}` builds `{name}`, which is no longer a model"
            ))
        })?;
        let tp = m.config.time_partition.as_ref().ok_or_else(|| {
            request_error(format!(
                "backfill `{id}` builds `{name}`, which is no longer time-partitioned"
            ))
        })?;
        let todo = store.plan(id, name)?.minus(&store.done(id, name)?);
        let ancestors = project.graph.ancestors(name);
        let upstream = assets
            .iter()
            .enumerate()
            .filter(|(_, a)| ancestors.contains(&a.model.name))
            .map(|(i, _)| i)
            .collect();
        assets.push(Asset {
            model: m,
            tp,
            upstream,
            todo,
            finished: HashMap::new(),
            rows: 0,
            ok: 0,
            failed: Vec::new(),
            version: None,
        });
    }
    // Work items in time order, upstream first within the same time.
    let mut items: Vec<(i64, usize, i64)> = Vec::new();
    for (i, a) in assets.iter().enumerate() {
        let secs = a.tp.granularity.seconds();
        items.extend(a.todo.iter().map(|k| (k.saturating_mul(secs), i, k)));
    }
    items.sort_unstable();
    let total = items.len() as u64;
    let run_id = crate::runner::new_run_id();
    state.start_run(&run_id, "backfill", &record.selection, &timestamp())?;
    let _heartbeat = crate::abandon::Heartbeat::start(state.clone(), run_id.clone());
    store.set_status(id, "running", Some(&run_id), None)?;
    tracing::info!(backfill = %id, run_id = %run_id, partitions = total, "backfill started");
    if let Some(o) = &observer {
        o.started(id, total);
    }
    let started = Instant::now();
    let locks = TableLocks::default();
    let threads = threads.max(1);
    let mut pending: VecDeque<(usize, i64)> = items.into_iter().map(|(_, i, k)| (i, k)).collect();
    let mut tasks: JoinSet<(usize, i64, Result<super::build::WindowOutput, String>)> =
        JoinSet::new();
    let mut checks = (0i64, 0i64, 0i64);
    loop {
        // Start what is ready (scanning a bounded prefix unless nothing runs).
        let limit = if tasks.is_empty() { usize::MAX } else { 1024 };
        let mut i = 0;
        while i < pending.len() && i < limit && tasks.len() < threads {
            let (ai, k) = pending[i];
            match readiness(&assets, ai, k) {
                Ready::Wait => i += 1,
                Ready::Skip(why) => {
                    pending.remove(i);
                    let key = assets[ai].tp.key(k);
                    store.mark_failed(id, &assets[ai].model.name, &key, &why)?;
                    let a = &mut assets[ai];
                    a.finished.insert(k, false);
                    a.failed.push(format!("{key}: {why}"));
                    if let Some(o) = &observer {
                        o.finished(&a.model.name, &key, Some(&why));
                    }
                }
                Ready::Go => {
                    pending.remove(i);
                    let (p, e, r) = (project.clone(), engine.clone(), run_id.clone());
                    let locks = locks.clone();
                    let name = assets[ai].model.name.clone();
                    tasks.spawn(async move {
                        let Some(m) = p.models.get(&name) else {
                            return (ai, k, Err(format!("unknown model `{name}`")));
                        };
                        let Some(tp) = m.config.time_partition.as_ref() else {
                            return (ai, k, Err("not time-partitioned".into()));
                        };
                        let w = tp.window(k, k);
                        let out = build_window(&p, &e, m, tp, &w, &r, &locks)
                            .await
                            .map_err(|(err, _)| err.to_string());
                        (ai, k, out)
                    });
                }
            }
        }
        let Some(joined) = tasks.join_next().await else {
            if pending.is_empty() {
                break;
            }
            if limit == usize::MAX
                && !pending
                    .iter()
                    .any(|(ai, k)| !matches!(readiness(&assets, *ai, *k), Ready::Wait))
            {
                // Nothing runs and nothing can start: a bug, not a state to wait in.
                return Err(request_error(
                    "internal error: backfill items wait on each other",
                ));
            }
            continue;
        };
        let (ai, k, out) = match joined {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(error = %e, "backfill task failed");
                return Err(request_error(format!("internal error: {e}")));
            }
        };
        let a = &mut assets[ai];
        let key = a.tp.key(k);
        match out {
            Ok(o) => {
                store.mark_done(id, &a.model.name, a.tp.granularity.as_str(), k, &key)?;
                for c in &o.checks {
                    match c.status {
                        sluice_quality::CheckStatus::Pass => checks.0 += 1,
                        sluice_quality::CheckStatus::Warn => checks.1 += 1,
                        sluice_quality::CheckStatus::Fail => checks.2 += 1,
                    }
                }
                a.finished.insert(k, true);
                a.rows += o.rows;
                a.ok += 1;
                a.version = o.version.or(a.version);
                if let Some(ob) = &observer {
                    ob.finished(&a.model.name, &key, None);
                }
            }
            Err(e) => {
                tracing::warn!(backfill = %id, model = %a.model.name, partition = %key, error = %e, "partition failed");
                store.mark_failed(id, &a.model.name, &key, &e)?;
                a.finished.insert(k, false);
                a.failed.push(format!("{key}: {e}"));
                if let Some(ob) = &observer {
                    ob.finished(&a.model.name, &key, Some(&e));
                }
            }
        }
    }
    let failed_total: usize = assets.iter().map(|a| a.failed.len()).sum();
    let elapsed = started.elapsed();
    let mut summary = BTreeMap::new();
    for a in &assets {
        let status = if a.failed.is_empty() {
            "success"
        } else {
            "failed"
        };
        summary.insert(a.model.name.clone(), status);
        let error = (!a.failed.is_empty()).then(|| {
            let shown: Vec<&str> = a.failed.iter().take(5).map(String::as_str).collect();
            format!(
                "{} partition(s) failed: {}",
                a.failed.len(),
                shown.join("; ")
            )
        });
        state.record_node(&NodeRecord {
            run_id: run_id.clone(),
            node: a.model.name.clone(),
            kind: "model".into(),
            status: status.into(),
            attempts: 1,
            rows_in: None,
            rows_out: Some(a.rows as i64),
            rows_quarantined: None,
            started_at: record.created_at.clone().max(timestamp_ago(elapsed)),
            finished_at: timestamp(),
            duration_ms: elapsed.as_millis() as i64,
            error,
            version: a.version,
        })?;
    }
    let nodes_failed = summary.values().filter(|s| **s == "failed").count() as i64;
    let status = if failed_total == 0 {
        "success"
    } else {
        "partial"
    };
    state.finish_run(&RunRecord {
        run_id: run_id.clone(),
        command: "backfill".into(),
        selection: record.selection.clone(),
        status: status.into(),
        started_at: String::new(),
        finished_at: Some(timestamp()),
        nodes_ok: summary.len() as i64 - nodes_failed,
        nodes_failed,
        nodes_skipped: 0,
        checks_passed: checks.0,
        checks_warned: checks.1,
        checks_failed: checks.2,
    })?;
    let (bf_status, error) = if failed_total == 0 {
        ("success", None)
    } else {
        (
            "failed",
            Some(format!("{failed_total} partition(s) failed")),
        )
    };
    store.set_status(id, bf_status, Some(&run_id), error.as_deref())?;
    tracing::info!(backfill = %id, status = bf_status, seconds = elapsed.as_secs_f64(), "backfill finished");
    progress(&state, id)?.ok_or_else(|| request_error(format!("no backfill `{id}`")))
}

fn timestamp_ago(d: std::time::Duration) -> String {
    let now = chrono::Utc::now();
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| now.checked_sub_signed(d))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC)
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

enum Ready {
    Go,
    Wait,
    Skip(String),
}

/// Whether partition `k` of asset `ai` can be built: every overlapping partition of its upstream
/// models in this backfill is finished (built, or not part of it); skipped when one failed.
fn readiness(assets: &[Asset<'_>], ai: usize, k: i64) -> Ready {
    let a = &assets[ai];
    let g = a.tp.granularity;
    let start = g.start_of(k);
    let end = g.start_of(k + 1) - chrono::Duration::seconds(1);
    for &ui in &a.upstream {
        let u = &assets[ui];
        let ug = u.tp.granularity;
        for uk in ug.index_of(start)..=ug.index_of(end) {
            if !u.todo.contains(uk) {
                continue;
            }
            match u.finished.get(&uk) {
                None => return Ready::Wait,
                Some(false) => {
                    return Ready::Skip(format!(
                        "skipped: upstream `{}` partition {} did not build",
                        u.model.name,
                        ug.key(uk)
                    ));
                }
                Some(true) => {}
            }
        }
    }
    Ready::Go
}
