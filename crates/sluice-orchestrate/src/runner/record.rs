//! What the run loop writes to the state database: each node's result (with its checks, log,
//! watermark and partitions), the run's totals, and the run's heartbeat while it runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use sluice_quality::CheckStatus;
use tokio_util::sync::CancellationToken;

use super::{RunError, RunObserver, RunOptions};
use crate::state::{CheckRecord, NodeRecord, RunRecord, StateStore};
use crate::summary::{NodeResult, NodeStatus, RunSummary};

pub(super) fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Polls the state database for a cancel request (from `sluice runs cancel` or the API of another
/// process) and fires `cancel` when one arrives; touches the run's heartbeat meanwhile, so other
/// machines can tell it is alive ([`crate::abandon`]).
pub(super) fn watch_run(
    state: Arc<StateStore>,
    run_id: String,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last_beat = Instant::now();
        loop {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
                () = cancel.cancelled() => return,
            }
            if last_beat.elapsed() >= crate::abandon::HEARTBEAT_INTERVAL {
                last_beat = Instant::now();
                match state.heartbeat_run(&run_id) {
                    // Taken for dead (no heartbeat for long): a retry may run its nodes now.
                    Ok(false) => {
                        tracing::error!(run_id = %run_id, "run was marked abandoned by another process; stopping it");
                        cancel.cancel();
                        return;
                    }
                    Ok(true) => {}
                    Err(e) => {
                        tracing::warn!(run_id = %run_id, error = %e, "cannot touch the run's heartbeat")
                    }
                }
            }
            match state.cancel_requested(&run_id) {
                Ok(true) => {
                    cancel.cancel();
                    return;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(run_id = %run_id, error = %e, "cannot read cancel requests")
                }
            }
        }
    })
}

pub(super) fn finish_node(
    state: &StateStore,
    run_id: &str,
    r: &NodeResult,
    observer: Option<&dyn RunObserver>,
) -> Result<(), RunError> {
    let at = r.finished_at.to_rfc3339_opts(SecondsFormat::Micros, true);
    let started = r.finished_at - chrono::Duration::from_std(r.duration).unwrap_or_default();
    state.record_node(&NodeRecord {
        run_id: run_id.to_string(),
        node: r.node.clone(),
        kind: r.kind.to_string(),
        status: r.status.as_str().to_string(),
        attempts: i64::from(r.attempts),
        rows_in: r.output.rows_in.map(|v| v as i64),
        rows_out: r.output.rows_out.map(|v| v as i64),
        rows_quarantined: r.output.rows_quarantined.map(|v| v as i64),
        started_at: started.to_rfc3339_opts(SecondsFormat::Micros, true),
        finished_at: at.clone(),
        duration_ms: r.duration.as_millis() as i64,
        error: r.error.clone(),
        version: r.output.version,
    })?;
    state.append_node_log(run_id, &r.node, &r.log)?;
    if !r.stale_inputs.is_empty() {
        state.set_stale_inputs(run_id, &r.node, &r.stale_inputs)?;
    }
    if let Some(w) = &r.output.watermark {
        state.set_watermark(&r.node, w, run_id, &at)?;
    }
    // Time partitions built by this node (crate::partition).
    crate::partition::record_output(state, &r.node, &r.output)?;
    for c in &r.output.checks {
        state.record_check(&CheckRecord {
            run_id: run_id.to_string(),
            check_name: c.name.clone(),
            model: c.model.clone(),
            kind: c.kind.clone(),
            column_name: c.column.clone(),
            severity: c.severity.as_str().to_string(),
            status: c.status.as_str().to_string(),
            failing_rows: c.failing_rows as i64,
            sample: serde_json::Value::Array(c.sample.clone()),
            message: Some(c.message.clone()),
            checked_at: at.clone(),
        })?;
    }
    if let Some(o) = observer {
        o.node_finished(r);
    }
    Ok(())
}

/// Records the run's end and totals.
pub(super) fn finish_run(
    state: &StateStore,
    opts: &RunOptions,
    summary: &RunSummary,
) -> Result<(), RunError> {
    state.finish_run(&RunRecord {
        run_id: summary.run_id.clone(),
        command: opts.command.clone(),
        selection: opts.selection.clone(),
        status: summary.status().to_string(),
        started_at: String::new(),
        finished_at: Some(now()),
        nodes_ok: summary.count(NodeStatus::Success) as i64,
        nodes_failed: summary.count(NodeStatus::Failed) as i64,
        nodes_skipped: (summary.count(NodeStatus::Skipped) + summary.count(NodeStatus::Cancelled))
            as i64,
        checks_passed: summary.checks_with(CheckStatus::Pass) as i64,
        checks_warned: summary.checks_with(CheckStatus::Warn) as i64,
        checks_failed: summary.checks_with(CheckStatus::Fail) as i64,
    })?;
    Ok(())
}
