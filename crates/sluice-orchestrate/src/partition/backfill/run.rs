//! Executing a backfill: build the planned partitions in parallel, each after the overlapping
//! partitions of its upstream models, recording each as it finishes, then the attempt as a run.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use sluice_core::NodeKind;
use sluice_quality::CheckStatus;
use sluice_transform::partition::TimePartition;
use sluice_transform::{CompiledModel, CompiledProject, Engine};
use tokio::task::JoinSet;

use super::{BackfillError, BackfillObserver, BackfillProgress, progress, request_error};
use crate::partition::build::{TableLocks, WindowOutput, build_window};
use crate::partition::store::{BackfillRecord, PartitionStore, timestamp};
use crate::ranges::RangeSet;
use crate::state::{NodeRecord, RunRecord, StateStore};
use crate::summary::new_run_id;

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
    let mut assets = load_assets(&project, &store, id)?;
    let pending = work_items(&assets);
    let total = pending.len() as u64;
    let run_id = new_run_id();
    state.start_run(&run_id, "backfill", &record.selection, &timestamp())?;
    let _heartbeat = crate::abandon::Heartbeat::start(state.clone(), run_id.clone());
    store.set_status(id, "running", Some(&run_id), None)?;
    tracing::info!(backfill = %id, run_id = %run_id, partitions = total, "backfill started");
    if let Some(o) = &observer {
        o.started(id, total);
    }
    let started = Instant::now();
    let mut builder = Builder {
        project: &project,
        engine: &engine,
        store: &store,
        id,
        run_id: &run_id,
        observer: observer.as_deref(),
        locks: TableLocks::default(),
        threads: threads.max(1),
        tasks: JoinSet::new(),
        checks: (0, 0, 0),
    };
    builder.build_all(&mut assets, pending).await?;
    let checks = builder.checks;
    let failed_total = record_attempt(&state, &record, &run_id, &assets, checks, started)?;
    let (bf_status, error) = if failed_total == 0 {
        ("success", None)
    } else {
        (
            "failed",
            Some(format!("{failed_total} partition(s) failed")),
        )
    };
    store.set_status(id, bf_status, Some(&run_id), error.as_deref())?;
    tracing::info!(backfill = %id, status = bf_status, seconds = started.elapsed().as_secs_f64(), "backfill finished");
    progress(&state, id)?.ok_or_else(|| request_error(format!("no backfill `{id}`")))
}

/// The planned models of backfill `id`, upstream first, with what is left of each.
fn load_assets<'a>(
    project: &'a CompiledProject,
    store: &PartitionStore<'_>,
    id: &str,
) -> Result<Vec<Asset<'a>>, BackfillError> {
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
    Ok(assets)
}

/// Work items `(asset, partition)` in time order, upstream first within the same time.
fn work_items(assets: &[Asset<'_>]) -> VecDeque<(usize, i64)> {
    let mut items: Vec<(i64, usize, i64)> = Vec::new();
    for (i, a) in assets.iter().enumerate() {
        let secs = a.tp.granularity.seconds();
        items.extend(a.todo.iter().map(|k| (k.saturating_mul(secs), i, k)));
    }
    items.sort_unstable();
    items.into_iter().map(|(_, i, k)| (i, k)).collect()
}

/// Check results of the built partitions: passed, warned, failed.
type CheckCounts = (i64, i64, i64);

/// Builds the work items of one backfill attempt, at most `threads` at once.
struct Builder<'a> {
    project: &'a Arc<CompiledProject>,
    engine: &'a Engine,
    store: &'a PartitionStore<'a>,
    id: &'a str,
    run_id: &'a str,
    observer: Option<&'a dyn BackfillObserver>,
    locks: TableLocks,
    threads: usize,
    tasks: JoinSet<(usize, i64, Result<WindowOutput, String>)>,
    checks: CheckCounts,
}

