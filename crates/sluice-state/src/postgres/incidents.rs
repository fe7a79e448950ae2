//! [`Incidents`] on PostgreSQL: the statements of `sqlite/incidents.rs`. Where SQLite takes its
//! write lock for a transition, a transaction here takes an advisory lock on the asset and kind, so
//! of several workers seeing one breach exactly one opens the incident and claims its alert (the
//! partial unique index on open incidents backs this up); stale deliveries are reclaimed with
//! `FOR UPDATE SKIP LOCKED`, so two sweeps never take the same one.

use tokio_postgres::{Error, GenericClient, Row};

use super::PostgresStore;
use crate::StateError;
use crate::incidents::{
    AlertEvent, Breach, Claimed, DeliveryOutcome, DeliveryRecord, Incident, IncidentKind,
    Incidents, LatestResult,
};

const INCIDENT_COLUMNS: &str = "id, asset, kind, severity, owner, status, opened_at, updated_at, resolved_at, \
     message, resolution, run_id, occurrences";

fn incident_from_row(r: &Row) -> Incident {
    Incident {
        id: r.get(0),
        asset: r.get(1),
        kind: IncidentKind::parse(r.get(2)),
        severity: r.get(3),
        owner: r.get(4),
        status: r.get(5),
        opened_at: r.get(6),
        updated_at: r.get(7),
        resolved_at: r.get(8),
        message: r.get(9),
        resolution: r.get(10),
        run_id: r.get(11),
        occurrences: r.get(12),
    }
}

async fn lock(c: &impl GenericClient, asset: &str, kind: IncidentKind) -> Result<(), Error> {
    let key = format!("alert_incidents\u{1f}{asset}\u{1f}{}", kind.as_str());
    c.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&key])
        .await
        .map(|_| ())
}

async fn open_incident(
    c: &impl GenericClient,
    asset: &str,
    kind: IncidentKind,
) -> Result<Option<Incident>, Error> {
    let sql = format!(
        "SELECT {INCIDENT_COLUMNS} FROM alert_incidents WHERE asset = $1 AND kind = $2 AND status = 'open'"
    );
    Ok(c.query_opt(&sql, &[&asset, &kind.as_str()])
        .await?
        .as_ref()
        .map(incident_from_row))
}

async fn incident_by_id(c: &impl GenericClient, id: i64) -> Result<Incident, Error> {
    let sql = format!("SELECT {INCIDENT_COLUMNS} FROM alert_incidents WHERE id = $1");
    Ok(incident_from_row(&c.query_one(&sql, &[&id]).await?))
}

async fn claim(
    c: &impl GenericClient,
    id: i64,
    event: AlertEvent,
    now: &str,
) -> Result<Claimed, Error> {
    c.execute(
        "INSERT INTO alert_deliveries (incident_id, event, status, created_at, claimed_at) VALUES ($1, $2, 'sending', $3, $3)",
        &[&id, &event.as_str(), &now],
    )
    .await?;
    Ok(Claimed {
        incident: incident_by_id(c, id).await?,
        event,
    })
}

