//! [`Monitor`]: turns run results and freshness sweeps into incidents, and incidents into alerts.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sluice_core::Severity;
use sluice_orchestrate::schedule::Clock;
use sluice_orchestrate::{NodeStatus, RunSummary, StateStore};
use sluice_transform::CompiledProject;

use crate::config::AlertConfig;
use crate::deliver::{Alert, DeliveryOptions, Outcome, deliver};
use crate::error::MonitorError;
use crate::freshness::{FreshnessState, evaluate, format_age, format_duration};
use crate::incidents::{Claimed, IncidentKind, IncidentStore, Observation};

/// How long a claimed delivery may stay `sending` before another sweep takes it over (its process
/// is assumed dead): longer than the slowest delivery (3 webhook attempts or a command timeout).
pub const DELIVERY_LEASE: Duration = Duration::from_secs(300);

/// One alert this process sent (or tried to).
#[derive(Debug, Clone)]
pub struct Delivered {
    /// What was sent.
    pub alert: Alert,
    /// How it went.
    pub outcome: Outcome,
}

/// Watches one project: opens, escalates and resolves incidents, and alerts owners exactly once per
/// transition (see [`crate::incidents`] for how two processes agree).
pub struct Monitor {
    config: Arc<AlertConfig>,
    store: Arc<IncidentStore>,
    clock: Arc<dyn Clock>,
    client: reqwest::Client,
    options: DeliveryOptions,
}

impl Monitor {
    /// A monitor for `compiled`, keeping incidents in the project's state database (opened here;
    /// [`Monitor::with_state`] shares the process's own).
    pub fn open(
        compiled: &CompiledProject,
        clock: Arc<dyn Clock>,
    ) -> Result<Monitor, MonitorError> {
        Monitor::with_options(compiled, clock, DeliveryOptions::default())
    }

    /// [`Monitor::open`] with delivery options (tests shorten the retry delays).
    pub fn with_options(
        compiled: &CompiledProject,
        clock: Arc<dyn Clock>,
        options: DeliveryOptions,
    ) -> Result<Monitor, MonitorError> {
        let state = StateStore::open(&compiled.project.state_location()?)?;
        Ok(Monitor::with_state(compiled, &state, clock, options))
    }

    /// A monitor for `compiled` keeping incidents in `state`, the state database this process
    /// already uses.
    pub fn with_state(
        compiled: &CompiledProject,
        state: &StateStore,
        clock: Arc<dyn Clock>,
        options: DeliveryOptions,
    ) -> Monitor {
        Monitor {
            config: Arc::new(AlertConfig::from_project(compiled)),
            store: Arc::new(IncidentStore::new(state.backend().clone())),
            clock,
            client: reqwest::Client::new(),
            options,
        }
    }

    /// The resolved owners, SLAs and channels.
    pub fn config(&self) -> &AlertConfig {
        &self.config
    }

    /// The incident tables.
    pub fn incidents(&self) -> &IncidentStore {
        &self.store
    }

    /// After a run: a node that failed (its retries are spent) opens a failure incident, or adds to
    /// the open one without another alert; a node that succeeded resolves its open failure
    /// incident. Skipped nodes change nothing: their trouble is upstream and alerted there.
    pub async fn after_run(&self, summary: &RunSummary) -> Result<Vec<Delivered>, MonitorError> {
        let results = summary.nodes.iter().filter_map(|n| {
            let failed = match n.status {
                NodeStatus::Failed => true,
                NodeStatus::Success => false,
                _ => return None,
            };
            Some(NodeOutcome {
                node: n.node.clone(),
                failed,
                run_id: summary.run_id.clone(),
                attempts: i64::from(n.attempts),
                error: n.error.clone(),
            })
        });
        let claimed = self.track_failures(results.collect()).await?;
        Ok(self.send_all(claimed).await)
    }

    /// The same as [`Monitor::after_run`] for runs this process did not see — started through
    /// `POST /api/runs`, by another `sluice serve`, or while it was down — from each node's latest
    /// result in the run history. `sluice serve` calls it with every freshness sweep.
    pub async fn reconcile_failures(&self) -> Result<Vec<Delivered>, MonitorError> {
        let store = self.store.clone();
        let latest = blocking(move || store.latest_build_results()).await?;
        let results = latest
            .into_iter()
            .filter(|r| r.status == "failed" || r.status == "success")
            .map(|r| NodeOutcome {
                failed: r.status == "failed",
                node: r.node,
                run_id: r.run_id,
                attempts: r.attempts,
                error: r.error,
            })
            .collect();
        let claimed = self.track_failures(results).await?;
        Ok(self.send_all(claimed).await)
    }

