//! `sluice status`, `sluice lineage`: what the state database and graph know.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};

use super::load;
use crate::table;

/// Each asset: layer, rows, last success, fresh or stale, failing checks.
pub async fn status(dir: &Path) -> Result<ExitCode> {
    let ws = super::open(dir).await?;
    let mut report = sluice_serve::status::asset_status(&ws.compiled, &ws.state)?;
    sluice_serve::status::count_rows(&mut report, &ws.engine).await;
    let alerting = super::alerts::status_columns(&ws);
    let rows = report
        .iter()
        .map(|a| {
            let [freshness, incidents] = alerting.get(&a.name).cloned().unwrap_or_default();
            vec![
                a.name.clone(),
                a.layer.clone(),
                a.owner.clone().unwrap_or_default(),
                a.rows.map(|r| r.to_string()).unwrap_or_else(|| "-".into()),
                a.last_success_at.clone().unwrap_or_else(|| "never".into()),
                a.state.clone(),
                freshness,
                incidents,
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
                "owner",
                "rows",
                "last success",
                "state",
                "freshness",
                "incidents",
                "failing checks"
            ],
            rows
        )
    );
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
