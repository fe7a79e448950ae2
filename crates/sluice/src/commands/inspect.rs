//! `sluice status`, `sluice lineage`: what the state database and graph know.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};

use sluice_transform::lineage::project::{ProjectLineage, Step};

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

/// Prints the upstream and downstream of an asset, or with `ASSET.COLUMN` of one column (its column
/// lineage, read from the models' query plans).
pub async fn lineage(dir: &Path, target: &str, json: bool) -> Result<ExitCode> {
    let compiled = load(dir)?;
    if compiled.graph.contains(target) {
        println!("upstream of {target}:");
        for a in compiled.graph.ancestors(target) {
            println!("  {a}");
        }
        println!("downstream of {target}:");
        for a in compiled.graph.descendants(target) {
            println!("  {a}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    // `ASSET.COLUMN`: the asset is everything before the last dot (source assets have a dot of
    // their own, `shop.orders.id`).
    if let Some((asset, column)) = target.rsplit_once('.')
        && compiled.graph.contains(asset)
    {
        return column_lineage(dir, asset, column, json).await;
    }
    let hint = sluice_core::graph::suggest(target, compiled.graph.nodes())
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default();
    bail!("no asset `{target}`{hint}; give an asset, or ASSET.COLUMN for a column's lineage")
}

/// `sluice lineage ASSET.COLUMN`: the columns it is computed from and the columns computed from it.
async fn column_lineage(dir: &Path, asset: &str, column: &str, json: bool) -> Result<ExitCode> {
    let ws = super::open(dir).await?;
    let lineage = ProjectLineage::compute(&ws.engine, &ws.compiled).await;
    if let Some(e) = lineage.errors.get(asset) {
        bail!("cannot read the column lineage of `{asset}`: {e}");
    }
    let known = match lineage.assets.get(asset) {
        Some(a) => a.columns.iter().any(|c| c.name == column),
        None => source_has(&ws, asset, column).await,
    };
    if !known {
        match lineage.assets.get(asset) {
            Some(a) => {
                let names: Vec<&str> = a.columns.iter().map(|c| c.name.as_str()).collect();
                bail!(
                    "`{asset}` has no column `{column}`; its columns: {}",
                    names.join(", ")
                );
            }
            None => bail!("`{asset}` has no column `{column}` (or it is not ingested yet)"),
        }
    }
    let (upstream, downstream) = (
        lineage.upstream(asset, column),
        lineage.downstream(asset, column),
    );
    if json {
        let out = serde_json::json!({
            "asset": asset, "column": column, "upstream": upstream, "downstream": downstream,
        });
        println!("{out}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{asset}.{column}");
    print_steps("computed from:", &upstream);
    print_steps("read by:", &downstream);
    for (model, e) in &lineage.errors {
        eprintln!("warning: lineage of `{model}` unknown: {e}");
    }
    Ok(ExitCode::SUCCESS)
}

fn print_steps(title: &str, steps: &[Step]) {
    println!("  {title}");
    if steps.is_empty() {
        println!("    (nothing)");
    }
    for s in steps {
        let how: Vec<&str> = s.edge.transformations.iter().map(|t| t.as_str()).collect();
        println!(
            "{}{}.{}  {}",
            "  ".repeat(s.depth + 1),
            s.edge.asset,
            s.edge.column,
            how.join(", ")
        );
    }
}

/// Whether an ingested source table has `column`.
async fn source_has(ws: &super::Workspace, asset: &str, column: &str) -> bool {
    let Some(src) = ws.compiled.sources.get(asset) else {
        return false;
    };
    let relation = sluice_transform::source_relation(&src.source, &src.table);
    match ws
        .engine
        .plan(&format!("SELECT * FROM {relation} LIMIT 0"))
        .await
    {
        Ok(df) => df.schema().fields().iter().any(|f| f.name() == column),
        Err(_) => false,
    }
}
