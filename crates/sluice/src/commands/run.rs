//! `sluice validate`, `sluice run`, `sluice test`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Result, anyhow};
use sluice_core::duration::parse_duration;
use sluice_orchestrate::{NodeStatus, RunOptions, RunSummary};
use sluice_quality::{CheckStatus, build_check};
use tokio_util::sync::CancellationToken;

use super::{load, open};
use crate::progress::RunProgress;
use crate::table;

/// Loads, compiles and checks every source and check declaration; reports every problem.
pub fn validate(dir: &Path) -> Result<ExitCode> {
    let compiled = load(dir)?;
    let (problems, warnings) = problems(&compiled);
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    if !problems.is_empty() {
        return Err(anyhow!(
            "{} problem(s) in the project:\n{}",
            problems.len(),
            problems
                .iter()
                .map(|p| format!("  {p}"))
                .collect::<Vec<_>>()
                .join("\n")
        ));
    }
    println!(
        "OK: {} source table(s), {} model(s), {} check(s); the graph has no cycles.",
        compiled.sources.len(),
        compiled.models.len(),
        compiled.project.checks.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// Every problem (and warning) `sluice validate` reports on a compiled project: connectors and checks
/// that cannot be built, schedules, failure policies, owners and freshness settings.
pub fn problems(compiled: &sluice_transform::CompiledProject) -> (Vec<String>, Vec<String>) {
    let mut problems = Vec::new();
    for decl in &compiled.project.sources {
        if let Err(e) = sluice_ingest::build_source(decl, &compiled.project.root) {
            problems.push(e.to_string());
        }
    }
    for spec in &compiled.project.checks {
        if let Err(e) = build_check(spec, &compiled.scope) {
            problems.push(e.to_string());
        }
    }
    if let Err(e) = sluice_orchestrate::schedule::SchedulePlan::from_project(compiled) {
        problems.extend(e.problems().iter().map(|p| p.to_string()));
    }
    if let Err(e) = sluice_orchestrate::Policies::from_project(
        compiled,
        sluice_orchestrate::NodePolicy::default(),
    ) {
        problems.extend(e.0.iter().map(|p| p.to_string()));
    }
    let alerting = sluice_monitor::validate(compiled);
    problems.extend(alerting.errors);
    (problems, alerting.warnings)
}

/// Options from the project defaults.
pub fn options(ws: &super::Workspace, select: &str, command: &str) -> Result<RunOptions> {
    let d = &ws.compiled.project.config.defaults;
    Ok(RunOptions {
        selection: select.to_string(),
        threads: d.threads,
        command: command.to_string(),
        retries: d.retries,
        retry_backoff: parse_duration(&d.retry_backoff)
            .map_err(|e| anyhow!("sluice.yml: defaults.retry_backoff: {e}"))?,
        ..RunOptions::default()
    })
}

/// `sluice run`.
pub async fn run(
    dir: &Path,
    select: &str,
    full_refresh: bool,
    threads: Option<usize>,
    command: &str,
) -> Result<ExitCode> {
    let ws = open(dir).await?;
    let mut opts = options(&ws, select, command)?;
    opts.full_refresh = full_refresh;
    if let Some(t) = threads {
        opts.threads = t;
    }
    let summary = execute(&ws, opts).await?;
    Ok(exit_code(&summary))
}

/// Runs with a progress bar and prints the summary.
pub async fn execute(ws: &super::Workspace, mut opts: RunOptions) -> Result<RunSummary> {
    let progress = Arc::new(RunProgress::new());
    opts.observer = Some(progress.clone());
    // `sluice test` re-checks published data; it neither opens nor resolves build incidents.
    let alerts = !opts.checks_only;
    let cancel = CancellationToken::new();
    opts.cancel = Some(cancel.clone());
    let ctrl_c = tokio::spawn(cancel_on_ctrl_c(cancel));
    let summary = sluice_orchestrate::run(
        ws.compiled.clone(),
        ws.engine.clone(),
        ws.state.clone(),
        opts,
    )
    .await;
    ctrl_c.abort();
    let summary = summary?;
    progress.finish();
    print_summary(&summary);
    if alerts {
        super::alerts::after_run(ws, &summary).await;
    }
    Ok(summary)
}

/// The first Ctrl-C cancels the run cleanly (running nodes stop, nothing half-published: a node
/// commits in one Delta commit or not at all, and the run is recorded as cancelled); a second one
/// exits at once.
async fn cancel_on_ctrl_c(cancel: CancellationToken) {
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    eprintln!("Cancelling the run (Ctrl-C again to exit at once)...");
    cancel.cancel();
    if tokio::signal::ctrl_c().await.is_ok() {
        std::process::exit(130);
    }
}

/// `sluice test`.
pub async fn test(dir: &Path, select: &str) -> Result<ExitCode> {
    let ws = open(dir).await?;
    let mut opts = options(&ws, select, "test")?;
    opts.checks_only = true;
    let summary = execute(&ws, opts).await?;
    Ok(exit_code(&summary))
}

/// Non-zero when a node failed (130, as after SIGINT, when the run was cancelled).
pub fn exit_code(summary: &RunSummary) -> ExitCode {
    if summary.cancelled {
        return ExitCode::from(130);
    }
    if summary.count(NodeStatus::Failed) > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Prints node results, failing and warning checks, and totals.
pub fn print_summary(summary: &RunSummary) {
    let rows = summary
        .nodes
        .iter()
        .map(|n| {
            let checks = &n.output.checks;
            let passed = checks
                .iter()
                .filter(|c| c.status == CheckStatus::Pass)
                .count();
            vec![
                n.node.clone(),
                n.kind.to_string(),
                n.status.as_str().to_string(),
                n.output.rows_out.map(|r| r.to_string()).unwrap_or_default(),
                n.output
                    .rows_quarantined
                    .filter(|q| *q > 0)
                    .map(|r| r.to_string())
                    .unwrap_or_default(),
                if checks.is_empty() {
                    String::new()
                } else {
                    format!("{passed}/{}", checks.len())
                },
                format!("{:.2}s", n.duration.as_secs_f64()),
            ]
        })
        .collect();
    println!(
        "{}",
        table::render(
            &[
                "asset",
                "kind",
                "status",
                "rows",
                "quarantined",
                "checks",
                "time"
            ],
            rows
        )
    );
    for n in &summary.nodes {
        for c in n
            .output
            .checks
            .iter()
            .filter(|c| c.status != CheckStatus::Pass)
        {
            let tag = if c.status == CheckStatus::Fail {
                "FAIL"
            } else {
                "WARN"
            };
            println!("{tag} {}: {}", c.name, c.message);
            for row in c.sample.iter().take(3) {
                println!("       {row}");
            }
        }
        if n.status == NodeStatus::Failed
            && !n
                .output
                .checks
                .iter()
                .any(|c| c.status == CheckStatus::Fail)
        {
            let error = n.error.as_deref().unwrap_or("");
            // Errors from a connector already start with the asset name.
            if error.starts_with(&format!("{}:", n.node)) {
                println!("ERROR {error}");
            } else {
                println!("ERROR {}: {error}", n.node);
            }
        }
    }
    println!(
        "Run {} {}: {} succeeded, {} failed, {} skipped; checks {} passed, {} warned, {} failed; {:.1}s",
        summary.run_id,
        summary.status(),
        summary.count(NodeStatus::Success),
        summary.count(NodeStatus::Failed),
        summary.count(NodeStatus::Skipped),
        summary.checks_with(CheckStatus::Pass),
        summary.checks_with(CheckStatus::Warn),
        summary.checks_with(CheckStatus::Fail),
        summary.duration.as_secs_f64()
    );
}
