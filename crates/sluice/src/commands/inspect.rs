//! `sluice status`, `sluice runs`, `sluice lineage`: what the state database and graph know.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};
use sluice_orchestrate::StateStore;

use super::load;
use crate::table;

/// Each asset: layer, rows, last success, fresh or stale, failing checks.
pub async fn status(dir: &Path) -> Result<ExitCode> {
    let ws = super::open(dir).await?;
    let mut report = sluice_serve::status::asset_status(&ws.compiled, &ws.state)?;
    sluice_serve::status::count_rows(&mut report, &ws.engine).await;
    let rows = report
        .iter()
        .map(|a| {
            vec![
                a.name.clone(),
                a.layer.clone(),
                a.rows.map(|r| r.to_string()).unwrap_or_else(|| "-".into()),
                a.last_success_at.clone().unwrap_or_else(|| "never".into()),
                a.state.clone(),
                if a.failing_checks.is_empty() {
                    String::new()
                } else {
                    a.failing_checks.join(", ")
                },
            ]
        })
        .collect();
    println!(
        "{}",
        table::render(
            &[
                "asset",
                "layer",
                "rows",
                "last success",
                "state",
                "failing checks"
            ],
            rows
        )
    );
    Ok(ExitCode::SUCCESS)
}

/// Lists runs, or shows one run node by node.
pub fn runs(dir: &Path, show: Option<&str>, limit: usize) -> Result<ExitCode> {
    let compiled = load(dir)?;
    let state = StateStore::open(&compiled.project.state_path())?;
    match show {
        None => {
            let rows = state
                .runs(limit)?
                .into_iter()
                .map(|r| {
                    vec![
                        r.run_id,
                        r.command,
                        r.status,
                        r.started_at,
                        format!("{}/{}/{}", r.nodes_ok, r.nodes_failed, r.nodes_skipped),
                        format!(
                            "{}/{}/{}",
                            r.checks_passed, r.checks_warned, r.checks_failed
                        ),
                    ]
                })
                .collect();
            println!(
                "{}",
                table::render(
                    &[
                        "run",
                        "command",
                        "status",
                        "started",
                        "ok/failed/skipped",
                        "checks pass/warn/fail"
                    ],
                    rows
                )
            );
        }
        Some(id) => {
            if state.run(id)?.is_none() {
                bail!("no run `{id}`; `sluice runs` lists them");
            }
            let rows = state
                .nodes_of_run(id)?
                .into_iter()
                .map(|n| {
                    vec![
                        n.node,
                        n.kind,
                        n.status,
                        n.attempts.to_string(),
                        n.rows_out.map(|r| r.to_string()).unwrap_or_default(),
                        format!("{} ms", n.duration_ms),
                        n.error.unwrap_or_default(),
                    ]
                })
                .collect();
            println!(
                "{}",
                table::render(
                    &[
                        "node", "kind", "status", "attempts", "rows", "time", "error"
                    ],
                    rows
                )
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the upstream and downstream of an asset.
pub fn lineage(dir: &Path, asset: &str) -> Result<ExitCode> {
    let compiled = load(dir)?;
    if !compiled.graph.contains(asset) {
        let hint = sluice_core::graph::suggest(asset, compiled.graph.nodes())
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        bail!("no asset `{asset}`{hint}");
    }
    println!("upstream of {asset}:");
    for a in compiled.graph.ancestors(asset) {
        println!("  {a}");
    }
    println!("downstream of {asset}:");
    for a in compiled.graph.descendants(asset) {
        println!("  {a}");
    }
    Ok(ExitCode::SUCCESS)
}
