//! Table maintenance by policy: which tables, when, and the record of what was done.
//!
//! `sluice maintain` runs [`maintain`] over the selected assets by hand; after every run that
//! published something, [`after_run`] maintains the tables whose policy
//! (`maintenance:` in sluice.yml, [`sluice_core::maintenance`]) says they are due: `after_commits`
//! commits since the last compaction, or `after_small_files` small files. Either way the work is
//! recorded as a run of command `maintain`, one node `maintain:<asset>` per table (status, files
//! before and after as rows in and out, the new version, and the report as the node's log), so that
//! `sluice runs` and the UI show it. The lake operations are [`sluice_lake::maintain`] and
//! [`sluice_lake::retention`].

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, SecondsFormat, Utc};
use sluice_core::NodeId;
use sluice_core::maintenance::{BRONZE_DATE_COLUMN, ResolvedPolicy, RetentionAction};
use sluice_lake::{
    ExpireReport, ExpireSpec, Lake, MaintainReport, MaintainSpec, TableId, VacuumSpec,
};
use sluice_transform::CompiledProject;
use sluice_transform::relation::model_table;

use crate::control::LogLine;
use crate::state::{NodeRecord, RunRecord, StateError, StateStore};
use crate::summary::new_run_id;

/// One table to maintain.
#[derive(Debug, Clone)]
pub struct Target {
    /// The asset's name in the graph.
    pub asset: String,
    /// Its lake table.
    pub table: TableId,
    /// Its resolved policy.
    pub policy: ResolvedPolicy,
}

/// How a maintenance pass runs.
#[derive(Debug, Clone, Default)]
pub struct MaintainOptions {
    /// Report, change nothing, record nothing.
    pub dry_run: bool,
    /// Only the tables whose policy says they are due (after runs); by hand: every table.
    pub only_due: bool,
    /// The selection as written (recorded with the run).
    pub selection: String,
    /// VACUUM's "now" (`None`: the clock); tests move it forward.
    pub now: Option<DateTime<Utc>>,
}

/// What happened to one table.
#[derive(Debug, Clone)]
pub struct TableOutcome {
    /// The target.
    pub asset: String,
    /// Its table.
    pub table: TableId,
    /// Why it was maintained when only due tables are (`after_commits`, `after_small_files`).
    pub reason: Option<String>,
    /// Compaction, checkpoint and VACUUM (`None`: the table does not exist yet).
    pub report: Option<MaintainReport>,
    /// Bronze retention, when configured.
    pub expired: Option<ExpireReport>,
    /// The error that stopped the table's maintenance.
    pub error: Option<String>,
}

/// A maintenance pass over several tables.
#[derive(Debug, Clone)]
pub struct MaintenanceRun {
    /// The run recorded (`None` for a dry run, or when no table was due).
    pub run_id: Option<String>,
    /// Each table maintained (or, dry, that would be).
    pub tables: Vec<TableOutcome>,
}

/// The tables of `nodes` (every source table and model when `None`) with their policies.
pub fn targets(project: &CompiledProject, nodes: Option<&BTreeSet<String>>) -> Vec<Target> {
    let config = &project.project.config.maintenance;
    project
        .graph
        .nodes()
        .filter(|n| nodes.is_none_or(|set| set.contains(*n)))
        .filter_map(|node| {
            let table = match project.node_id(node)? {
                NodeId::SourceTable { source, table } => TableId::bronze(&source, &table),
                NodeId::Model(name) => {
                    let model = project.models.get(&name)?;
                    model_table(model.layer, &model.name)
                }
                NodeId::Export(_) => return None,
            };
            let policy = config.resolve(table.layer.as_str(), node);
            Some(Target {
                asset: node.to_string(),
                table,
                policy,
            })
        })
        .collect()
}

/// The bloom filter columns of every table whose policy declares some (for
/// [`Lake::with_bloom_filters`], so that every write carries them).
pub fn bloom_filters(
    project: &CompiledProject,
) -> std::collections::BTreeMap<TableId, Vec<String>> {
    targets(project, None)
        .into_iter()
        .filter(|t| !t.policy.bloom_filter_columns.is_empty())
        .map(|t| (t.table, t.policy.bloom_filter_columns))
        .collect()
}

/// The lake spec of a policy.
pub fn spec_of(policy: &ResolvedPolicy, dry_run: bool, now: Option<DateTime<Utc>>) -> MaintainSpec {
    MaintainSpec {
        compact: true,
        target_file_size: policy.target_file_size,
        small_file_size: policy.small_file_size,
        zorder_by: policy.zorder_by.clone(),
        bloom_filter_columns: policy.bloom_filter_columns.clone(),
        checkpoint_interval: Some(policy.checkpoint_interval),
        vacuum: Some(VacuumSpec {
            retention: policy.vacuum_retention,
            min_retention: policy.min_vacuum_retention,
            now,
        }),
        dry_run,
        metadata: serde_json::Map::new(),
    }
}