    async fn track_failures(
        &self,
        results: Vec<NodeOutcome>,
    ) -> Result<Vec<Claimed>, MonitorError> {
        let now = self.clock.now();
        let mut claimed = Vec::new();
        for n in results {
            let store = self.store.clone();
            let c = if n.failed {
                let obs = Observation {
                    kind: IncidentKind::Failure,
                    severity: Severity::Error,
                    owner: self.owner_of(&n.node),
                    message: failure_message(n.attempts, n.error.as_deref()),
                    asset: n.node,
                    run_id: Some(n.run_id),
                };
                blocking(move || store.observe_breach(&obs, now)).await?
            } else {
                let resolution = format!("succeeded in run {}", n.run_id);
                blocking(move || {
                    store.observe_recovery(&n.node, IncidentKind::Failure, &resolution, now)
                })
                .await?
            };
            claimed.extend(c);
        }
        Ok(claimed)
    }

    /// A freshness sweep at `now`: every asset with an SLA whose data is older than `warn_after` or
    /// `error_after` opens (or escalates) a freshness incident; one that is fresh again resolves it.
    /// Deliveries left behind by a process that died are retried here too.
    pub async fn check_freshness(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<Delivered>, MonitorError> {
        let store = self.store.clone();
        let last = blocking(move || store.last_data_updates()).await?;
        let mut claimed = Vec::new();
        for (asset, sla) in self.config.with_sla() {
            let updated = last.get(&asset.name).copied();
            let state = evaluate(&sla, updated, now);
            let age = updated.map(|t| format_age((now - t).to_std().unwrap_or_default()));
            let store = self.store.clone();
            let name = asset.name.clone();
            let c = match state {
                FreshnessState::Warn | FreshnessState::Error => {
                    let (severity, bound) = if state == FreshnessState::Error {
                        (Severity::Error, ("error_after", sla.error_after))
                    } else {
                        (Severity::Warn, ("warn_after", sla.warn_after))
                    };
                    let obs = Observation {
                        asset: name,
                        kind: IncidentKind::Freshness,
                        severity,
                        owner: asset.owner.clone(),
                        message: format!(
                            "last new data {} ago, at {} ({} {})",
                            age.unwrap_or_default(),
                            updated.map(|t| t.to_rfc3339()).unwrap_or_default(),
                            bound.0,
                            bound.1.map(format_duration).unwrap_or_default()
                        ),
                        run_id: None,
                    };
                    blocking(move || store.observe_breach(&obs, now)).await?
                }
                FreshnessState::Fresh => {
                    let resolution =
                        format!("fresh again: last new data {} ago", age.unwrap_or_default());
                    blocking(move || {
                        store.observe_recovery(&name, IncidentKind::Freshness, &resolution, now)
                    })
                    .await?
                }
                FreshnessState::NoData | FreshnessState::NoSla => None,
            };
            claimed.extend(c);
        }
        let store = self.store.clone();
        claimed.extend(blocking(move || store.reclaim_stale(now, DELIVERY_LEASE)).await?);
        Ok(self.send_all(claimed).await)
    }

    fn owner_of(&self, asset: &str) -> Option<String> {
        self.config.assets.get(asset).and_then(|a| a.owner.clone())
    }

    async fn send_all(&self, claimed: Vec<Claimed>) -> Vec<Delivered> {
        let mut out = Vec::new();
        for c in claimed {
            let alert = Alert::new(&self.config.project, &c);
            let route = self.config.route(c.incident.owner.as_deref());
            let outcome = deliver(
                &self.client,
                &route,
                &alert,
                &self.config.root,
                &self.options,
            )
            .await;
            match &outcome.error {
                None => tracing::info!(
                    incident = c.incident.id, asset = %alert.asset, event = alert.event.as_str(),
                    route = outcome.route.as_deref().unwrap_or(""), "alert sent"
                ),
                Some(e) => tracing::warn!(
                    incident = c.incident.id, asset = %alert.asset, event = alert.event.as_str(),
                    status = outcome.status.as_str(), error = %e, "alert not delivered"
                ),
            }
            let store = self.store.clone();
            let (claim, result, now) = (c.clone(), outcome.clone(), self.clock.now());
            if let Err(e) = blocking(move || store.finish(&claim, &result, now)).await {
                tracing::warn!(error = %e, "could not record an alert delivery");
            }
            out.push(Delivered { alert, outcome });
        }
        out
    }
}

/// A node's failure or success, from a run summary or the run history.
struct NodeOutcome {
    node: String,
    failed: bool,
    run_id: String,
    attempts: i64,
    error: Option<String>,
}

fn failure_message(attempts: i64, error: Option<&str>) -> String {
    let error = error.unwrap_or("failed");
    if attempts > 1 {
        format!("failed after {attempts} attempts: {error}")
    } else {
        error.to_string()
    }
}

/// Runs a database call off the async threads (a busy database waits up to its timeout).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, MonitorError> + Send + 'static,
) -> Result<T, MonitorError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| MonitorError::Task(e.to_string()))?
}
