//! [`Incidents`] on SQLite (tables `alert_incidents`, `alert_deliveries`; the latest results are
//! read from `node_runs` and `runs`). Each transition runs under `BEGIN IMMEDIATE`, so the open
//! incident is read and changed under the write lock.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::SqliteStore;
use crate::StateError;
use crate::incidents::{
    AlertEvent, Breach, Claimed, DeliveryOutcome, DeliveryRecord, Incident, IncidentKind,
    Incidents, LatestResult,
};

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

/// Runs `f` in a `BEGIN IMMEDIATE` transaction.
fn immediate<T>(
    c: &Connection,
    f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    let tx = rusqlite::Transaction::new_unchecked(c, TransactionBehavior::Immediate)?;
    let out = f(&tx)?;
    tx.commit()?;
    Ok(out)
}

impl Incidents for SqliteStore {
    fn observe_breach(&self, b: &Breach, now: &str) -> Result<Option<Claimed>, StateError> {
        self.with(|c| {
            immediate(c, |tx| match open_incident(tx, &b.asset, b.kind)? {
                None => {
                    let id: i64 = tx.query_row(
                        "INSERT INTO alert_incidents (asset, kind, severity, owner, status, opened_at, updated_at, message, run_id)
                         VALUES (?1, ?2, ?3, ?4, 'open', ?5, ?5, ?6, ?7) RETURNING id",
                        params![b.asset, b.kind.as_str(), b.severity, b.owner, now, b.message, b.run_id],
                        |r| r.get(0),
                    )?;
                    claim(tx, id, AlertEvent::Opened, now).map(Some)
                }
                Some(open) => {
                    let escalates = b.severity == "error" && open.severity != "error";
                    // Each failed run counts once (however many monitors report it); freshness
                    // sweeps are not occurrences.
                    tx.execute(
                        "UPDATE alert_incidents SET severity = CASE WHEN ?2 THEN 'error' ELSE severity END,
                         message = ?3, run_id = coalesce(?4, run_id), updated_at = ?5,
                         occurrences = occurrences + CASE WHEN ?4 IS NOT NULL AND ?4 IS DISTINCT FROM run_id THEN 1 ELSE 0 END
                         WHERE id = ?1",
                        params![open.id, escalates, b.message, b.run_id, now],
                    )?;
                    if escalates {
                        claim(tx, open.id, AlertEvent::Escalated, now).map(Some)
                    } else {
                        Ok(None)
                    }
                }
            })
        })
    }

    fn observe_recovery(
        &self,
        asset: &str,
        kind: IncidentKind,
        resolution: &str,
        now: &str,
    ) -> Result<Option<Claimed>, StateError> {
        self.with(|c| {
            immediate(c, |tx| match open_incident(tx, asset, kind)? {
                None => Ok(None),
                Some(open) => {
                    tx.execute(
                        "UPDATE alert_incidents SET status = 'resolved', resolved_at = ?2, updated_at = ?2, resolution = ?3
                         WHERE id = ?1",
                        params![open.id, now, resolution],
                    )?;
                    claim(tx, open.id, AlertEvent::Resolved, now).map(Some)
                }
            })
        })
    }

    fn finish_delivery(
        &self,
        incident_id: i64,
        event: AlertEvent,
        o: &DeliveryOutcome,
        now: &str,
    ) -> Result<(), StateError> {
        self.with(|c| {
            c.execute(
                "UPDATE alert_deliveries SET status = ?3, route = ?4, channel = ?5, attempts = attempts + ?6, error = ?7,
                 finished_at = ?8 WHERE incident_id = ?1 AND event = ?2",
                params![
                    incident_id,
                    event.as_str(),
                    o.status,
                    o.route,
                    o.channel,
                    o.attempts,
                    o.error,
                    now
                ],
            )
            .map(|_| ())
        })
    }

    fn reclaim_stale_deliveries(
        &self,
        claimed_before: &str,
        now: &str,
    ) -> Result<Vec<Claimed>, StateError> {
        self.with(|c| {
            immediate(c, |tx| {
                let stale: Vec<(i64, String)> = {
                    let mut stmt = tx.prepare(
                        "SELECT incident_id, event FROM alert_deliveries WHERE status = 'sending' AND claimed_at < ?1",
                    )?;
                    stmt.query_map([claimed_before], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect::<rusqlite::Result<_>>()?
                };
                let mut out = Vec::new();
                for (id, event) in stale {
                    tx.execute(
                        "UPDATE alert_deliveries SET claimed_at = ?3 WHERE incident_id = ?1 AND event = ?2",
                        params![id, event, now],
                    )?;
                    out.push(Claimed {
                        incident: incident_by_id(tx, id)?,
                        event: AlertEvent::parse(&event),
                    });
                }
                Ok(out)
            })
        })
    }

    fn open_incidents(&self) -> Result<Vec<Incident>, StateError> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {INCIDENT_COLUMNS} FROM alert_incidents WHERE status = 'open' ORDER BY id"
            ))?;
            stmt.query_map([], incident_from_row)?.collect()
        })
    }

    fn recent_incidents(&self, limit: usize) -> Result<Vec<Incident>, StateError> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {INCIDENT_COLUMNS} FROM alert_incidents ORDER BY id DESC LIMIT ?1"
            ))?;
            stmt.query_map(
                [i64::try_from(limit).unwrap_or(i64::MAX)],
                incident_from_row,
            )?
            .collect()
        })
    }

    fn deliveries(&self, incident_id: i64) -> Result<Vec<DeliveryRecord>, StateError> {
        self.with(|c| {
            // SQLite's table has no `seq` column: its rowid is the insertion order.
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

    fn latest_build_results(&self) -> Result<Vec<LatestResult>, StateError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT node, status, run_id, attempts, error FROM (
                   SELECT n.node, n.status, n.run_id, n.attempts, n.error,
                          row_number() OVER (PARTITION BY n.node ORDER BY n.finished_at DESC, n.run_id DESC) AS k
                   FROM node_runs n JOIN runs r ON r.run_id = n.run_id WHERE r.command <> 'test') AS latest
                 WHERE k = 1 ORDER BY node",
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

    fn last_data_updates(&self) -> Result<Vec<(String, String)>, StateError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT node, max(finished_at) FROM node_runs WHERE status = 'success' AND coalesce(rows_out, 0) > 0
                 GROUP BY node ORDER BY node",
            )?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
    }
}
