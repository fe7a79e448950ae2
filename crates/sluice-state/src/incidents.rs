//! Incidents and their alert deliveries, as a trait every backend implements ([`Incidents`]) and its
//! records.
//!
//! An incident is one stretch of trouble of one kind on one asset: opened when a breach or failure
//! is first seen, resolved when the asset recovers. Each transition that deserves an alert (opened,
//! escalated warn → error, resolved) is decided and *claimed* in one transaction under a write lock,
//! together with a delivery row whose key is `(incident, event)`. So however many processes watch
//! one database, and however often they look, exactly one of them sends each alert: the others find
//! the incident already open (or already resolved) and do nothing. A unique index on the open
//! incident of an asset and kind backs this up.

use serde::Serialize;

use crate::StateError;

/// What an incident is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentKind {
    /// The asset's data is older than its SLA allows.
    Freshness,
    /// The asset's node failed after its retries.
    Failure,
}

impl IncidentKind {
    /// `freshness` or `failure`.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentKind::Freshness => "freshness",
            IncidentKind::Failure => "failure",
        }
    }

    /// The kind stored as `s` (anything but `failure` reads as freshness, as it always did).
    pub fn parse(s: &str) -> IncidentKind {
        if s == "failure" {
            IncidentKind::Failure
        } else {
            IncidentKind::Freshness
        }
    }
}

/// Which transition an alert announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertEvent {
    /// The incident was opened.
    Opened,
    /// A freshness incident went from `warn` to `error`.
    Escalated,
    /// The asset recovered; the incident is closed.
    Resolved,
}

impl AlertEvent {
    /// `opened`, `escalated`, `resolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertEvent::Opened => "opened",
            AlertEvent::Escalated => "escalated",
            AlertEvent::Resolved => "resolved",
        }
    }

    /// The event stored as `s`.
    pub fn parse(s: &str) -> AlertEvent {
        match s {
            "opened" => AlertEvent::Opened,
            "escalated" => AlertEvent::Escalated,
            _ => AlertEvent::Resolved,
        }
    }
}

/// One incident, as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    /// Incident number.
    pub id: i64,
    /// The asset.
    pub asset: String,
    /// Freshness or failure.
    pub kind: IncidentKind,
    /// `warn` or `error` (the highest seen while open).
    pub severity: String,
    /// The owner alerted when it opened (its resolution goes to the same owner).
    pub owner: Option<String>,
    /// `open` or `resolved`.
    pub status: String,
    /// When it opened (RFC 3339).
    pub opened_at: String,
    /// When it was last seen (or resolved).
    pub updated_at: String,
    /// When it was resolved.
    pub resolved_at: Option<String>,
    /// The latest description of the trouble (error message, age of the data).
    pub message: String,
    /// How it was resolved.
    pub resolution: Option<String>,
    /// The run that last failed (failure incidents).
    pub run_id: Option<String>,
    /// Failed runs while open (failure incidents); 1 for freshness incidents.
    pub occurrences: i64,
}

/// A breach or failure seen now, as the backend records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breach {
    /// The asset.
    pub asset: String,
    /// Freshness or failure.
    pub kind: IncidentKind,
    /// `warn` or `error`.
    pub severity: String,
    /// The asset's owner now.
    pub owner: Option<String>,
    /// What is wrong.
    pub message: String,
    /// The failing run (failures).
    pub run_id: Option<String>,
}

/// An alert this process has claimed and must deliver (then [`Incidents::finish_delivery`] it).
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    /// The incident after the transition.
    pub incident: Incident,
    /// Which transition.
    pub event: AlertEvent,
}

/// How a delivery attempt ended, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryOutcome {
    /// `sent`, `failed`, `skipped`.
    pub status: String,
    /// The `owners:` key whose channel was used.
    pub route: Option<String>,
    /// `webhook` or `command`.
    pub channel: Option<String>,
    /// Attempts made (added to those recorded).
    pub attempts: i64,
    /// Why it failed or was skipped.
    pub error: Option<String>,
}

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryRecord {
    /// The incident.
    pub incident_id: i64,
    /// `opened`, `escalated`, `resolved`.
    pub event: String,
    /// `sending` (claimed, in flight), `sent`, `failed`, `skipped` (no channel).
    pub status: String,
    /// The `owners:` key whose channel was used.
    pub route: Option<String>,
    /// `webhook` or `command`.
    pub channel: Option<String>,
    /// Attempts made.
    pub attempts: i64,
    /// Why it failed or was skipped.
    pub error: Option<String>,
}

/// A node's latest result in the run history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestResult {
    /// The node.
    pub node: String,
    /// `success`, `failed`, `skipped`, `cancelled`.
    pub status: String,
    /// Its run.
    pub run_id: String,
    /// Attempts made.
    pub attempts: i64,
    /// The error, for failures.
    pub error: Option<String>,
}

/// Incidents, their deliveries, and the run-history reads the monitor judges them from.
pub trait Incidents: Send + Sync {
    /// Records a breach or failure seen at `now` (RFC 3339). Returns the alert to send when this
    /// opened the incident or escalated it from `warn` to `error`; `None` when it was already open
    /// (and claimed by whoever opened it). While open, each distinct failing run counts once in
    /// `occurrences`.
    fn observe_breach(&self, breach: &Breach, now: &str) -> Result<Option<Claimed>, StateError>;

    /// Records that `asset` is healthy again for `kind` at `now`. Returns the resolution alert to
    /// send when this closed an open incident.
    fn observe_recovery(
        &self,
        asset: &str,
        kind: IncidentKind,
        resolution: &str,
        now: &str,
    ) -> Result<Option<Claimed>, StateError>;

    /// Records how a claimed delivery ended.
    fn finish_delivery(
        &self,
        incident_id: i64,
        event: AlertEvent,
        outcome: &DeliveryOutcome,
        now: &str,
    ) -> Result<(), StateError>;

    /// Deliveries still `sending` although claimed before `claimed_before` (their process died):
    /// claims them again at `now` for the caller.
    fn reclaim_stale_deliveries(
        &self,
        claimed_before: &str,
        now: &str,
    ) -> Result<Vec<Claimed>, StateError>;

    /// Every open incident, oldest first.
    fn open_incidents(&self) -> Result<Vec<Incident>, StateError>;

    /// The newest incidents, open or resolved, at most `limit`.
    fn recent_incidents(&self, limit: usize) -> Result<Vec<Incident>, StateError>;

    /// The deliveries of one incident, in the order claimed.
    fn deliveries(&self, incident_id: i64) -> Result<Vec<DeliveryRecord>, StateError>;

    /// The latest result of every node in a run that builds (runs of the `test` command, which
    /// only re-check published data, are left out), by node. Ties on the end go to the greater run
    /// id.
    fn latest_build_results(&self) -> Result<Vec<LatestResult>, StateError>;

    /// Per node, when it last succeeded and wrote rows (`finished_at`, RFC 3339 as stored), by node.
    fn last_data_updates(&self) -> Result<Vec<(String, String)>, StateError>;
}
