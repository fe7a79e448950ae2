//! `mode: cdc` — change data capture of a PostgreSQL table over logical replication (`pgoutput`).
//!
//! One run of a captured table:
//!
//! 1. **Setup** (`slot.rs`): checks `wal_level = logical`, creates (or reuses) the table's
//!    publication and logical replication slot, and finds the primary key.
//! 2. **Snapshot** (`snapshot.rs`), until it is complete: the table in primary-key chunks, one
//!    commit per chunk, resumable after a crash.
//! 3. **Stream** (`stream.rs`): the changes from the slot up to the server's WAL position at the
//!    start of the stream (a bounded run), whole transactions per commit, then the slot is
//!    acknowledged. A lost connection is retried with backoff; the run then continues.
//!
//! Exactly once: every commit carries the capture's position (`state.rs`) in the same Delta commit
//! as its rows, and the slot is acknowledged only up to what is committed. A restart reads the
//! position back and skips every transaction at or below it, so a crash at any point neither loses
//! nor duplicates a change. Bronze rows carry `_op` (`r` snapshot, `c` insert, `u` update, `d`
//! delete, `t` truncate), `_lsn` (the transaction's commit end LSN), `_seq` (order within the
//! transaction) and `_commit_ts`. The user guide is `docs/sources/postgres.md`.

mod changes;
mod pgoutput;
mod slot;
mod snapshot;
mod state;
mod stream;

use std::collections::BTreeMap;
use std::time::Duration;

pub use slot::default_slot_name;
pub use stream::Until;

use super::client::connect;
use super::types::PgKind;
use crate::error::IngestError;
use crate::landing::{Landing, Pii, land};
use crate::source::{IngestContext, IngestReport};
use changes::ChangeRow;
use sluice_lake::WriteMode;
use state::{CdcState, Phase};

/// Everything CDC needs to know about one captured table.
#[derive(Debug, Clone)]
pub struct CdcTable {
    pub(crate) source: String,
    pub(crate) schema: String,
    pub(crate) table: String,
    pub(crate) slot: String,
    pub(crate) publication: String,
    /// `_source` of the landed rows.
    pub(crate) origin: String,
    pub(crate) primary_key: Vec<String>,
    pub(crate) pii: BTreeMap<String, Pii>,
    pub(crate) pg: tokio_postgres::Config,
    pub(crate) batch_size: usize,
    /// Rows per snapshot chunk; the stream commits after about this many rows (at a transaction
    /// boundary).
    pub(crate) commit_rows: usize,
}

impl CdcTable {
    /// The replication slot's name.
    pub fn slot(&self) -> &str {
        &self.slot
    }

    /// The publication's name.
    pub fn publication(&self) -> &str {
        &self.publication
    }
}

/// One bounded run: setup, the rest of the snapshot if any, then the changes up to the server's
/// current WAL position.
pub(crate) async fn ingest(t: &CdcTable, cx: &IngestContext) -> Result<IngestReport, IngestError> {
    capture(t, cx, Until::CaughtUp).await
}

/// Captures `t` until `until` (caught up, or stopped from outside for a continuous capture).
pub async fn capture(
    t: &CdcTable,
    cx: &IngestContext,
    until: Until,
) -> Result<IngestReport, IngestError> {
    let client = connect(&t.pg)
        .await
        .map_err(|e| e.into_error(&t.source, &t.table, "cannot connect"))?;
    slot::check_wal_level(&client, t).await?;
    let key = slot::primary_key(&client, t).await?;
    slot::ensure_publication(&client, t).await?;
    let mut state = CdcState::read(cx, &t.source, &t.table).await?;
    let (slot_lsn, created) = slot::ensure_slot(&client, t).await?;
    let mut report = IngestReport::default();
    match state.phase.clone() {
        Phase::Stream { lsn } => {
            if created || state.slot.as_deref() != Some(t.slot.as_str()) {
                return Err(slot::setup_error(
                    t,
                    format!(
                        "replication slot `{}` is new, but bronze already holds changes up to LSN \
                         {} from slot `{}`: changes in between may be lost. Drop the bronze table \
                         `{}.{}` to take a new snapshot",
                        t.slot,
                        pgwire_replication::Lsn(lsn),
                        state.slot.as_deref().unwrap_or("?"),
                        t.source,
                        t.table
                    ),
                ));
            }
        }
        Phase::New => {
            state.slot = Some(t.slot.clone());
            state.snapshot_lsn = slot_lsn;
            snapshot::run(&client, t, cx, &key, &mut state, None, &mut report).await?;
        }
        Phase::Snapshot { after } => {
            if created || state.slot.as_deref() != Some(t.slot.as_str()) {
                // The slot the first chunks were read under is gone: changes since its consistent
                // point are lost, so start the snapshot over from the new slot.
                tracing::warn!(slot = %t.slot, "slot recreated during the snapshot; restarting it");
                state.slot = Some(t.slot.clone());
                state.snapshot_lsn = slot_lsn;
                snapshot::run(&client, t, cx, &key, &mut state, None, &mut report).await?;
            } else {
                snapshot::run(&client, t, cx, &key, &mut state, after, &mut report).await?;
            }
        }
    }
    let columns = slot::columns(&client, t).await?;
    stream::run(&client, t, cx, &mut state, columns, until, &mut report).await?;
    report.watermark = Some(pgwire_replication::Lsn(state.lsn()).to_string().into());
    Ok(report)
}

/// Lands `rows` and the new `state` in one commit (an empty commit still records the state).
pub(crate) async fn commit(
    t: &CdcTable,
    cx: &IngestContext,
    state: &mut CdcState,
    columns: &[(String, PgKind)],
    rows: &[ChangeRow],
    report: &mut IngestReport,
) -> Result<(), IngestError> {
    let (batches, rejected) = changes::to_batches(
        columns,
        rows,
        t.batch_size,
        &format!("{}.{}", t.source, t.table),
    )?;
    state.txn_version += 1;
    let landed = land(
        cx,
        Landing {
            source: &t.source,
            table: &t.table,
            batches,
            rejected,
            mode: WriteMode::Append,
            txn_version: state.txn_version,
            metadata: state.metadata(),
            pii: &t.pii,
            origin: &t.origin,
        },
    )
    .await?;
    report.rows_written += landed.rows;
    report.rows_quarantined += landed.quarantined;
    report.commits += u64::from(landed.committed);
    cx.report_progress(report.rows_written);
    Ok(())
}

/// How long a bounded run waits for the server without any message before it stops (normally a
/// keep-alive arrives within milliseconds once the stream has caught up).
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
