//! `sluice history ASSET` (the versions of an asset's table) and `sluice restore ASSET --version N`
//! (a new version with the rows of version N, recorded as a run). See docs/time-travel.md.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use chrono::{SecondsFormat, Utc};
use serde_json::Map;
use sluice_lake::{Lake, RUN_ID_KEY, TableId, VersionInfo, parse_timestamp};
use sluice_orchestrate::{NodeRecord, RunRecord, StateStore, new_run_id};
use sluice_transform::time_travel::asset_table;

use super::load;
use crate::table;

/// `sluice history`: newest version first, at most `limit`.
pub async fn history(dir: &Path, asset: &str, limit: usize, json: bool) -> Result<ExitCode> {
    let compiled = load(dir)?;
    let id = asset_table(&compiled, asset)?;
    let lake = super::open_lake(&compiled)?;
    let mut versions = lake.versions(&id).await?;
    versions.reverse();
    versions.truncate(limit);
    if json {
        println!("{}", serde_json::to_string_pretty(&versions)?);
        return Ok(ExitCode::SUCCESS);
    }
    let count = |n: Option<u64>| n.map_or_else(|| "?".to_string(), |n| n.to_string());
    let rows: Vec<Vec<String>> = versions
        .iter()
        .map(|v| {
            vec![
                v.version.to_string(),
                v.timestamp
                    .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
                    .unwrap_or_default(),
                operation(v),
                v.run_id.clone().unwrap_or_default(),
                count(v.rows_added),
                count(v.rows_removed),
                count(v.rows_total),
            ]
        })
        .collect();
    println!("{id}");
    println!(
        "{}",
        table::render(
            &[
                "version",
                "committed",
                "operation",
                "run",
                "+rows",
                "-rows",
                "rows",
            ],
            rows
        )
    );
    Ok(ExitCode::SUCCESS)
}

/// `RESTORE (of 3)` for a restore, else the operation.
fn operation(v: &VersionInfo) -> String {
    let op = v.operation.clone().unwrap_or_default();
    match v.restored_version {
        Some(of) => format!("{op} (of {of})"),
        None => op,
    }
}

/// Which version `sluice restore` brings back.
#[derive(Debug, Clone)]
pub enum RestoreTarget {
    /// `--version N`.
    Version(u64),
    /// `--timestamp TIME`: the version current then.
    Timestamp(String),
}

/// `sluice restore`: commits the rows of the target version as a new version, as a run of its own
/// (command `restore`) with the asset as its one node.
pub async fn restore(dir: &Path, asset: &str, target: RestoreTarget) -> Result<ExitCode> {
    let compiled = load(dir)?;
    let id = asset_table(&compiled, asset)?;
    let node = sluice_core::exports::resolve_asset(
        asset,
        &compiled.project.sources,
        &compiled.project.models,
    )
    .unwrap_or_else(|| asset.to_string());
    let lake = super::open_lake(&compiled)?;
    let version = match &target {
        RestoreTarget::Version(v) => *v,
        RestoreTarget::Timestamp(text) => {
            let at = parse_timestamp(text).ok_or_else(|| {
                anyhow!("--timestamp `{text}`: use '2026-01-01 10:00[:00]' (UTC) or RFC 3339")
            })?;
            lake.version_at(&id, at).await?
        }
    };
    let location = compiled.project.state_location()?;
    let state = StateStore::open(&location)
        .with_context(|| format!("opening the state database {location}"))?;
    let run_id = new_run_id();
    let started_at = now();
    let started = Instant::now();
    state.start_run(&run_id, "restore", &node, &started_at)?;
    let mut metadata = Map::new();
    metadata.insert(RUN_ID_KEY.into(), run_id.clone().into());
    let outcome = lake.restore(&id, version, metadata).await;
    let rows = match &outcome {
        Ok(o) => rows_at(&lake, &id, o.version).await,
        Err(_) => None,
    };
    let ok = outcome.is_ok();
    state.record_node(&NodeRecord {
        run_id: run_id.clone(),
        node: node.clone(),
        kind: if compiled.models.contains_key(&node) {
            "model"
        } else {
            "source"
        }
        .into(),
        status: if ok { "success" } else { "failed" }.into(),
        attempts: 1,
        rows_in: None,
        rows_out: rows.and_then(|r| i64::try_from(r).ok()),
        rows_quarantined: None,
        started_at: started_at.clone(),
        finished_at: now(),
        duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        error: outcome.as_ref().err().map(ToString::to_string),
        version: outcome
            .as_ref()
            .ok()
            .and_then(|o| i64::try_from(o.version).ok()),
    })?;
    state.finish_run(&RunRecord {
        run_id: run_id.clone(),
        command: "restore".into(),
        selection: node.clone(),
        status: if ok { "success" } else { "failed" }.into(),
        started_at,
        finished_at: Some(now()),
        nodes_ok: i64::from(ok),
        nodes_failed: i64::from(!ok),
        nodes_skipped: 0,
        checks_passed: 0,
        checks_warned: 0,
        checks_failed: 0,
    })?;
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => bail!("Run {run_id} failed: {e}"),
    };
    println!(
        "Run {run_id} success: {id} restored to version {} as version {} ({} file(s) restored, {} \
         removed{})",
        outcome.restored,
        outcome.version,
        outcome.files_restored,
        outcome.files_removed,
        rows.map(|r| format!("; {r} rows")).unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

/// The rows of `id` at `version`, as the log tells (for the run's node record).
async fn rows_at(lake: &Lake, id: &TableId, version: u64) -> Option<u64> {
    let versions = lake.versions(id).await.ok()?;
    versions
        .iter()
        .find(|v| v.version == version)
        .and_then(|v| v.rows_total)
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}