/// Why `target` is due for maintenance under its policy, or `None`.
pub async fn due(lake: &Lake, target: &Target) -> Result<Option<String>, sluice_lake::LakeError> {
    let policy = &target.policy;
    if let Some(n) = policy.after_commits {
        let commits = lake.commits_since_compaction(&target.table, n).await?;
        if commits >= n {
            return Ok(Some(format!(
                "{commits} commits since the last compaction (after_commits: {n})"
            )));
        }
    }
    if let Some(n) = policy.after_small_files
        && let Some(stats) = lake
            .file_stats(&target.table, policy.small_file_size)
            .await?
        && stats.small_files >= n
    {
        return Ok(Some(format!(
            "{} small files (after_small_files: {n})",
            stats.small_files
        )));
    }
    Ok(None)
}

/// Maintains `targets` (only those due, with `only_due`) and records the pass as a `maintain` run.
/// A table that fails is reported and recorded; the others still run.
pub async fn maintain(
    project: &CompiledProject,
    lake: &Lake,
    state: &StateStore,
    targets: &[Target],
    opts: &MaintainOptions,
) -> Result<MaintenanceRun, StateError> {
    let mut work = Vec::new();
    for target in targets {
        if !opts.only_due {
            work.push((target, None));
            continue;
        }
        match due(lake, target).await {
            Ok(Some(reason)) => work.push((target, Some(reason))),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(table = %target.table, error = %e, "cannot tell whether maintenance is due")
            }
        }
    }
    if work.is_empty() {
        return Ok(MaintenanceRun {
            run_id: None,
            tables: Vec::new(),
        });
    }
    let record = !opts.dry_run;
    let run_id = new_run_id();
    let started = now();
    if record {
        state.start_run(&run_id, "maintain", &opts.selection, &started)?;
    }
    let mut tables = Vec::new();
    for (target, reason) in work {
        let began = Instant::now();
        let began_at = now();
        let mut outcome = TableOutcome {
            asset: target.asset.clone(),
            table: target.table.clone(),
            reason,
            report: None,
            expired: None,
            error: None,
        };
        let mut spec = spec_of(&target.policy, opts.dry_run, opts.now);
        spec.metadata
            .insert("sluice.run_id".into(), run_id.clone().into());
        match lake.maintain(&target.table, &spec).await {
            Ok(report) => outcome.report = report,
            Err(e) => outcome.error = Some(e.to_string()),
        }
        if outcome.error.is_none()
            && let Some(retention) = &target.policy.retention
        {
            match expire(project, lake, target, retention, opts).await {
                Ok(expired) => outcome.expired = expired,
                Err(e) => outcome.error = Some(e),
            }
        }
        if record && (outcome.report.is_some() || outcome.error.is_some()) {
            record_table(state, &run_id, &outcome, &began_at, began.elapsed())?;
        }
        tables.push(outcome);
    }
    if record {
        let failed = tables.iter().filter(|t| t.error.is_some()).count() as i64;
        let ok = tables
            .iter()
            .filter(|t| t.report.is_some() && t.error.is_none())
            .count() as i64;
        state.finish_run(&RunRecord {
            run_id: run_id.clone(),
            command: "maintain".into(),
            selection: opts.selection.clone(),
            status: match (ok, failed) {
                (_, 0) => "success",
                (0, _) => "failed",
                _ => "partial",
            }
            .into(),
            started_at: started,
            finished_at: Some(now()),
            nodes_ok: ok,
            nodes_failed: failed,
            nodes_skipped: 0,
            checks_passed: 0,
            checks_warned: 0,
            checks_failed: 0,
        })?;
    }
    Ok(MaintenanceRun {
        run_id: record.then_some(run_id),
        tables,
    })
}

/// After a run: maintains the published tables of `published` whose policy says they are due.
/// Never fails the run: problems are logged.
pub async fn after_run(
    project: &CompiledProject,
    lake: &Lake,
    state: &StateStore,
    published: &BTreeSet<String>,
) -> Option<MaintenanceRun> {
    let due: Vec<Target> = targets(project, Some(published))
        .into_iter()
        .filter(|t| t.policy.is_automatic())
        .collect();
    if due.is_empty() {
        return None;
    }
    let opts = MaintainOptions {
        only_due: true,
        selection: "(policy)".into(),
        ..MaintainOptions::default()
    };
    match maintain(project, lake, state, &due, &opts).await {
        Ok(run) => Some(run),
        Err(e) => {
            tracing::warn!(error = %e, "cannot record table maintenance");
            None
        }
    }
}

