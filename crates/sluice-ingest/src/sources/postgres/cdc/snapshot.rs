//! The initial snapshot: the table read in primary-key order, one commit per chunk.
//!
//! Each chunk is one `SELECT … WHERE (key) > (last key landed) ORDER BY key LIMIT n`, committed with
//! the key of its last row, so a crash resumes at the next chunk instead of starting over. Rows land
//! as `_op = 'r'` with `_lsn` = the slot's consistent point. Chunks are read after the slot exists,
//! each at its own moment, so a row may already show a change that the stream will replay later (with
//! a higher `_lsn`): replaying a change on top of its own effect gives the same row, so applying the
//! changes in `_lsn` order after the snapshot always ends at the source's state.

use futures::TryStreamExt;
use tokio_postgres::Client;

use super::super::client::quote;
use super::super::decode::Raw;
use super::super::types::kind_of;
use super::changes::{ChangeRow, Op};
use super::slot::{fail, relation_sql, setup_error};
use super::state::{CdcState, Phase};
use super::{CdcTable, commit};
use crate::error::IngestError;
use crate::source::{IngestContext, IngestReport};

/// Lands the remaining snapshot chunks of `t`, starting after `after`; leaves `state` in the stream
/// phase at the snapshot's LSN.
pub(crate) async fn run(
    client: &Client,
    t: &CdcTable,
    cx: &IngestContext,
    key: &[(String, String)],
    state: &mut CdcState,
    mut after: Option<Vec<String>>,
    report: &mut IngestReport,
) -> Result<(), IngestError> {
    let rel = relation_sql(t);
    let key_cols: Vec<String> = key.iter().map(|(n, _)| format!("t.{}", quote(n))).collect();
    let order = key_cols.join(", ");
    let key_text: Vec<String> = key_cols.iter().map(|c| format!("({c})::text")).collect();
    let params: Vec<String> = key
        .iter()
        .enumerate()
        .map(|(i, (_, ty))| format!("CAST(${}::text AS {ty})", i + 1))
        .collect();
    let limit = t.commit_rows.max(1);
    let first_sql = format!(
        "SELECT t.*, {} FROM {rel} t ORDER BY {order} LIMIT {limit}",
        key_text.join(", ")
    );
    let next_sql = format!(
        "SELECT t.*, {} FROM {rel} t WHERE ROW({order}) > ROW({}) ORDER BY {order} LIMIT {limit}",
        key_text.join(", "),
        params.join(", ")
    );
    let first = client
        .prepare(&first_sql)
        .await
        .map_err(fail(t, &format!("cannot read `{}.{}`", t.schema, t.table)))?;
    let next = client
        .prepare(&next_sql)
        .await
        .map_err(fail(t, &format!("cannot read `{}.{}`", t.schema, t.table)))?;
    let ncols = first.columns().len() - key.len();
    let mut columns = Vec::with_capacity(ncols);
    let qualified = format!("{}.{}", t.schema, t.table);
    for c in &first.columns()[..ncols] {
        columns.push((c.name().to_string(), kind_of(c, &t.source, &qualified)?));
    }
    loop {
        let stream = match &after {
            None => client.query_raw(&first, Vec::<String>::new()).await,
            Some(a) => client.query_raw(&next, a.iter()).await,
        }
        .map_err(fail(t, &format!("snapshot of `{}.{}`", t.schema, t.table)))?;
        let mut stream = std::pin::pin!(stream);
        let mut rows = Vec::new();
        let mut last_key = None;
        while let Some(row) = stream
            .try_next()
            .await
            .map_err(fail(t, &format!("snapshot of `{}.{}`", t.schema, t.table)))?
        {
            let mut values = Vec::with_capacity(ncols);
            for i in 0..ncols {
                let raw: Option<Raw<'_>> = row
                    .try_get(i)
                    .map_err(|e| setup_error(t, format!("snapshot row: {e}")))?;
                values.push(raw.map(|r| r.0.to_vec()));
            }
            let mut k = Vec::with_capacity(key.len());
            for (i, (name, _)) in key.iter().enumerate() {
                let v: Option<String> = row
                    .try_get(ncols + i)
                    .map_err(|e| setup_error(t, format!("snapshot key: {e}")))?;
                k.push(v.ok_or_else(|| {
                    setup_error(t, format!("key column `{name}` is NULL in a row"))
                })?);
            }
            last_key = Some(k);
            rows.push(ChangeRow {
                op: Op::Snapshot,
                lsn: state.snapshot_lsn,
                seq: i64::try_from(rows.len()).unwrap_or(i64::MAX),
                commit_ts: None,
                values,
            });
        }
        let done = rows.len() < limit;
        report.rows_read += rows.len() as u64;
        state.phase = if done {
            Phase::Stream {
                lsn: state.snapshot_lsn,
            }
        } else {
            Phase::Snapshot {
                after: last_key.clone(),
            }
        };
        commit(t, cx, state, &columns, &rows, report).await?;
        tracing::info!(
            source = %t.source, table = %t.table, rows = rows.len(), done,
            "landed a snapshot chunk"
        );
        if done {
            return Ok(());
        }
        after = last_key;
    }
}
