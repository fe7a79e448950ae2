//! Alerts from the command line: after `sluice run` (failures, then a freshness sweep), and inside
//! `sluice serve` (every scheduled run's failures, and a sweep every 30 s: failures of runs it did not
//! see, then freshness). See
//! docs/alerts.md. Nothing here can fail a run or stop the server: problems are logged.

use std::sync::Arc;
use std::time::Duration;

use sluice_monitor::{Delivered, DeliveryOptions, DeliveryStatus, Monitor};
use sluice_orchestrate::RunSummary;
use sluice_orchestrate::schedule::{Clock, Scheduler, SchedulerEvent, SystemClock};
use tokio::sync::broadcast;

use super::Workspace;
use super::scheduler::Stop;

/// How often `sluice serve` compares every asset's data with its freshness SLA (and reconciles
/// failures of runs started elsewhere).
pub const FRESHNESS_SWEEP: Duration = Duration::from_secs(30);

/// A monitor over the project's state database (the one the workspace opened).
pub fn monitor(ws: &Workspace) -> Option<Arc<Monitor>> {
    Some(Arc::new(Monitor::with_state(
        &ws.compiled,
        &ws.state,
        Arc::new(SystemClock),
        DeliveryOptions::default(),
    )))
}

/// After a run from the command line: failure incidents from its results, then a freshness sweep.
pub async fn after_run(ws: &Workspace, summary: &RunSummary) {
    let Some(m) = monitor(ws) else { return };
    let mut sent = Vec::new();
    match m.after_run(summary).await {
        Ok(d) => sent.extend(d),
        Err(e) => tracing::warn!(error = %e, "could not track failure incidents"),
    }
    match m.check_freshness(SystemClock.now()).await {
        Ok(d) => sent.extend(d),
        Err(e) => tracing::warn!(error = %e, "could not check freshness"),
    }
    print_alerts(&sent);
}

/// One line per alert delivered or failed (stdout: `sluice run` prints its summary there); alerts
/// with nowhere to go are a note on stderr, so projects without owners keep a clean summary.
fn print_alerts(sent: &[Delivered]) {
    for d in sent {
        if d.outcome.status == DeliveryStatus::Skipped {
            eprintln!(
                "note: {} {} incident #{} ({}) not sent: no channel (see docs/alerts.md)",
                d.alert.kind.as_str(),
                d.alert.event.as_str(),
                d.alert.incident_id,
                d.alert.asset
            );
            continue;
        }
        let how = match (d.outcome.status, &d.outcome.route) {
            (DeliveryStatus::Sent, Some(route)) => format!("sent to {route}"),
            (_, _) => format!(
                "NOT delivered: {}",
                d.outcome.error.as_deref().unwrap_or("unknown error")
            ),
        };
        println!(
            "ALERT {} {} incident #{} ({}): {how}",
            d.alert.kind.as_str(),
            d.alert.event.as_str(),
            d.alert.incident_id,
            d.alert.asset
        );
    }
}

/// The alerting side of `sluice serve`: follows the scheduler's runs and sweeps freshness.
pub struct Watch {
    monitor: Option<Arc<Monitor>>,
    runs: Option<broadcast::Receiver<SchedulerEvent>>,
}

impl Watch {
    /// Prepares the watch (subscribe before the scheduler starts, so no run is missed).
    pub fn new(ws: &Workspace, scheduler: Option<&Scheduler>) -> Watch {
        Watch {
            monitor: monitor(ws),
            runs: scheduler.map(Scheduler::subscribe),
        }
    }

    /// Runs until `stop` flips.
    pub async fn run(self, stop: &Stop) {
        let Some(m) = self.monitor else { return };
        let mut runs = self.runs;
        let stopped = stop.wait();
        tokio::pin!(stopped);
        let mut ticks = tokio::time::interval(FRESHNESS_SWEEP);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut stopped => return,
                _ = ticks.tick() => sweep(&m).await,
                event = next_event(&mut runs) => match event {
                    Some(SchedulerEvent::RunFinished { outcome: Ok(summary), .. }) => {
                        if let Err(e) = m.after_run(&summary).await {
                            tracing::warn!(error = %e, "could not track failure incidents");
                        }
                        sweep(&m).await;
                    }
                    Some(_) => {}
                    // The scheduler is gone (or off): keep sweeping freshness.
                    None => runs = None,
                },
            }
        }
    }
}

/// One sweep: failures of runs this process did not see (API-started, other processes), then
/// freshness.
async fn sweep(m: &Monitor) {
    if let Err(e) = m.reconcile_failures().await {
        tracing::warn!(error = %e, "could not reconcile failure incidents");
    }
    if let Err(e) = m.check_freshness(SystemClock.now()).await {
        tracing::warn!(error = %e, "freshness sweep failed");
    }
}

/// The next scheduler event; pends forever without a scheduler, `None` once it has closed.
async fn next_event(
    runs: &mut Option<broadcast::Receiver<SchedulerEvent>>,
) -> Option<SchedulerEvent> {
    let Some(rx) = runs else {
        return std::future::pending().await;
    };
    loop {
        match rx.recv().await {
            Ok(e) => return Some(e),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "alerts fell behind the scheduler's events");
            }
            Err(broadcast::error::RecvError::Closed) => return None,
        }
    }
}

/// For `sluice status`: each asset's freshness against its SLA (`warn 27.0h > 26h`, `-` without an
/// SLA) and its open incidents (`failure #3`), by asset name.
pub fn status_columns(ws: &Workspace) -> std::collections::BTreeMap<String, [String; 2]> {
    let report = match sluice_monitor::freshness_report(&ws.compiled, &ws.state, SystemClock.now())
    {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read freshness");
            return Default::default();
        }
    };
    report
        .into_iter()
        .map(|a| {
            let age = a
                .age_seconds
                .map(|s| sluice_monitor::freshness::format_age(Duration::from_secs(s as u64)))
                .unwrap_or_default();
            let bound = match a.state {
                sluice_monitor::FreshnessState::Error => a.error_after.clone(),
                _ => a.warn_after.clone().or_else(|| a.error_after.clone()),
            }
            .unwrap_or_default();
            let freshness = match a.state {
                sluice_monitor::FreshnessState::NoSla => "-".to_string(),
                sluice_monitor::FreshnessState::NoData => "no data".to_string(),
                sluice_monitor::FreshnessState::Fresh => format!("fresh ({age} <= {bound})"),
                s => format!("{} ({age} > {bound})", s.as_str()),
            };
            let incidents = a
                .open_incidents
                .iter()
                .map(|i| format!("{} #{}", i.kind.as_str(), i.id))
                .collect::<Vec<_>>()
                .join(", ");
            (a.asset, [freshness, incidents])
        })
        .collect()
}