/// Bronze retention for one table: the cutoff is today minus `days`.
async fn expire(
    project: &CompiledProject,
    lake: &Lake,
    target: &Target,
    retention: &sluice_core::maintenance::RetentionConfig,
    opts: &MaintainOptions,
) -> Result<Option<ExpireReport>, String> {
    let today = opts.now.unwrap_or_else(Utc::now).date_naive();
    let before = today - chrono::Duration::days(i64::from(retention.days));
    let cold = match (retention.action, &retention.cold_location) {
        (RetentionAction::Move, Some(location)) => {
            // A cold location in an object store is reached with the project's lake_options
            // (the same endpoint and credentials as the lake; ignored for a local folder).
            let location = resolve_location(project.project.root.as_path(), location);
            let options = &project.project.config.lake_options;
            Some(Lake::open_with(&location, options).map_err(|e| format!("cold location: {e}"))?)
        }
        (RetentionAction::Move, None) => {
            return Err("retention `action: move` needs a `cold_location`".into());
        }
        (RetentionAction::Delete, _) => None,
    };
    let spec = ExpireSpec {
        column: BRONZE_DATE_COLUMN.into(),
        before,
        cold,
        dry_run: opts.dry_run,
    };
    lake.expire_partitions(&target.table, &spec)
        .await
        .map_err(|e| e.to_string())
}

/// A location relative to the project folder (URLs as they are).
fn resolve_location(root: &Path, location: &str) -> String {
    if location.contains("://") || Path::new(location).is_absolute() {
        return location.to_string();
    }
    PathBuf::from(root)
        .join(location)
        .to_string_lossy()
        .into_owned()
}

fn record_table(
    state: &StateStore,
    run_id: &str,
    outcome: &TableOutcome,
    began_at: &str,
    took: std::time::Duration,
) -> Result<(), StateError> {
    let node = format!("maintain:{}", outcome.asset);
    let report = outcome.report.as_ref();
    state.record_node(&NodeRecord {
        run_id: run_id.to_string(),
        node: node.clone(),
        kind: "maintenance".into(),
        status: if outcome.error.is_some() {
            "failed"
        } else {
            "success"
        }
        .into(),
        attempts: 1,
        rows_in: report.map(|r| r.before.files as i64),
        rows_out: report.map(|r| r.after.files as i64),
        rows_quarantined: None,
        started_at: began_at.to_string(),
        finished_at: now(),
        duration_ms: took.as_millis() as i64,
        error: outcome.error.clone(),
        version: report.map(|r| r.version_after as i64),
    })?;
    let mut lines = Vec::new();
    if let Some(reason) = &outcome.reason {
        lines.push(LogLine::now("info", format!("due: {reason}")));
    }
    if let Some(r) = report {
        lines.push(LogLine::now("info", describe(r)));
    }
    if let Some(e) = &outcome.expired {
        lines.push(LogLine::now("info", describe_expired(e)));
    }
    state.append_node_log(run_id, &node, &lines)
}

/// One line on what maintenance did to a table.
pub fn describe(r: &MaintainReport) -> String {
    let mut parts = vec![format!(
        "files {} -> {} ({} -> {} bytes)",
        r.before.files, r.after.files, r.before.bytes, r.after.bytes
    )];
    if r.files_compacted > 0 {
        let how = if r.zordered_by.is_empty() {
            "compacted".to_string()
        } else {
            format!("z-ordered by {}", r.zordered_by.join(", "))
        };
        parts.push(format!(
            "{how}: {} files into {}",
            r.files_compacted, r.files_written
        ));
    }
    if let Some(v) = r.checkpoint {
        parts.push(format!("checkpoint at version {v}"));
    }
    parts.push(format!(
        "vacuumed {} files ({} bytes, {} versions)",
        r.vacuumed_files, r.vacuumed_bytes, r.versions_vacuumed
    ));
    parts.push(format!(
        "version {} -> {}",
        r.version_before, r.version_after
    ));
    parts.join("; ")
}

/// One line on what retention did to a table.
pub fn describe_expired(e: &ExpireReport) -> String {
    if e.rows_moved > 0 {
        format!(
            "retention: {} rows moved to the cold lake, {} files removed",
            e.rows_moved, e.files_removed
        )
    } else {
        format!(
            "retention: {} rows expired, {} files removed",
            e.rows, e.files_removed
        )
    }
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

#[cfg(test)]
#[path = "maintain_tests.rs"]
mod tests;
