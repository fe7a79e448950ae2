//! `sluice validate`, `sluice run`, `sluice test`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Result, anyhow};
use sluice_core::duration::parse_duration;
use sluice_orchestrate::{NodeStatus, RunOptions, RunSummary};
use sluice_quality::{CheckStatus, build_check};
use tokio_util::sync::CancellationToken;

use super::open;
use crate::artifacts::{self, Invocation, timing::Timings};
use crate::cli::SelectArgs;
use crate::progress::RunProgress;
use crate::table;

/// Loads, compiles and checks every source and check declaration; reports every problem, one per
/// line, as `file:line:column: field `x`: message` with paths relative to the project folder.
pub fn validate(dir: &Path) -> Result<ExitCode> {
    // Normalised (no trailing `/`), so that paths print relative to it.
    let root: std::path::PathBuf = std::path::absolute(dir)
        .unwrap_or_else(|_| dir.to_path_buf())
        .components()
        .collect();
    let (mut problems, warnings, compiled) = if sluice_dbt::is_dbt_project(dir) {
        let (compiled, mut warnings) =
            super::load_dbt(dir).map_err(|e| anyhow!("{}", relative_to(&root, &e.to_string())))?;
        let (problems, more) = problems(&compiled);
        warnings.extend(more);
        (problems, warnings, Some(compiled))
    } else {
        one_pass(dir).map_err(|e| report(&root, &e))?
    };
    for w in &warnings {
        eprintln!("warning: {}", relative_to(&root, w));
    }
    in_file_order(&mut problems);
    let Some(compiled) = compiled.filter(|_| problems.is_empty()) else {
        return Err(report(&root, &problems));
    };
    println!(
        "OK: {} source table(s), {} model(s), {} check(s); the graph has no cycles.",
        compiled.sources.len(),
        compiled.models.len(),
        compiled.project.checks.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// Problems, warnings and (when it compiles) the project: every file that loads is checked as far
/// as it can be, whatever else failed, so one `validate` shows every problem. A reference to an asset
/// whose file did not load is not reported again: the file's own problem is.
type Checked = (
    Vec<String>,
    Vec<String>,
    Option<Arc<sluice_transform::CompiledProject>>,
);

fn one_pass(dir: &Path) -> std::result::Result<Checked, Vec<String>> {
    let partial = sluice_core::Project::load_partial(dir).map_err(|e| flatten(e.0))?;
    let failed: std::collections::BTreeSet<String> = partial
        .errors
        .iter()
        .filter_map(sluice_core::ConfigError::file)
        .filter_map(|p| p.file_stem())
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    let mut problems = flatten(partial.errors);
    let root = partial
        .project
        .as_ref()
        .map(|p| p.root.clone())
        .unwrap_or_else(|| std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf()));
    problems.extend(source_problems(&partial.sources, &root));
    problems.extend(export_problems(&partial.exports));
    let Some(project) = partial.project else {
        return Ok((problems, Vec::new(), None));
    };
    match project.config.pii.resolve(&root.join("sluice.yml")) {
        Ok(Some(_)) => {}
        Ok(None) => problems.extend(missing_pii_key(&partial.sources)),
        Err(e) => problems.push(e.to_string()),
    }
    match sluice_transform::compile(Arc::new(project)) {
        Ok(compiled) => {
            let (more, warnings) = compiled_problems(&compiled);
            problems.extend(more);
            Ok((problems, warnings, Some(Arc::new(compiled))))
        }
        Err(errs) => {
            problems.extend(
                errs.iter()
                    .filter(|e| !refers_to_failed(e, &failed))
                    .map(ToString::to_string),
            );
            Ok((problems, Vec::new(), None))
        }
    }
}

/// Problems in reading order: by file, then line and column (a problem without a position keeps its
/// place among its file's).
pub(super) fn in_file_order(problems: &mut [String]) {
    fn key(p: &str) -> (&str, usize, usize) {
        let mut parts = p.splitn(4, ':');
        let file = parts.next().unwrap_or_default();
        let num = |s: Option<&str>| s.and_then(|s| s.trim().parse::<usize>().ok());
        match (num(parts.next()), num(parts.next())) {
            (Some(line), Some(col)) => (file, line, col),
            (Some(line), None) => (file, line, 0),
            _ => (file, 0, 0),
        }
    }
    problems.sort_by(|a, b| key(a).cmp(&key(b)));
}

/// Whether `e` is an unknown reference to an asset whose file did not load.
fn refers_to_failed(
    e: &sluice_transform::TransformError,
    failed: &std::collections::BTreeSet<String>,
) -> bool {
    match e {
        sluice_transform::TransformError::Graph(sluice_core::GraphError::UnknownRef {
            target,
            ..
        }) => {
            let first = target.split('.').next().unwrap_or(target);
            failed.contains(target) || failed.contains(first)
        }
        _ => false,
    }
}

/// One line per problem ([`sluice_core::ConfigError::Many`] flattened).
fn flatten(errors: Vec<sluice_core::ConfigError>) -> Vec<String> {
    errors
        .into_iter()
        .flat_map(sluice_core::ConfigError::into_list)
        .map(|p| p.to_string())
        .collect()
}

/// `N problem(s) in the project:` and one problem per line (each may span lines of its own).
fn report(root: &Path, problems: &[String]) -> anyhow::Error {
    let lines: Vec<String> = problems
        .iter()
        .flat_map(|p| p.lines().map(str::to_string).collect::<Vec<_>>())
        .map(|p| format!("  {}", relative_to(root, &p)))
        .collect();
    anyhow!(
        "{} problem(s) in the project:\n{}",
        lines.len(),
        lines.join("\n")
    )
}

/// `text` with the project folder left out of the paths it names.
fn relative_to(root: &Path, text: &str) -> String {
    text.replace(&format!("{}/", root.display()), "")
}

/// Every problem (and warning) `sluice validate` reports on a compiled project: connectors and checks
/// that cannot be built, schedules, failure policies, owners and freshness settings.
pub fn problems(compiled: &sluice_transform::CompiledProject) -> (Vec<String>, Vec<String>) {
    let mut problems = source_problems(&compiled.project.sources, &compiled.project.root);
    if compiled.project.config.pii_key.is_none() {
        problems.extend(missing_pii_key(&compiled.project.sources));
    }
    problems.extend(export_problems(&compiled.project.exports));
    let (more, warnings) = compiled_problems(compiled);
    problems.extend(more);
    (problems, warnings)
}

/// One problem per `pii: hash` rule of `sources`, for a project without a PII key.
fn missing_pii_key(sources: &[sluice_core::SourceDecl]) -> Vec<String> {
    sources
        .iter()
        .flat_map(|decl| sluice_core::pii::missing_key_errors(decl, None))
        .map(|e| e.to_string())
        .collect()
}

/// The connectors that cannot be built from their source files.
fn source_problems(sources: &[sluice_core::SourceDecl], root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for decl in sources {
        match sluice_ingest::build_source(decl, root) {
            Err(sluice_ingest::IngestError::Config(e)) => {
                problems.extend(e.into_list().into_iter().map(|p| p.to_string()));
            }
            Err(e @ sluice_ingest::IngestError::UnknownKind { .. }) => {
                // Point at the `kind:` value, ripgrep style.
                let text = e.to_string();
                let prefix = format!("{}: ", decl.path.display());
                match decl.kind_pos {
                    Some(p) => problems.push(format!(
                        "{}:{p}: field `kind`: {}",
                        decl.path.display(),
                        text.strip_prefix(&prefix).unwrap_or(&text)
                    )),
                    None => problems.push(text),
                }
            }
            Err(e) => problems.push(e.to_string()),
            Ok(_) => {}
        }
    }
    problems
}

/// The sinks that cannot be built from their export files (their own fields are read and checked;
/// nothing connects).
fn export_problems(exports: &[sluice_core::ExportDecl]) -> Vec<String> {
    let mut problems = Vec::new();
    for export in exports {
        match sluice_sink::build_sink(export) {
            Err(sluice_sink::SinkError::Config(e)) => {
                problems.extend(e.into_list().into_iter().map(|p| p.to_string()));
            }
            Err(e) => problems.push(format!("{}: {e}", export.path.display())),
            Ok(_) => {}
        }
    }
    problems
}

/// What a compiled project's checks, schedules, policies, alerting and dialect say.
fn compiled_problems(compiled: &sluice_transform::CompiledProject) -> (Vec<String>, Vec<String>) {
    let mut problems = Vec::new();
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
    let mut warnings = alerting.warnings;
    // What the project's SQL dialect means and Sluice does not compute the same way (file:line).
    warnings.extend(
        sluice_transform::dialect_review::review(compiled)
            .iter()
            .map(ToString::to_string),
    );
    (problems, warnings)
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
    sel: &SelectArgs,
    full_refresh: bool,
    threads: Option<usize>,
    command: &str,
) -> Result<ExitCode> {
    let ws = open(dir).await?;
    let resolved = super::select::resolve(&ws.compiled, sel)?;
    let inv = Invocation::new(command, super::select::invocation_args(sel));
    artifacts::write_manifest(&ws.compiled, &inv)?;
    let mut opts = options(&ws, &resolved.display, command)?;
    opts.nodes = Some(resolved.nodes);
    opts.full_refresh = full_refresh;
    if let Some(t) = threads {
        opts.threads = t;
    }
    let (summary, timings) = execute_timed(&ws, opts).await?;
    write_run_results(&ws, &summary, &timings, &inv)?;
    Ok(exit_code(&summary))
}

/// Writes `target/run_results.json` of a finished run.
fn write_run_results(
    ws: &super::Workspace,
    summary: &RunSummary,
    timings: &Timings,
    inv: &Invocation,
) -> Result<()> {
    let results = artifacts::run_results::run_results(&ws.compiled, summary, Some(timings), inv);
    artifacts::write_json(
        &artifacts::target_dir(&ws.compiled).join("run_results.json"),
        &results,
    )
}

/// Runs with a progress bar and prints the summary.
pub async fn execute(ws: &super::Workspace, opts: RunOptions) -> Result<RunSummary> {
    Ok(execute_timed(ws, opts).await?.0)
}

/// [`execute`], also returning when each node started and finished.
async fn execute_timed(
    ws: &super::Workspace,
    mut opts: RunOptions,
) -> Result<(RunSummary, Arc<Timings>)> {
    let progress = Arc::new(RunProgress::new());
    let timings = Arc::new(Timings::around(progress.clone()));
    opts.observer = Some(timings.clone());
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
    Ok((summary, timings))
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
pub async fn test(dir: &Path, sel: &SelectArgs) -> Result<ExitCode> {
    let ws = open(dir).await?;
    let resolved = super::select::resolve(&ws.compiled, sel)?;
    let inv = Invocation::new("test", super::select::invocation_args(sel));
    artifacts::write_manifest(&ws.compiled, &inv)?;
    let mut opts = options(&ws, &resolved.display, "test")?;
    opts.nodes = Some(resolved.nodes);
    opts.checks_only = true;
    let (summary, timings) = execute_timed(&ws, opts).await?;
    write_run_results(&ws, &summary, &timings, &inv)?;
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

/// Prints node results, failing and warning checks, and totals: dbt's `PASS=… WARN=… ERROR=…` line,
/// coloured on a terminal (unless `NO_COLOR` is set), then the run line (always last).
pub fn print_summary(summary: &RunSummary) {
    let paint = crate::color::Paint::stdout();
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
                paint.red("FAIL")
            } else {
                paint.yellow("WARN")
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
            let tag = paint.red("ERROR");
            if error.starts_with(&format!("{}:", n.node)) {
                println!("{tag} {error}");
            } else {
                println!("{tag} {}: {error}", n.node);
            }
        }
    }
    let pass = summary.count(NodeStatus::Success) + summary.checks_with(CheckStatus::Pass);
    let warn = summary.checks_with(CheckStatus::Warn);
    let error = summary.count(NodeStatus::Failed) + summary.checks_with(CheckStatus::Fail);
    let skip = summary.count(NodeStatus::Skipped) + summary.count(NodeStatus::Cancelled);
    println!(
        "Done. {} {} {} {} TOTAL={}",
        paint.green_if(pass > 0, &format!("PASS={pass}")),
        paint.yellow_if(warn > 0, &format!("WARN={warn}")),
        paint.red_if(error > 0, &format!("ERROR={error}")),
        paint.yellow_if(skip > 0, &format!("SKIP={skip}")),
        pass + warn + error + skip
    );
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