impl Incidents for PostgresStore {
    fn observe_breach(&self, breach: &Breach, now: &str) -> Result<Option<Claimed>, StateError> {
        let (b, now) = (breach.clone(), now.to_string());
        self.exec(move |c, rt| {
            rt.block_on(async {
                let tx = c.transaction().await?;
                lock(&tx, &b.asset, b.kind).await?;
                let claimed = match open_incident(&tx, &b.asset, b.kind).await? {
                    None => {
                        let id: i64 = tx
                            .query_one(
                                "INSERT INTO alert_incidents (asset, kind, severity, owner, status, opened_at, updated_at, message, run_id)
                                 VALUES ($1, $2, $3, $4, 'open', $5, $5, $6, $7) RETURNING id",
                                &[&b.asset, &b.kind.as_str(), &b.severity, &b.owner, &now, &b.message, &b.run_id],
                            )
                            .await?
                            .get(0);
                        Some(claim(&tx, id, AlertEvent::Opened, &now).await?)
                    }
                    Some(open) => {
                        let escalates = b.severity == "error" && open.severity != "error";
                        // Each failed run counts once; freshness sweeps are not occurrences.
                        tx.execute(
                            "UPDATE alert_incidents SET severity = CASE WHEN $2 THEN 'error' ELSE severity END,
                             message = $3, run_id = coalesce($4, run_id), updated_at = $5,
                             occurrences = occurrences + CASE WHEN $4::TEXT IS NOT NULL AND $4::TEXT IS DISTINCT FROM run_id THEN 1 ELSE 0 END
                             WHERE id = $1",
                            &[&open.id, &escalates, &b.message, &b.run_id, &now],
                        )
                        .await?;
                        if escalates {
                            Some(claim(&tx, open.id, AlertEvent::Escalated, &now).await?)
                        } else {
                            None
                        }
                    }
                };
                tx.commit().await?;
                Ok(claimed)
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
        let (asset, resolution, now) = (asset.to_string(), resolution.to_string(), now.to_string());
        self.exec(move |c, rt| {
            rt.block_on(async {
                let tx = c.transaction().await?;
                lock(&tx, &asset, kind).await?;
                let claimed = match open_incident(&tx, &asset, kind).await? {
                    None => None,
                    Some(open) => {
                        tx.execute(
                            "UPDATE alert_incidents SET status = 'resolved', resolved_at = $2, updated_at = $2, resolution = $3
                             WHERE id = $1",
                            &[&open.id, &now, &resolution],
                        )
                        .await?;
                        Some(claim(&tx, open.id, AlertEvent::Resolved, &now).await?)
                    }
                };
                tx.commit().await?;
                Ok(claimed)
            })
        })
    }

    fn finish_delivery(
        &self,
        incident_id: i64,
        event: AlertEvent,
        outcome: &DeliveryOutcome,
        now: &str,
    ) -> Result<(), StateError> {
        let (o, now) = (outcome.clone(), now.to_string());
        self.exec(move |c, rt| {
            rt.block_on(c.execute(
                "UPDATE alert_deliveries SET status = $3, route = $4, channel = $5, attempts = attempts + $6, error = $7,
                 finished_at = $8 WHERE incident_id = $1 AND event = $2",
                &[&incident_id, &event.as_str(), &o.status, &o.route, &o.channel, &o.attempts, &o.error, &now],
            ))
            .map(|_| ())
        })
    }

    fn reclaim_stale_deliveries(
        &self,
        claimed_before: &str,
        now: &str,
    ) -> Result<Vec<Claimed>, StateError> {
        let (claimed_before, now) = (claimed_before.to_string(), now.to_string());
        self.exec(move |c, rt| {
            rt.block_on(async {
                let tx = c.transaction().await?;
                let stale: Vec<(i64, String)> = tx
                    .query(
                        "SELECT incident_id, event FROM alert_deliveries WHERE status = 'sending' AND claimed_at < $1
                         ORDER BY seq FOR UPDATE SKIP LOCKED",
                        &[&claimed_before],
                    )
                    .await?
                    .iter()
                    .map(|r| (r.get(0), r.get(1)))
                    .collect();
                let mut out = Vec::new();
                for (id, event) in stale {
                    tx.execute(
                        "UPDATE alert_deliveries SET claimed_at = $3 WHERE incident_id = $1 AND event = $2",
                        &[&id, &event, &now],
                    )
                    .await?;
                    out.push(Claimed {
                        incident: incident_by_id(&tx, id).await?,
                        event: AlertEvent::parse(&event),
                    });
                }
                tx.commit().await?;
                Ok(out)
            })
        })
    }

    fn open_incidents(&self) -> Result<Vec<Incident>, StateError> {
        self.exec(move |c, rt| {
            let sql = format!(
                "SELECT {INCIDENT_COLUMNS} FROM alert_incidents WHERE status = 'open' ORDER BY id"
            );
            let rows = rt.block_on(c.query(&sql, &[]))?;
            Ok(rows.iter().map(incident_from_row).collect())
        })
    }

    fn recent_incidents(&self, limit: usize) -> Result<Vec<Incident>, StateError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.exec(move |c, rt| {
            let sql =
                format!("SELECT {INCIDENT_COLUMNS} FROM alert_incidents ORDER BY id DESC LIMIT $1");
            let rows = rt.block_on(c.query(&sql, &[&limit]))?;
            Ok(rows.iter().map(incident_from_row).collect())
        })
    }

    fn deliveries(&self, incident_id: i64) -> Result<Vec<DeliveryRecord>, StateError> {
        self.exec(move |c, rt| {
            let rows = rt.block_on(c.query(
                "SELECT incident_id, event, status, route, channel, attempts, error FROM alert_deliveries
                 WHERE incident_id = $1 ORDER BY created_at, seq",
                &[&incident_id],
            ))?;
            Ok(rows
                .iter()
                .map(|r| DeliveryRecord {
                    incident_id: r.get(0),
                    event: r.get(1),
                    status: r.get(2),
                    route: r.get(3),
                    channel: r.get(4),
                    attempts: r.get(5),
                    error: r.get(6),
                })
                .collect())
        })
    }

    fn latest_build_results(&self) -> Result<Vec<LatestResult>, StateError> {
        self.exec(move |c, rt| {
            let rows = rt.block_on(c.query(
                "SELECT node, status, run_id, attempts, error FROM (
                   SELECT n.node, n.status, n.run_id, n.attempts, n.error,
                          row_number() OVER (PARTITION BY n.node ORDER BY n.finished_at DESC, n.run_id DESC) AS k
                   FROM node_runs n JOIN runs r ON r.run_id = n.run_id WHERE r.command <> 'test') AS latest
                 WHERE k = 1 ORDER BY node",
                &[],
            ))?;
            Ok(rows
                .iter()
                .map(|r| LatestResult {
                    node: r.get(0),
                    status: r.get(1),
                    run_id: r.get(2),
                    attempts: r.get(3),
                    error: r.get(4),
                })
                .collect())
        })
    }

    fn last_data_updates(&self) -> Result<Vec<(String, String)>, StateError> {
        self.exec(move |c, rt| {
            let rows = rt.block_on(c.query(
                "SELECT node, max(finished_at) FROM node_runs WHERE status = 'success' AND coalesce(rows_out, 0) > 0
                 GROUP BY node ORDER BY node",
                &[],
            ))?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }
}
