//! Incidents and their alerts, in the state database (tables `alert_incidents`, `alert_deliveries`,
//! behind [`sluice_state::Incidents`]).
//!
//! An incident is one stretch of trouble of one kind on one asset: opened when a breach or failure is
//! first seen, resolved when the asset recovers. Each transition that deserves an alert (opened,
//! escalated warn → error, resolved) is decided and *claimed* by the backend in one transaction
//! under a write lock, together with a delivery row whose key is `(incident, event)`. So however
//! many processes watch one state database, and however often they look, exactly one of them sends
//! each alert: the others find the incident already open (or already resolved) and do nothing.
//!
//! A process that dies between claiming and finishing a delivery leaves it `sending`;
//! [`IncidentStore::reclaim_stale`] hands such deliveries to the next sweep after a lease, so an
//! alert is not lost (in that one crash window it may be sent twice rather than never).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use sluice_core::Severity;
use sluice_state::{Breach, DeliveryOutcome, State, StateLocation};

/// The incident records (defined by `sluice-state`, whose backends store them).
pub use sluice_state::{AlertEvent, Claimed, DeliveryRecord, Incident, IncidentKind, LatestResult};

use crate::error::MonitorError;

/// A breach or failure seen now.
#[derive(Debug, Clone)]
pub struct Observation {
    /// The asset.
    pub asset: String,
    /// Freshness or failure.
    pub kind: IncidentKind,
    /// How bad.
    pub severity: Severity,
    /// The asset's owner now.
    pub owner: Option<String>,
    /// What is wrong.
    pub message: String,
    /// The failing run (failures).
    pub run_id: Option<String>,
}

/// The incident tables of a state database.
#[derive(Debug, Clone)]
pub struct IncidentStore {
    db: Arc<dyn State>,
    /// Where the database is, for messages (never with a password).
    path: String,
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl IncidentStore {
    /// Opens the incident tables in the state database at `location` (creating the database, and
    /// migrating it, through `sluice-state`, which owns every state table).
    pub fn open(location: &StateLocation) -> Result<IncidentStore, MonitorError> {
        Ok(IncidentStore {
            db: sluice_state::connect(location)?,
            path: location.to_string(),
        })
    }

    /// The incident tables of an already open state database (the one the rest of the process
    /// uses: `sluice_orchestrate::StateStore::backend`).
    pub fn new(db: Arc<dyn State>) -> IncidentStore {
        let path = db.location();
        IncidentStore { db, path }
    }

    /// Records a breach or failure seen at `now`. Returns the alert to send when this opened the
    /// incident or escalated it from `warn` to `error`; `None` when it was already open (and claimed
    /// by whoever opened it).
    pub fn observe_breach(
        &self,
        obs: &Observation,
        now: DateTime<Utc>,
    ) -> Result<Option<Claimed>, MonitorError> {
        let breach = Breach {
            asset: obs.asset.clone(),
            kind: obs.kind,
            severity: obs.severity.as_str().to_string(),
            owner: obs.owner.clone(),
            message: obs.message.clone(),
            run_id: obs.run_id.clone(),
        };
        Ok(self.db.observe_breach(&breach, &ts(now))?)
    }

    /// Records that `asset` is healthy again for `kind` at `now`. Returns the resolution alert to
    /// send when this closed an open incident.
    pub fn observe_recovery(
        &self,
        asset: &str,
        kind: IncidentKind,
        resolution: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Claimed>, MonitorError> {
        Ok(self
            .db
            .observe_recovery(asset, kind, resolution, &ts(now))?)
    }

    /// Records how a claimed delivery ended.
    pub fn finish(
        &self,
        claimed: &Claimed,
        outcome: &Outcome,
        now: DateTime<Utc>,
    ) -> Result<(), MonitorError> {
        let outcome = DeliveryOutcome {
            status: outcome.status.as_str().to_string(),
            route: outcome.route.clone(),
            channel: outcome.channel.map(str::to_string),
            attempts: i64::from(outcome.attempts),
            error: outcome.error.clone(),
        };
        Ok(self
            .db
            .finish_delivery(claimed.incident.id, claimed.event, &outcome, &ts(now))?)
    }

    /// Deliveries still `sending` although claimed longer than `lease` ago (their process died):
    /// claims them again for this process.
    pub fn reclaim_stale(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Vec<Claimed>, MonitorError> {
        let cutoff = ts(chrono::Duration::from_std(lease)
            .ok()
            .and_then(|d| now.checked_sub_signed(d))
            .unwrap_or(DateTime::<Utc>::MIN_UTC));
        Ok(self.db.reclaim_stale_deliveries(&cutoff, &ts(now))?)
    }

    /// Every open incident, oldest first.
    pub fn open_incidents(&self) -> Result<Vec<Incident>, MonitorError> {
        Ok(self.db.open_incidents()?)
    }

    /// The newest incidents, open or resolved.
    pub fn recent_incidents(&self, limit: usize) -> Result<Vec<Incident>, MonitorError> {
        Ok(self.db.recent_incidents(limit)?)
    }

    /// The deliveries of one incident, in event order.
    pub fn deliveries(&self, incident_id: i64) -> Result<Vec<DeliveryRecord>, MonitorError> {
        Ok(self.db.deliveries(incident_id)?)
    }

    /// The latest result of every node in a run that builds (`sluice test` runs, which only re-check
    /// published data, are left out).
    pub fn latest_build_results(&self) -> Result<Vec<LatestResult>, MonitorError> {
        Ok(self.db.latest_build_results()?)
    }

    /// When each node last succeeded and wrote rows: the time its data was last new.
    pub fn last_data_updates(&self) -> Result<BTreeMap<String, DateTime<Utc>>, MonitorError> {
        self.db
            .last_data_updates()?
            .into_iter()
            .map(|(node, at)| {
                DateTime::parse_from_rfc3339(&at)
                    .map(|t| (node, t.with_timezone(&Utc)))
                    .map_err(|_| MonitorError::BadTime {
                        path: self.path.clone(),
                        table: "node_runs",
                        column: "finished_at",
                        value: at.clone(),
                    })
            })
            .collect()
    }
}

/// How a delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// The channel accepted it.
    Sent,
    /// Every attempt failed (or the channel is unusable).
    Failed,
    /// No channel for the owner and no `default`.
    Skipped,
}

impl DeliveryStatus {
    /// `sent`, `failed`, `skipped`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Skipped => "skipped",
        }
    }
}

/// What a delivery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Sent, failed or skipped.
    pub status: DeliveryStatus,
    /// The `owners:` key whose channel was used.
    pub route: Option<String>,
    /// `webhook` or `command`.
    pub channel: Option<&'static str>,
    /// Attempts made.
    pub attempts: u32,
    /// Why it failed or was skipped.
    pub error: Option<String>,
}
