//! Streaming changes from the slot into bronze, whole transactions per commit, acknowledging the
//! slot only after the commit that holds them.
//!
//! Rows of a transaction are held until its `Commit`, then join the pending batch; the batch is
//! committed at a transaction boundary (every `commit_rows` rows, when caught up, or every
//! `flush_interval` in a continuous capture), so a transaction is never split across commits. Only
//! then is the slot told (`update_applied_lsn`) that everything up to the transaction's end LSN is
//! durable. When the stream is idle, keep-alives report the server's position: with nothing pending
//! the slot is acknowledged up to it, so an idle table does not pin WAL.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use pgwire_replication::{
    FeedbackObserver, Lsn, PgWireError, ReplicationClient, ReplicationConfig, ReplicationEvent,
};
use tokio_postgres::Client;
use tokio_postgres::config::Host;

use super::super::types::PgKind;
use super::changes::{ChangeRow, Op};
use super::pgoutput::{self, Datum, Message, Relation};
use super::slot::{kind_of_oid, setup_error};
use super::state::{CdcState, Phase};
use super::{CdcTable, IDLE_TIMEOUT, commit};
use crate::error::IngestError;
use crate::source::{IngestContext, IngestReport};

/// Microseconds from 1970-01-01 to 2000-01-01 (PostgreSQL's epoch).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Reconnection attempts in a row without progress before the run fails (transiently).
const MAX_ATTEMPTS: u32 = 10;

/// When a capture stops.
#[derive(Debug, Clone)]
pub enum Until {
    /// At the server's WAL position when the stream started (a bounded run, what `sluice run` does).
    CaughtUp,
    /// When the receiver turns `true`; commits at least every `flush_interval` while changes
    /// arrive (a continuous capture).
    Stopped {
        /// Set to `true` to stop.
        stop: tokio::sync::watch::Receiver<bool>,
        /// The longest a complete transaction waits before it is committed.
        flush_interval: Duration,
    },
}

/// Where relation columns go in the table's column list.
struct RelMap {
    id: u32,
    /// Column `i` of the relation's tuples is column `index[i]` of the list.
    index: Vec<usize>,
    /// Which relation columns form the replica identity (the key).
    key: Vec<bool>,
}

/// The stream's running state across reconnections.
struct Stream<'a> {
    t: &'a CdcTable,
    cx: &'a IngestContext,
    columns: Vec<(String, PgKind)>,
    kinds: HashMap<(u32, i32), PgKind>,
    rel: Option<RelMap>,
    /// Complete transactions not committed yet, and the end LSN of the last one.
    pending: Vec<ChangeRow>,
    pending_lsn: u64,
    pending_since: Option<Instant>,
    /// The highest position acknowledged to the server.
    acked: u64,
    warned_toast: bool,
}

