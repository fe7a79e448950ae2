//! Incidents and their alerts, in the state database (tables `alert_incidents`, `alert_deliveries`).
//!
//! An incident is one stretch of trouble of one kind on one asset: opened when a breach or failure is
//! first seen, resolved when the asset recovers. Each transition that deserves an alert (opened,
//! escalated warn → error, resolved) is decided and *claimed* in one `BEGIN IMMEDIATE` transaction
//! together with a row in `alert_deliveries` whose primary key is `(incident, event)`. So however many
//! processes watch one state database, and however often they look, exactly one of them sends each
//! alert: the others find the incident already open (or already resolved) and do nothing. A partial
//! unique index keeps one open incident per asset and kind even if a writer forgot the transaction.
//!
//! A process that dies between claiming and finishing a delivery leaves it `sending`;
//! [`IncidentStore::reclaim_stale`] hands such deliveries to the next sweep after a lease, so an
//! alert is not lost (in that one crash window it may be sent twice rather than never).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;
use sluice_core::Severity;

use crate::deliver::Outcome;
use crate::error::MonitorError;

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

    fn parse(s: &str) -> IncidentKind {
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

    fn parse(s: &str) -> AlertEvent {
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

/// An alert this process has claimed and must deliver (then [`IncidentStore::finish`] it).
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    /// The incident after the transition.
    pub incident: Incident,
    /// Which transition.
    pub event: AlertEvent,
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

/// The incident tables, on their own connection to the state database.
#[derive(Debug)]
pub struct IncidentStore {
    conn: Mutex<Connection>,
    path: PathBuf,
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

const INCIDENT_COLUMNS: &str = "id, asset, kind, severity, owner, status, opened_at, updated_at, resolved_at, \
     message, resolution, run_id, occurrences";

fn incident_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Incident> {
    Ok(Incident {
        id: r.get(0)?,
        asset: r.get(1)?,
        kind: IncidentKind::parse(&r.get::<_, String>(2)?),
        severity: r.get(3)?,
        owner: r.get(4)?,
        status: r.get(5)?,
        opened_at: r.get(6)?,
        updated_at: r.get(7)?,
        resolved_at: r.get(8)?,
        message: r.get(9)?,
        resolution: r.get(10)?,
        run_id: r.get(11)?,
        occurrences: r.get(12)?,
    })
}

fn open_incident(
    c: &Connection,
    asset: &str,
    kind: IncidentKind,
) -> rusqlite::Result<Option<Incident>> {
    c.query_row(
        &format!(
            "SELECT {INCIDENT_COLUMNS} FROM alert_incidents WHERE asset = ?1 AND kind = ?2 AND status = 'open'"
        ),
        params![asset, kind.as_str()],
        incident_from_row,
    )
    .optional()
}

fn incident_by_id(c: &Connection, id: i64) -> rusqlite::Result<Incident> {
    c.query_row(
        &format!("SELECT {INCIDENT_COLUMNS} FROM alert_incidents WHERE id = ?1"),
        [id],
        incident_from_row,
    )
}

fn claim(c: &Connection, id: i64, event: AlertEvent, now: &str) -> rusqlite::Result<Claimed> {
    c.execute(
        "INSERT INTO alert_deliveries (incident_id, event, status, created_at, claimed_at) VALUES (?1, ?2, 'sending', ?3, ?3)",
        params![id, event.as_str(), now],
    )?;
    Ok(Claimed {
        incident: incident_by_id(c, id)?,
        event,
    })
}

impl IncidentStore {
    /// Opens the incident tables in the state database at `path` (creating the database, and
    /// migrating it, through `sluice-state`, which owns every state table).
    pub fn open(path: &Path) -> Result<IncidentStore, MonitorError> {
        let conn = sluice_state::open(path)?;
        Ok(IncidentStore {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, MonitorError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn).map_err(|source| MonitorError::Sqlite {
            path: self.path.clone(),
            source,
        })
    }

    /// Records a breach or failure seen at `now`. Returns the alert to send when this opened the
    /// incident or escalated it from `warn` to `error`; `None` when it was already open (and claimed
    /// by whoever opened it).
    pub fn observe_breach(
        &self,
        obs: &Observation,
        now: DateTime<Utc>,
    ) -> Result<Option<Claimed>, MonitorError> {
        let now = ts(now);
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let claimed = match open_incident(&tx, &obs.asset, obs.kind)? {
                None => {
                    tx.execute(
                        "INSERT INTO alert_incidents (asset, kind, severity, owner, status, opened_at, updated_at, message, run_id)
                         VALUES (?1, ?2, ?3, ?4, 'open', ?5, ?5, ?6, ?7)",
                        params![obs.asset, obs.kind.as_str(), obs.severity.as_str(), obs.owner, now, obs.message, obs.run_id],
                    )?;
                    let id = tx.last_insert_rowid();
                    Some(claim(&tx, id, AlertEvent::Opened, &now)?)
                }
                Some(open) => {
                    let escalates =
                        obs.severity == Severity::Error && open.severity != Severity::Error.as_str();
                    // Each failed run counts once (however many monitors report it); freshness
                    // sweeps are not occurrences.
                    tx.execute(
                        "UPDATE alert_incidents SET severity = CASE WHEN ?2 THEN 'error' ELSE severity END,
                         message = ?3, run_id = coalesce(?4, run_id), updated_at = ?5,
                         occurrences = occurrences + CASE WHEN ?4 IS NOT NULL AND ?4 IS NOT run_id THEN 1 ELSE 0 END
                         WHERE id = ?1",
                        params![open.id, escalates, obs.message, obs.run_id, now],
                    )?;
                    if escalates {
                        Some(claim(&tx, open.id, AlertEvent::Escalated, &now)?)
                    } else {
                        None
                    }
                }
            };
            tx.commit()?;
            Ok(claimed)
        })
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
        let now = ts(now);
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let claimed = match open_incident(&tx, asset, kind)? {
                None => None,
                Some(open) => {
                    tx.execute(
                        "UPDATE alert_incidents SET status = 'resolved', resolved_at = ?2, updated_at = ?2, resolution = ?3
                         WHERE id = ?1",
                        params![open.id, now, resolution],
                    )?;
                    Some(claim(&tx, open.id, AlertEvent::Resolved, &now)?)
                }
            };
            tx.commit()?;
            Ok(claimed)
        })
    }

    /// Records how a claimed delivery ended.
    pub fn finish(
        &self,
        claimed: &Claimed,
        outcome: &Outcome,
        now: DateTime<Utc>,
    ) -> Result<(), MonitorError> {
        self.with(|c| {
            c.execute(
                "UPDATE alert_deliveries SET status = ?3, route = ?4, channel = ?5, attempts = attempts + ?6, error = ?7,
                 finished_at = ?8 WHERE incident_id = ?1 AND event = ?2",
                params![
                    claimed.incident.id,
                    claimed.event.as_str(),
                    outcome.status.as_str(),
                    outcome.route,
                    outcome.channel,
                    outcome.attempts,
                    outcome.error,
                    ts(now)
                ],
            )
            .map(|_| ())
        })
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
        let now = ts(now);
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let stale: Vec<(i64, String)> = {
                let mut stmt = tx.prepare(
                    "SELECT incident_id, event FROM alert_deliveries WHERE status = 'sending' AND claimed_at < ?1",
                )?;
                stmt.query_map([&cutoff], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()?
            };
            let mut out = Vec::new();
            for (id, event) in stale {
                tx.execute(
                    "UPDATE alert_deliveries SET claimed_at = ?3 WHERE incident_id = ?1 AND event = ?2",
                    params![id, event, now],
                )?;
                out.push(Claimed {
                    incident: incident_by_id(&tx, id)?,
                    event: AlertEvent::parse(&event),
                });
            }
            tx.commit()?;
            Ok(out)
        })
    }

    /// Every open incident, oldest first.
    pub fn open_incidents(&self) -> Result<Vec<Incident>, MonitorError> {
        self.incident_query("WHERE status = 'open' ORDER BY id", 0)
    }

    /// The newest incidents, open or resolved.
    pub fn recent_incidents(&self, limit: usize) -> Result<Vec<Incident>, MonitorError> {
        self.incident_query("WHERE ?1 >= 0 ORDER BY id DESC LIMIT ?1", limit as i64)
    }

    fn incident_query(&self, tail: &str, arg: i64) -> Result<Vec<Incident>, MonitorError> {
        let uses_arg = tail.contains("?1");
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {INCIDENT_COLUMNS} FROM alert_incidents {tail}"
            ))?;
            let rows = if uses_arg {
                stmt.query_map([arg], incident_from_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()?
            } else {
                stmt.query_map([], incident_from_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()?
            };
            Ok(rows)
        })
    }

    /// The deliveries of one incident, in event order.
    pub fn deliveries(&self, incident_id: i64) -> Result<Vec<DeliveryRecord>, MonitorError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT incident_id, event, status, route, channel, attempts, error FROM alert_deliveries
                 WHERE incident_id = ?1 ORDER BY created_at, rowid",
            )?;
            stmt.query_map([incident_id], |r| {
                Ok(DeliveryRecord {
                    incident_id: r.get(0)?,
                    event: r.get(1)?,
                    status: r.get(2)?,
                    route: r.get(3)?,
                    channel: r.get(4)?,
                    attempts: r.get(5)?,
                    error: r.get(6)?,
                })
            })?
            .collect()
        })
    }

    /// The latest result of every node in a run that builds (`sluice test` runs, which only re-check
    /// published data, are left out).
    pub fn latest_build_results(&self) -> Result<Vec<LatestResult>, MonitorError> {
        self.with(|c| {
            // SQLite takes the bare columns from the row holding max(finished_at).
            let mut stmt = c.prepare(
                "SELECT n.node, n.status, n.run_id, n.attempts, n.error, max(n.finished_at) FROM node_runs n
                 JOIN runs r ON r.run_id = n.run_id WHERE r.command != 'test' GROUP BY n.node ORDER BY n.node",
            )?;
            stmt.query_map([], |r| {
                Ok(LatestResult {
                    node: r.get(0)?,
                    status: r.get(1)?,
                    run_id: r.get(2)?,
                    attempts: r.get(3)?,
                    error: r.get(4)?,
                })
            })?
            .collect()
        })
    }

    /// When each node last succeeded and wrote rows: the time its data was last new.
    pub fn last_data_updates(&self) -> Result<BTreeMap<String, DateTime<Utc>>, MonitorError> {
        let rows: Vec<(String, String)> = self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT node, max(finished_at) FROM node_runs WHERE status = 'success' AND coalesce(rows_out, 0) > 0
                 GROUP BY node",
            )?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })?;
        rows.into_iter()
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
