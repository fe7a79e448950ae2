//! `sluice runs` (history; one run's node timeline and logs), `sluice runs cancel`, `sluice retry`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};
use chrono::{DateTime, Utc};
use sluice_orchestrate::{CancelOutcome, NodeRecord, RunRecord, StateStore, retry_selection};

use super::load;
use crate::table;

/// Width of the timeline's bar column, in characters.
const BAR: usize = 40;

fn state_of(dir: &Path) -> Result<StateStore> {
    let compiled = load(dir)?;
    Ok(StateStore::open(&compiled.project.state_location()?)?)
}

/// Lists the latest runs.
pub fn list(dir: &Path, limit: usize) -> Result<ExitCode> {
    let state = state_of(dir)?;
    // A run whose process died is listed as `abandoned`, not `running` forever.
    state.reap_abandoned_runs()?;
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
    Ok(ExitCode::SUCCESS)
}

/// One run node by node: status, attempts, rows, a timeline bar, then the logs of the nodes that did
/// not succeed (of every node with `all_logs`).
pub fn show(dir: &Path, run_id: &str, all_logs: bool) -> Result<ExitCode> {
    let state = state_of(dir)?;
    state.reap_if_abandoned(run_id)?;
    let Some(run) = state.run(run_id)? else {
        bail!("no run `{run_id}`; `sluice runs` lists them");
    };
    let mut nodes = state.nodes_of_run(run_id)?;
    nodes.sort_by(|a, b| a.started_at.cmp(&b.started_at).then(a.node.cmp(&b.node)));
    let stale = state.stale_inputs_of_run(run_id)?;
    println!("{}", headline(&run));
    if let Some(e) = state.run_error(run_id)? {
        println!("ERROR run: {e}");
    }
    let span = Span::of(&run, &nodes);
    let rows = nodes
        .iter()
        .map(|n| {
            let (start, bar) = span.bar(n);
            vec![
                n.node.clone(),
                n.kind.clone(),
                n.status.clone(),
                n.attempts.to_string(),
                n.rows_out.map(|r| r.to_string()).unwrap_or_default(),
                start,
                format!("{:.2}s", n.duration_ms as f64 / 1000.0),
                bar,
            ]
        })
        .collect();
    println!(
        "{}",
        table::render(
            &[
                "node", "kind", "status", "attempts", "rows", "start", "time", "timeline"
            ],
            rows
        )
    );
    for (node, inputs) in &stale {
        println!(
            "STALE {node}: built on the last good data of {} (fail_open)",
            inputs.join(", ")
        );
    }
    for n in &nodes {
        if let Some(e) = &n.error {
            println!("ERROR {}: {e}", n.node);
        }
    }
    for n in nodes.iter().filter(|n| all_logs || n.status != "success") {
        let log = state.node_log(run_id, &n.node)?;
        if log.is_empty() {
            continue;
        }
        println!("log of {}:", n.node);
        for l in log {
            println!("  {} {:<5} {}", l.at, l.level, l.message);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn headline(run: &RunRecord) -> String {
    let took = match (
        parse(&run.started_at),
        run.finished_at.as_deref().and_then(parse),
    ) {
        (Some(a), Some(b)) => format!("{:.2}s", (b - a).num_milliseconds() as f64 / 1000.0),
        _ => "still running".to_string(),
    };
    let selection = if run.selection.is_empty() {
        "everything".to_string()
    } else {
        run.selection.clone()
    };
    format!(
        "Run {} ({}) {}: started {}, {took}; selection: {selection}",
        run.run_id, run.command, run.status, run.started_at
    )
}

fn parse(ts: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(ts)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The run's time span, to place each node on a bar.
struct Span {
    start: Option<DateTime<Utc>>,
    total_ms: i64,
}

impl Span {
    fn of(run: &RunRecord, nodes: &[NodeRecord]) -> Span {
        let start = parse(&run.started_at)
            .into_iter()
            .chain(nodes.iter().filter_map(|n| parse(&n.started_at)))
            .min();
        let end = nodes
            .iter()
            .filter_map(|n| parse(&n.finished_at))
            .chain(run.finished_at.as_deref().and_then(parse))
            .max();
        let total_ms = match (start, end) {
            (Some(a), Some(b)) => (b - a).num_milliseconds().max(1),
            _ => 1,
        };
        Span { start, total_ms }
    }

    /// `+1.23s` and a bar like `|   ████      |` for one node.
    fn bar(&self, n: &NodeRecord) -> (String, String) {
        let (Some(run_start), Some(a), Some(b)) =
            (self.start, parse(&n.started_at), parse(&n.finished_at))
        else {
            return (String::new(), String::new());
        };
        let from = (a - run_start).num_milliseconds().max(0);
        let to = (b - run_start).num_milliseconds().max(from);
        let col = |ms: i64| ((ms as f64 / self.total_ms as f64) * BAR as f64) as usize;
        let lo = col(from).min(BAR - 1);
        let hi = col(to).clamp(lo + 1, BAR);
        let mut bar = String::with_capacity(BAR + 2);
        bar.push('|');
        for i in 0..BAR {
            bar.push(if (lo..hi).contains(&i) { '█' } else { ' ' });
        }
        bar.push('|');
        (format!("+{:.2}s", from as f64 / 1000.0), bar)
    }
}

/// Asks a running run to stop (it may run in another process: the request goes through the state
/// database, and the run notices it within a fraction of a second).
pub fn cancel(dir: &Path, run_id: &str) -> Result<ExitCode> {
    let state = state_of(dir)?;
    match state.cancel_run(run_id)? {
        CancelOutcome::Unknown => bail!("no run `{run_id}`; `sluice runs` lists them"),
        CancelOutcome::Finished { status } => bail!("run `{run_id}` is not running ({status})"),
        CancelOutcome::Abandoned { reason } => {
            println!(
                "Run {run_id} is abandoned: {reason}. Nothing runs it any more; `sluice retry {run_id}` re-runs what did not succeed."
            );
        }
        CancelOutcome::Dequeued => {
            println!("Run {run_id} was queued; it is cancelled and will not start.")
        }
        CancelOutcome::Requested => println!(
            "Cancel requested for run {run_id}; its running nodes stop and no new ones start."
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// Re-runs what did not succeed in a finished or abandoned run (its failed nodes and their
/// downstream; for an abandoned run, also the nodes it did not finish).
pub async fn retry(dir: &Path, run_id: &str, threads: Option<usize>) -> Result<ExitCode> {
    let ws = super::open(dir).await?;
    let nodes = retry_selection(&ws.state, run_id)?;
    println!(
        "Retrying {} node(s) of run {run_id}: {}",
        nodes.len(),
        nodes.join(", ")
    );
    let mut opts = super::run::options(&ws, &nodes.join(" "), "retry")?;
    if let Some(t) = threads {
        opts.threads = t;
    }
    let summary = super::run::execute(&ws, opts).await?;
    Ok(super::run::exit_code(&summary))
}
