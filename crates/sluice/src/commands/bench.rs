//! `sluice bench`: each stage's throughput on generated ShopFlow data, as JSON.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::json;
use sluice_ingest::generator::{GeneratorConfig, generate};
use sluice_orchestrate::{NodeStatus, RunOptions};

use super::demo::write_example;
use super::open;

/// Generates, ingests, transforms and checks ShopFlow at `scale`, timing each stage.
pub async fn bench(
    scale: f64,
    seed: u64,
    dir: Option<&Path>,
    serving: Option<super::bench_serve::ServeBench>,
) -> Result<ExitCode> {
    let temp;
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => {
            temp = tempfile::tempdir().context("creating a temporary folder")?;
            temp.path().to_path_buf()
        }
    };
    write_example(&dir)?;
    let t = Instant::now();
    let gen_report = generate(&GeneratorConfig { scale, seed }, &dir.join("data"))?;
    let gen_secs = t.elapsed().as_secs_f64();
    let gen_rows = gen_report.customers
        + gen_report.products
        + gen_report.orders
        + gen_report.order_items
        + gen_report.payments
        + gen_report.events
        + gen_report.crm_accounts;

    let ws = open(&dir).await?;
    let sources: Vec<String> = ws.compiled.sources.keys().cloned().collect();
    let models: Vec<String> = ws.compiled.models.keys().cloned().collect();
    let base = RunOptions {
        threads: ws.compiled.project.config.defaults.threads,
        command: "bench".into(),
        ..RunOptions::default()
    };

    let t = Instant::now();
    let ingest = sluice_orchestrate::run(
        ws.compiled.clone(),
        ws.engine.clone(),
        ws.state.clone(),
        RunOptions {
            selection: sources.join(" "),
            ..base.clone()
        },
    )
    .await?;
    let ingest_secs = t.elapsed().as_secs_f64();
    let ingest_rows: u64 = ingest.nodes.iter().filter_map(|n| n.output.rows_out).sum();

    let t = Instant::now();
    let transform = sluice_orchestrate::run(
        ws.compiled.clone(),
        ws.engine.clone(),
        ws.state.clone(),
        RunOptions {
            selection: models.join(" "),
            ..base.clone()
        },
    )
    .await?;
    let transform_secs = t.elapsed().as_secs_f64();
    let transform_rows: u64 = transform
        .nodes
        .iter()
        .filter_map(|n| n.output.rows_out)
        .sum();

    let t = Instant::now();
    let check = sluice_orchestrate::run(
        ws.compiled.clone(),
        ws.engine.clone(),
        ws.state.clone(),
        RunOptions {
            selection: models.join(" "),
            checks_only: true,
            ..base
        },
    )
    .await?;
    let check_secs = t.elapsed().as_secs_f64();
    let checks_run = check.checks().count();

    let per_sec = |rows: u64, secs: f64| if secs > 0.0 { rows as f64 / secs } else { 0.0 };
    let failed = ingest.count(NodeStatus::Failed) + transform.count(NodeStatus::Failed);
    let mut report = json!({
        "scale": scale,
        "seed": seed,
        "stages": {
            "generate": {"rows": gen_rows, "seconds": gen_secs, "rows_per_sec": per_sec(gen_rows, gen_secs)},
            "ingest": {"rows": ingest_rows, "seconds": ingest_secs, "rows_per_sec": per_sec(ingest_rows, ingest_secs)},
            "transform": {"rows": transform_rows, "seconds": transform_secs, "rows_per_sec": per_sec(transform_rows, transform_secs), "includes": "staging, write-audit-publish checks and Delta commits"},
            "check": {"rows": transform_rows, "checks": checks_run, "seconds": check_secs, "rows_per_sec": per_sec(transform_rows, check_secs)},
        },
        "failed_nodes": failed,
    });
    if let Some(settings) = &serving {
        report["serve"] = super::bench_serve::run(&ws, settings).await?;
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
