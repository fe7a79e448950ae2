//! `sluice backfill` (build a range of time partitions) and `sluice partitions` (built ranges, gaps).

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sluice_orchestrate::StateStore;
use sluice_orchestrate::partition::{
    BackfillObserver, BackfillProgress, BackfillRequest, PartitionStore, execute, listing, plan,
    progress,
};

use super::{load, open};

/// What `sluice backfill` was asked.
#[derive(Debug, Clone)]
pub struct BackfillArgs {
    /// Selection (`--select`, `--exclude`, `--state`).
    pub sel: crate::cli::SelectArgs,
    /// First partition.
    pub from: Option<String>,
    /// Last partition (included).
    pub to: Option<String>,
    /// Only partitions never built.
    pub missing: bool,
    /// Partitions built at once.
    pub threads: Option<usize>,
    /// Resume this backfill.
    pub resume: Option<String>,
}

/// A progress bar over the backfill's partitions.
struct Bar(ProgressBar);

impl BackfillObserver for Bar {
    fn started(&self, id: &str, total: u64) {
        self.0.set_length(total);
        if std::io::stderr().is_terminal() {
            self.0.set_draw_target(ProgressDrawTarget::stderr());
        }
        let style =
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {elapsed} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
        self.0.set_style(style);
        self.0.set_prefix(format!("backfill {id}"));
    }

    fn finished(&self, asset: &str, key: &str, error: Option<&str>) {
        self.0.inc(1);
        match error {
            None => self.0.set_message(format!("{asset} {key}")),
            Some(e) => self.0.println(format!("FAILED {asset} {key}: {e}")),
        }
    }
}

/// `sluice backfill`.
pub async fn backfill(dir: &Path, args: BackfillArgs) -> Result<ExitCode> {
    let ws = open(dir).await?;
    let (id, resumed) = match &args.resume {
        Some(id) => {
            let known = PartitionStore::new(&ws.state)?.backfill(id)?;
            if known.is_none() {
                return Err(anyhow!(
                    "no backfill `{id}`; `sluice backfill` without --resume starts one"
                ));
            }
            (id.clone(), true)
        }
        None => {
            // Resolved here: `--state` needs the previous manifest, which only the CLI reads.
            let resolved = super::select::resolve(&ws.compiled, &args.sel)?;
            let req = BackfillRequest {
                selection: resolved.display,
                nodes: Some(resolved.nodes),
                from: args.from.clone(),
                to: args.to.clone(),
                missing: args.missing,
            };
            let (record, resumed) = plan(&ws.compiled, &ws.state, &req)?;
            (record.id, resumed)
        }
    };
    let before = progress(&ws.state, &id)?.ok_or_else(|| anyhow!("no backfill `{id}`"))?;
    println!(
        "{} backfill {id}: {} of {} partition(s) left to build",
        if resumed { "Resuming" } else { "Starting" },
        before.total - before.done,
        before.total
    );
    // The id must reach a reader before any work starts (the process may be killed midway).
    std::io::stdout().flush().ok();
    let threads = args
        .threads
        .unwrap_or(ws.compiled.project.config.defaults.threads)
        .max(1);
    let bar = Arc::new(Bar(ProgressBar::hidden()));
    let report = execute(
        ws.compiled.clone(),
        ws.engine.clone(),
        ws.state.clone(),
        &id,
        threads,
        Some(bar.clone()),
    )
    .await?;
    bar.0.finish_and_clear();
    print_report(&report);
    Ok(if report.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_report(p: &BackfillProgress) {
    for a in &p.assets {
        println!(
            "  {:<32} {}/{} partition(s) built",
            a.asset, a.done, a.planned
        );
    }
    for f in &p.failures {
        println!(
            "  FAILED {} {}: {}",
            f["asset"].as_str().unwrap_or_default(),
            f["partition"].as_str().unwrap_or_default(),
            f["error"].as_str().unwrap_or_default()
        );
    }
    println!(
        "Backfill {} {}: {}/{} partition(s) built, {} failed (run {})",
        p.record.id,
        p.record.status,
        p.done,
        p.total,
        p.failed,
        p.record.run_id.as_deref().unwrap_or("-")
    );
}

/// `sluice partitions ASSET`: built ranges and gaps.
pub fn partitions(dir: &Path, asset: &str, json: bool) -> Result<ExitCode> {
    let compiled = load(dir)?;
    let model = compiled.models.get(asset).ok_or_else(|| {
        let hint = sluice_core::graph::suggest(asset, compiled.models.keys().map(String::as_str))
            .map(|h| format!(" (did you mean `{h}`?)"))
            .unwrap_or_default();
        anyhow!("no model `{asset}`{hint}")
    })?;
    let tp = model.config.time_partition.as_ref().ok_or_else(|| {
        anyhow!("`{asset}` is not time-partitioned (its config has no `partition_by: {{field: ..., granularity: ...}}`)")
    })?;
    let state = StateStore::open(&compiled.project.state_location()?)
        .context("opening the state database")?;
    let l = listing(&state, asset, tp)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&l)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{asset}: {} partitions on `{}`, start {}, current {}",
        l.granularity,
        tp.field,
        l.start.as_deref().unwrap_or("(none)"),
        l.current
    );
    println!(
        "built: {} partition(s) in {} range(s)",
        l.built_count,
        l.built.len()
    );
    for [lo, hi] in &l.built {
        println!("  {lo} .. {hi}");
    }
    println!("gaps: {} range(s)", l.gaps.len());
    for [lo, hi] in &l.gaps {
        println!("  {lo} .. {hi}");
    }
    Ok(ExitCode::SUCCESS)
}
