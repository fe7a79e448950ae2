//! `sluice bench --dbt-models N`: generate a dbt project of N models (`sluice_dbt::bench`) and time
//! parsing (loading the dbt project) and compiling (rendering every model's Jinja, resolving config,
//! building the graph).

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};

/// Generates, parses and compiles; prints the timings as JSON.
pub fn bench_dbt(n: usize, dir: Option<&Path>) -> Result<ExitCode> {
    let temp;
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => {
            temp = tempfile::tempdir().context("creating a temporary folder")?;
            temp.path().to_path_buf()
        }
    };
    let t = Instant::now();
    sluice_dbt::bench::generate_project(&dir, n)
        .with_context(|| format!("writing the dbt project into {}", dir.display()))?;
    let generate_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let project = sluice_dbt::load(&dir).map_err(|e| anyhow!("{e}"))?;
    let parse_s = t.elapsed().as_secs_f64();
    let checks = project.project.checks.len();
    let t = Instant::now();
    let compiled = sluice_dbt::compile(project).map_err(|e| anyhow!("{e}"))?;
    let compile_s = t.elapsed().as_secs_f64();
    let report = serde_json::json!({
        "dbt": {
            "models": compiled.models.len(),
            "checks": checks,
            "edges": compiled.graph.edges().len(),
            "generate_s": round(generate_s),
            "parse_s": round(parse_s),
            "compile_s": round(compile_s),
            "parse_compile_s": round(parse_s + compile_s),
            "models_per_s": round(compiled.models.len() as f64 / (parse_s + compile_s).max(1e-9)),
            "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
        }
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