/// Runs the stream until `until`, reconnecting with backoff after a lost connection.
pub(crate) async fn run(
    client: &Client,
    t: &CdcTable,
    cx: &IngestContext,
    state: &mut CdcState,
    columns: Vec<(String, PgKind)>,
    until: Until,
    report: &mut IngestReport,
) -> Result<(), IngestError> {
    // A bounded run stops at a marker it writes into the WAL now: a non-transactional logical
    // message, decoded after every transaction committed before it. (Waiting for a keep-alive to
    // pass the current WAL position instead can wait for the server's idle timer, 30 s by default,
    // when that position ends inside a record.) The marker also moves an idle slot forward.
    let target = match until {
        Until::CaughtUp => Some(emit_marker(client, t).await?),
        Until::Stopped { .. } => None,
    };
    let mut s = Stream {
        t,
        cx,
        columns,
        kinds: HashMap::new(),
        rel: None,
        pending: Vec::new(),
        pending_lsn: 0,
        pending_since: None,
        acked: state.lsn(),
        warned_toast: false,
    };
    let mut failures = 0u32;
    loop {
        let before = state.lsn().max(s.acked);
        let result = s.session(state, &until, target.as_deref(), report).await;
        // Whatever whole transactions arrived before a failure are still committed.
        let flushed = s.flush(state, report).await;
        match (result, flushed) {
            (Ok(()), Ok(())) => return Ok(()),
            (Err(e), _) | (Ok(()), Err(e)) if !e.is_transient() => return Err(e),
            (Err(e), _) | (Ok(()), Err(e)) => {
                if state.lsn().max(s.acked) > before {
                    failures = 0;
                }
                failures += 1;
                if failures > MAX_ATTEMPTS {
                    return Err(e);
                }
                let delay = Duration::from_millis(200 * 2u64.pow(failures.min(5)));
                tracing::warn!(
                    source = %t.source, table = %t.table, error = %e, attempt = failures,
                    delay_ms = delay.as_millis() as u64, "replication interrupted; reconnecting"
                );
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Whether a replication error may pass: lost connections, server shutdowns and restarts, the slot
/// still held by a walsender of a connection that just died, too many connections.
fn wire_transient(e: &PgWireError) -> bool {
    match e {
        PgWireError::Io(_) | PgWireError::Task(_) => true,
        PgWireError::Server(m) => ["57P01", "57P02", "57P03", "55006", "53300", "08"]
            .iter()
            .any(|code| m.contains(&format!("SQLSTATE {code}"))),
        _ => false,
    }
}

/// The prefix of the logical messages that mark the end of a bounded run.
const MARKER_PREFIX: &str = "sluice.cdc";

/// Writes a marker message for this run into the WAL; returns its content (unique per run).
async fn emit_marker(client: &Client, t: &CdcTable) -> Result<String, IngestError> {
    let marker = format!("{}:{}", t.slot, uuid::Uuid::new_v4().simple());
    client
        .query_one(
            "SELECT pg_logical_emit_message(false, $1, $2)::text",
            &[&MARKER_PREFIX, &marker],
        )
        .await
        .map_err(super::slot::fail(
            t,
            "cannot write the end-of-run marker into the WAL",
        ))?;
    Ok(marker)
}

fn replication_config(t: &CdcTable, start: u64) -> Result<ReplicationConfig, IngestError> {
    let host = match t.pg.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_string(),
    };
    let password =
        t.pg.get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_default();
    let user =
        t.pg.get_user()
            .ok_or_else(|| setup_error(t, "the connection names no user".into()))?;
    let dbname = t.pg.get_dbname().unwrap_or(user);
    Ok(ReplicationConfig::new(
        host,
        user,
        password,
        dbname,
        t.slot.clone(),
        t.publication.clone(),
    )
    .with_port(t.pg.get_ports().first().copied().unwrap_or(5432))
    .with_start_lsn(Lsn(start))
    .with_ack_lsn(Lsn(start))
    .with_binary(true)
    .with_status_interval(Duration::from_millis(100))
    .with_wakeup_interval(Duration::from_secs(1))
    .with_application_name("sluice-cdc"))
}

impl Stream<'_> {
    fn error(&self, message: String, transient: bool) -> IngestError {
        IngestError::Read {
            source_name: self.t.source.clone(),
            table: self.t.table.clone(),
            message,
            transient,
        }
    }

    fn wire_error(&self, e: &PgWireError) -> IngestError {
        self.error(
            format!("replication slot `{}`: {e}", self.t.slot),
            wire_transient(e),
        )
    }

    /// One replication connection: streams until `until` or an error.
    async fn session(
        &mut self,
        state: &mut CdcState,
        until: &Until,
        target: Option<&str>,
        report: &mut IngestReport,
    ) -> Result<(), IngestError> {
        let sent = Arc::new(AtomicU64::new(0));
        let counter = sent.clone();
        let cfg = replication_config(self.t, state.lsn())?.with_feedback_observer(
            FeedbackObserver::new(move |_| {
                counter.fetch_add(1, Ordering::SeqCst);
            }),
        );
        let mut client = ReplicationClient::connect(cfg)
            .await
            .map_err(|e| self.wire_error(&e))?;
        client
            .wait_started()
            .await
            .map_err(|e| self.wire_error(&e))?;
        // The slot is ours now: a run that held it before may have committed since we read.
        let fresh = CdcState::read(self.cx, &self.t.source, &self.t.table).await?;
        if fresh.txn_version > state.txn_version {
            *state = fresh;
        }
        self.rel = None;
        let mut txn: Option<(Vec<ChangeRow>, i64)> = None;
        let mut stop_rx = match until {
            Until::Stopped { stop, .. } => Some(stop.clone()),
            Until::CaughtUp => None,
        };
        let result: Result<(), IngestError> = async {
            loop {
                let wait = match until {
                    Until::CaughtUp => IDLE_TIMEOUT,
                    Until::Stopped { flush_interval, .. } => match self.pending_since {
                        Some(since) => flush_interval.saturating_sub(since.elapsed()),
                        None => Duration::from_secs(1),
                    },
                };
                let event = tokio::select! {
                    changed = async {
                        match stop_rx.as_mut() {
                            Some(rx) => rx.wait_for(|stop| *stop).await.map(|_| ()),
                            None => std::future::pending().await,
                        }
                    } => {
                        let _ = changed;
                        self.flush(state, report).await?;
                        self.ack(&client, state.lsn());
                        return Ok(());
                    }
                    event = tokio::time::timeout(wait, client.recv()) => event,
                };
                let event = match event {
                    Err(_elapsed) => {
                        if txn.is_none() {
                            self.flush(state, report).await?;
                            self.ack(&client, state.lsn());
                        }
                        if target.is_some() {
                            tracing::warn!(slot = %self.t.slot, "no message from the server; stopping the run");
                            return Ok(());
                        }
                        continue;
                    }
                    Ok(Err(e)) => return Err(self.wire_error(&e)),
                    Ok(Ok(None)) => {
                        return Err(self.error("the replication stream ended".into(), true));
                    }
                    Ok(Ok(Some(ev))) => ev,
                };
                match event {
                    ReplicationEvent::Begin {
                        commit_time_micros, ..
                    } => txn = Some((Vec::new(), commit_time_micros + PG_EPOCH_MICROS)),
                    ReplicationEvent::XLogData { data, .. } => {
                        let message = pgoutput::parse(&data).map_err(|e| self.error(e, false))?;
                        self.on_message(message, &mut txn).await?;
                    }
                    ReplicationEvent::Commit {
                        end_lsn,
                        commit_time_micros,
                        ..
                    } => {
                        let Some((rows, _)) = txn.take() else {
                            continue;
                        };
                        let end = end_lsn.0;
                        // Already landed before a crash or reconnection: skip, never land twice.
                        if end > state.lsn() && end > self.pending_lsn {
                            let ts = commit_time_micros + PG_EPOCH_MICROS;
                            for mut r in rows {
                                r.lsn = end;
                                r.commit_ts = Some(ts);
                                self.pending.push(r);
                            }
                            self.pending_lsn = end;
                            self.pending_since.get_or_insert_with(Instant::now);
                        }
                        if self.pending.len() >= self.t.commit_rows {
                            self.flush(state, report).await?;
                            self.ack(&client, state.lsn());
                        }
                    }
                    ReplicationEvent::Message {
                        transactional: false,
                        lsn,
                        prefix,
                        content,
                    } if prefix == MARKER_PREFIX && target.is_some_and(|t| content == t.as_bytes()) => {
                        // Caught up: everything committed before the marker has arrived.
                        self.flush(state, report).await?;
                        self.ack(&client, lsn.0.max(state.lsn()));
                        return Ok(());
                    }
                    ReplicationEvent::KeepAlive { wal_end, .. } => {
                        if txn.is_none() && self.pending.is_empty() {
                            // Heartbeat: nothing of ours is in flight, so the slot may move past
                            // WAL that holds no change of this table.
                            self.ack(&client, wal_end.0);
                        }
                    }
                    ReplicationEvent::Message { .. } | ReplicationEvent::StoppedAt { .. } => {}
                }
                if let (Until::Stopped { flush_interval, .. }, None, Some(since)) =
                    (until, &txn, self.pending_since)
                    && since.elapsed() >= *flush_interval
                {
                    self.flush(state, report).await?;
                    self.ack(&client, state.lsn());
                }
            }
        }
        .await;
        if result.is_ok() {
            // Give the worker a moment to tell the server what was acknowledged; if it does not,
            // the next run re-reads those transactions and skips them.
            let seen = sent.load(Ordering::SeqCst);
            let deadline = Instant::now() + Duration::from_secs(1);
            while sent.load(Ordering::SeqCst) == seen && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let _ = tokio::time::timeout(Duration::from_secs(2), client.shutdown()).await;
        } else {
            client.abort();
        }
        result
    }

    /// Tells the server everything up to `lsn` is durable (never more than was committed).
    fn ack(&mut self, client: &ReplicationClient, lsn: u64) {
        if lsn > self.acked {
            client.update_applied_lsn(Lsn(lsn));
            self.acked = lsn;
        }
    }

    /// Commits the pending transactions with their end LSN as the new position.
    async fn flush(
        &mut self,
        state: &mut CdcState,
        report: &mut IngestReport,
    ) -> Result<(), IngestError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.pending);
        let previous = state.phase.clone();
        state.phase = Phase::Stream {
            lsn: self.pending_lsn,
        };
        report.rows_read += rows.len() as u64;
        if let Err(e) = commit(self.t, self.cx, state, &self.columns, &rows, report).await {
            // Not committed: keep the rows (a retry commits them) and the old position.
            state.phase = previous;
            state.txn_version -= 1;
            report.rows_read -= rows.len() as u64;
            self.pending = rows;
            return Err(e);
        }
        self.pending_since = None;
        Ok(())
    }

    async fn on_message(
        &mut self,
        message: Message,
        txn: &mut Option<(Vec<ChangeRow>, i64)>,
    ) -> Result<(), IngestError> {
        let ours = |rel: &Option<RelMap>, id: u32| rel.as_ref().is_some_and(|r| r.id == id);
        match message {
            Message::Relation(r) => {
                if r.schema == self.t.schema && r.name == self.t.table {
                    self.rel = Some(self.map_relation(&r).await?);
                }
            }
            Message::Insert { relation, new } if ours(&self.rel, relation) => {
                let values = self.values(&new, None);
                self.push(txn, Op::Insert, values)?;
            }
            Message::Update { relation, old, new } if ours(&self.rel, relation) => {
                if let (Some(old), Some(rel)) = (&old, &self.rel) {
                    // A changed primary key: the old key disappears.
                    let moved = rel.key.iter().enumerate().any(|(i, k)| {
                        *k && old.get(i) != new.get(i) && old.get(i) != Some(&Datum::Null)
                    });
                    if moved {
                        let values = self.values(old, None);
                        self.push(txn, Op::Delete, values)?;
                    }
                }
                let values = self.values(&new, old.as_deref());
                self.push(txn, Op::Update, values)?;
            }
            Message::Delete { relation, old } if ours(&self.rel, relation) => {
                let values = self.values(&old, None);
                self.push(txn, Op::Delete, values)?;
            }
            Message::Truncate { relations } if relations.iter().any(|id| ours(&self.rel, *id)) => {
                self.push(txn, Op::Truncate, Vec::new())?;
            }
            Message::Truncate { .. }
            | Message::Insert { .. }
            | Message::Update { .. }
            | Message::Delete { .. }
            | Message::Other(_) => {}
        }
        Ok(())
    }

    fn push(
        &self,
        txn: &mut Option<(Vec<ChangeRow>, i64)>,
        op: Op,
        values: Vec<Option<Vec<u8>>>,
    ) -> Result<(), IngestError> {
        let Some((rows, _)) = txn.as_mut() else {
            return Err(self.error("a change arrived outside a transaction".into(), true));
        };
        rows.push(ChangeRow {
            op,
            lsn: 0,
            seq: i64::try_from(rows.len()).unwrap_or(i64::MAX),
            commit_ts: None,
            values,
        });
        Ok(())
    }

    /// A tuple's values placed at their columns; an unchanged TOAST value is taken from the old row
    /// when the server sent it (`REPLICA IDENTITY FULL`), else it lands as NULL (with a warning).
    fn values(&mut self, tuple: &[Datum], old: Option<&[Datum]>) -> Vec<Option<Vec<u8>>> {
        let mut out = vec![None; self.columns.len()];
        let Some(rel) = &self.rel else {
            return out;
        };
        for (i, d) in tuple.iter().enumerate() {
            let Some(&at) = rel.index.get(i) else {
                continue;
            };
            out[at] = match d {
                Datum::Null => None,
                Datum::Binary(b) | Datum::Text(b) => Some(b.clone()),
                Datum::UnchangedToast => match old.and_then(|o| o.get(i)) {
                    Some(Datum::Binary(b) | Datum::Text(b)) => Some(b.clone()),
                    _ => {
                        if !self.warned_toast {
                            tracing::warn!(
                                table = %self.t.table, column = %self.columns[at].0,
                                "an update kept a large (TOASTed) value that PostgreSQL does not \
                                 resend; it lands as NULL. Set REPLICA IDENTITY FULL on the table"
                            );
                        }
                        self.warned_toast = true;
                        None
                    }
                },
            };
        }
        out
    }

    /// Maps a `Relation` message onto the column list, adding columns added upstream.
    async fn map_relation(&mut self, r: &Relation) -> Result<RelMap, IngestError> {
        let mut index = Vec::with_capacity(r.columns.len());
        for c in &r.columns {
            let kind = match self.kinds.get(&(c.type_oid, c.typmod)) {
                Some(k) => k.clone(),
                None => {
                    let k = kind_of_oid(self.t, &c.name, c.type_oid, c.typmod).await?;
                    self.kinds.insert((c.type_oid, c.typmod), k.clone());
                    k
                }
            };
            match self.columns.iter().position(|(n, _)| *n == c.name) {
                Some(at) if self.columns[at].1 == kind => index.push(at),
                Some(at) => {
                    return Err(self.error(
                        format!(
                            "column `{}` changed type upstream (from {:?} to {:?}); CDC cannot \
                             change a bronze column's type: drop the bronze table to take a new \
                             snapshot",
                            c.name, self.columns[at].1, kind
                        ),
                        false,
                    ));
                }
                None => {
                    tracing::info!(table = %self.t.table, column = %c.name, "column added upstream");
                    self.columns.push((c.name.clone(), kind));
                    index.push(self.columns.len() - 1);
                }
            }
        }
        Ok(RelMap {
            id: r.id,
            index,
            key: r.columns.iter().map(|c| c.key).collect(),
        })
    }
}
