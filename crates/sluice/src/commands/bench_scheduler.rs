//! `sluice bench --scheduler`: the orchestration overhead alone.
//!
//! - **Dispatch**: a synthetic project of N models in a wide DAG (10 layers; each model reads two of
//!   the layer before) runs through the real run loop, leases, state database and logs, with an
//!   executor whose nodes do nothing, so the wall time is the scheduling overhead. The state database is
//!   a SQLite file in the benchmark's folder, or `--state-db` (a PostgreSQL URL, as workers share it).
//! - **Parse + validate**: a project of M models (each with a `not_null` check) is loaded, compiled
//!   (Jinja rendered, refs resolved, graph built) and validated as `sluice validate` does.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use futures::future::BoxFuture;
use sluice_orchestrate::{
    AttemptResult, NodeExecutor, NodeOutput, NodeStatus, RunOptions, StateStore,
};
use sluice_transform::Engine;

/// What to measure.
pub struct SchedulerBench {
    /// Models in the dispatch benchmark's DAG.
    pub models: usize,
    /// Models in the parse + validate benchmark.
    pub parse_models: usize,
    /// Nodes running at once.
    pub threads: usize,
}

/// Layers of the dispatch DAG.
const LAYERS: usize = 10;

/// Succeeds at once: what is left of a run is the run loop's own work.
struct NoOp;

impl NodeExecutor for NoOp {
    fn kind(&self, _node: &str) -> sluice_core::NodeKind {
        sluice_core::NodeKind::Model
    }

    fn attempt<'a>(&'a self, _node: &'a str, _attempt: u32) -> BoxFuture<'a, AttemptResult> {
        Box::pin(async { Ok(NodeOutput::default()) })
    }
}

fn name(layer: usize, i: usize) -> String {
    format!("m{layer:02}_{i:05}")
}

/// Writes a project of `n` models in [`LAYERS`] layers; a model of layer L > 0 reads models `i` and
/// `i + 1` of layer L - 1. With `checks`, each model has a `not_null` check on `id`.
fn write_project(dir: &Path, n: usize, checks: bool) -> Result<()> {
    let width = n.div_ceil(LAYERS).max(1);
    std::fs::create_dir_all(dir.join("models/silver"))?;
    std::fs::write(dir.join("sluice.yml"), "name: bench\n")?;
    let mut props = String::from("version: 2\nmodels:\n");
    for k in 0..n {
        let (layer, i) = (k / width, k % width);
        let sql = if layer == 0 {
            format!("select {i} as id")
        } else {
            let prev = (n - (layer - 1) * width).min(width);
            let (a, b) = (name(layer - 1, i % prev), name(layer - 1, (i + 1) % prev));
            format!(
                "select a.id from {{{{ ref('{a}') }}}} a join {{{{ ref('{b}') }}}} b on a.id = b.id"
            )
        };
        std::fs::write(
            dir.join(format!("models/silver/{}.sql", name(layer, i))),
            sql,
        )?;
        if checks {
            let _ = write!(
                props,
                "  - name: {}\n    columns:\n      - name: id\n        tests: [not_null]\n",
                name(layer, i)
            );
        }
    }
    if checks {
        std::fs::write(dir.join("models/silver/schema.yml"), props)?;
    }
    Ok(())
}

fn temp_or(
    dir: Option<&Path>,
    sub: &str,
) -> Result<(Option<tempfile::TempDir>, std::path::PathBuf)> {
    match dir {
        Some(d) => {
            let p = d.join(sub);
            if p.exists() {
                std::fs::remove_dir_all(&p)?;
            }
            Ok((None, p))
        }
        None => {
            let t = tempfile::tempdir().context("creating a temporary folder")?;
            let p = t.path().join(sub);
            Ok((Some(t), p))
        }
    }
}

/// Runs both measurements; prints JSON.
pub async fn bench_scheduler(b: &SchedulerBench, dir: Option<&Path>) -> Result<ExitCode> {
    // Parse + validate.
    let (_keep_parse, parse_dir) = temp_or(dir, "parse")?;
    write_project(&parse_dir, b.parse_models, true)?;
    let t = Instant::now();
    let project = sluice_core::Project::load(&parse_dir).map_err(|e| anyhow!("{e}"))?;
    let load_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let compiled = sluice_transform::compile(Arc::new(project))
        .map_err(|e| anyhow!("compiling the generated project: {e:?}"))?;
    let compile_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let (problems, _) = super::run::problems(&compiled);
    compiled.graph.topological_order()?;
    let validate_s = t.elapsed().as_secs_f64();
    if !problems.is_empty() {
        return Err(anyhow!(
            "the generated project has problems: {}",
            problems.join("; ")
        ));
    }
    let checks = compiled.project.checks.len();
    drop(compiled);

    // Dispatch.
    let (_keep_run, run_dir) = temp_or(dir, "dispatch")?;
    write_project(&run_dir, b.models, false)?;
    // Loaded as every command loads a project, so that `--state-db` (or SLUICE_STATE_DB) measures
    // the overhead with the state in PostgreSQL, as several workers share it.
    let compiled = super::load(&run_dir)?;
    let edges = compiled.graph.edges().len();
    let lake = super::open_lake(&compiled)?;
    let engine = Engine::open(&lake, Some(&compiled)).await?;
    let location = compiled.project.state_location()?;
    let state = Arc::new(StateStore::open(&location)?);
    let backend = match location {
        sluice_core::StateLocation::Sqlite(_) => "sqlite",
        sluice_core::StateLocation::Postgres(_) => "postgres",
    };
    let mut runs = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let summary = sluice_orchestrate::run(
            compiled.clone(),
            engine.clone(),
            state.clone(),
            RunOptions {
                threads: b.threads,
                command: "bench".into(),
                executor: Some(Arc::new(NoOp)),
                ..RunOptions::default()
            },
        )
        .await?;
        let secs = t.elapsed().as_secs_f64();
        let ok = summary.count(NodeStatus::Success);
        if ok != b.models {
            return Err(anyhow!("only {ok} of {} no-op nodes succeeded", b.models));
        }
        runs.push(secs);
    }
    let best = runs.iter().copied().fold(f64::INFINITY, f64::min);
    let report = serde_json::json!({
        "scheduler": {
            "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
            "dispatch": {
                "models": b.models,
                "edges": edges,
                "layers": LAYERS,
                "threads": b.threads,
                "state": backend,
                "runs_s": runs.iter().map(|s| round(*s)).collect::<Vec<_>>(),
                "best_s": round(best),
                "per_task_ms": round(best * 1000.0 / b.models as f64),
            },
            "parse_validate": {
                "models": b.parse_models,
                "checks": checks,
                "load_s": round(load_s),
                "compile_s": round(compile_s),
                "validate_s": round(validate_s),
                "total_s": round(load_s + compile_s + validate_s),
            },
        }
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}

fn round(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}