impl Builder<'_> {
    async fn build_all(
        &mut self,
        assets: &mut [Asset<'_>],
        mut pending: VecDeque<(usize, i64)>,
    ) -> Result<(), BackfillError> {
        loop {
            // Start what is ready (scanning a bounded prefix unless nothing runs).
            let limit = if self.tasks.is_empty() {
                usize::MAX
            } else {
                1024
            };
            self.start_ready(assets, &mut pending, limit)?;
            let Some(joined) = self.tasks.join_next().await else {
                if pending.is_empty() {
                    return Ok(());
                }
                if limit == usize::MAX
                    && !pending
                        .iter()
                        .any(|(ai, k)| !matches!(readiness(assets, *ai, *k), Ready::Wait))
                {
                    // Nothing runs and nothing can start: a bug, not a state to wait in.
                    return Err(request_error(
                        "internal error: backfill items wait on each other",
                    ));
                }
                continue;
            };
            let (ai, k, out) = joined.map_err(|e| {
                tracing::error!(error = %e, "backfill task failed");
                request_error(format!("internal error: {e}"))
            })?;
            self.finished(&mut assets[ai], k, out)?;
        }
    }

    fn start_ready(
        &mut self,
        assets: &mut [Asset<'_>],
        pending: &mut VecDeque<(usize, i64)>,
        limit: usize,
    ) -> Result<(), BackfillError> {
        let mut i = 0;
        while i < pending.len() && i < limit && self.tasks.len() < self.threads {
            let (ai, k) = pending[i];
            match readiness(assets, ai, k) {
                Ready::Wait => i += 1,
                Ready::Skip(why) => {
                    pending.remove(i);
                    self.failed(&mut assets[ai], k, &why)?;
                }
                Ready::Go => {
                    pending.remove(i);
                    self.spawn(ai, k, assets[ai].model.name.clone());
                }
            }
        }
        Ok(())
    }

    fn spawn(&mut self, ai: usize, k: i64, name: String) {
        let (p, e, r) = (
            self.project.clone(),
            self.engine.clone(),
            self.run_id.to_string(),
        );
        let locks = self.locks.clone();
        self.tasks.spawn(async move {
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

    fn finished(
        &mut self,
        a: &mut Asset<'_>,
        k: i64,
        out: Result<WindowOutput, String>,
    ) -> Result<(), BackfillError> {
        let o = match out {
            Ok(o) => o,
            Err(e) => {
                let key = a.tp.key(k);
                tracing::warn!(backfill = %self.id, model = %a.model.name, partition = %key, error = %e, "partition failed");
                return self.failed(a, k, &e);
            }
        };
        let key = a.tp.key(k);
        self.store
            .mark_done(self.id, &a.model.name, a.tp.granularity.as_str(), k, &key)?;
        for c in &o.checks {
            match c.status {
                CheckStatus::Pass => self.checks.0 += 1,
                CheckStatus::Warn => self.checks.1 += 1,
                CheckStatus::Fail => self.checks.2 += 1,
            }
        }
        a.finished.insert(k, true);
        a.rows += o.rows;
        a.ok += 1;
        a.version = o.version.or(a.version);
        if let Some(ob) = self.observer {
            ob.finished(&a.model.name, &key, None);
        }
        Ok(())
    }

    /// Partition `k` of `a` failed, or was skipped after an upstream failure (`why`).
    fn failed(&mut self, a: &mut Asset<'_>, k: i64, why: &str) -> Result<(), BackfillError> {
        let key = a.tp.key(k);
        self.store.mark_failed(self.id, &a.model.name, &key, why)?;
        a.finished.insert(k, false);
        a.failed.push(format!("{key}: {why}"));
        if let Some(o) = self.observer {
            o.finished(&a.model.name, &key, Some(why));
        }
        Ok(())
    }
}

/// Records the attempt in run history: one node per model, and the run. Returns the number of
/// partitions that failed.
fn record_attempt(
    state: &StateStore,
    record: &BackfillRecord,
    run_id: &str,
    assets: &[Asset<'_>],
    checks: CheckCounts,
    started: Instant,
) -> Result<usize, BackfillError> {
    let failed_total: usize = assets.iter().map(|a| a.failed.len()).sum();
    let elapsed = started.elapsed();
    let mut summary = BTreeMap::new();
    for a in assets {
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
            run_id: run_id.to_string(),
            node: a.model.name.clone(),
            kind: NodeKind::Model.as_str().into(),
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
        run_id: run_id.to_string(),
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
    Ok(failed_total)
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
