//! What the database connectors (`sqlite`, `postgres`) share: the load mode, the commit-sized
//! [`Chunk`] a reader produces, the position a table resumes from, and the loop that lands chunks.
//!
//! A reader runs apart from the writer and sends chunks through a channel of one, so it waits while a
//! chunk is being committed (backpressure) and memory stays bounded to about two chunks. An
//! incremental load commits each chunk with its watermark; a full load streams every chunk (one
//! batch each) into a single overwrite commit, so a table larger than memory is replaced at once.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use serde::Deserialize;
use sluice_engine::DataFusionError;
use sluice_engine::plan::RecordBatchStreamAdapter;
use sluice_lake::{QuarantinedRow, TableId, WriteMode};
use tokio::sync::mpsc::{Receiver, Sender};

use crate::error::IngestError;
use crate::landing::{
    Landed, Landing, Pii, app_id, batch_id, bronze_spec, land, prepare, quarantine_first,
};
use crate::source::{IngestContext, IngestReport};

/// How a table is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Every run lands the whole table, replacing the previous snapshot in one commit.
    #[default]
    Full,
    /// Every run lands rows whose cursor is greater than the high-water mark.
    Incremental,
}

/// A commit-sized piece of a table read.
pub(crate) struct Chunk {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub rejected: Vec<QuarantinedRow>,
    pub rows_read: u64,
    /// The largest cursor value in this chunk (rows come ordered by cursor).
    pub watermark: Option<serde_json::Value>,
}

impl Chunk {
    /// An empty chunk of `schema`.
    pub fn new(schema: SchemaRef) -> Self {
        Chunk {
            schema,
            batches: Vec::new(),
            rejected: Vec::new(),
            rows_read: 0,
            watermark: None,
        }
    }
}

/// Where a table's last load left off, read back from its newest bronze commit.
pub(crate) struct Position {
    /// The idempotency version of that commit (0 before the first load).
    pub txn_version: i64,
    /// The high-water mark (incremental mode only).
    pub watermark: Option<serde_json::Value>,
}

/// Reads the position of `source.table`.
pub(crate) async fn position(
    cx: &IngestContext,
    source: &str,
    table: &str,
    mode: Mode,
) -> Result<Position, IngestError> {
    let last = cx
        .lake
        .commit_metadata(&TableId::bronze(source, table), &app_id(source, table))
        .await?;
    let txn_version = last.as_ref().and_then(|c| c.txn_version).unwrap_or(0);
    let watermark = match mode {
        Mode::Incremental => last
            .as_ref()
            .and_then(|c| c.metadata.get("sluice.watermark").cloned()),
        Mode::Full => None,
    };
    Ok(Position {
        txn_version,
        watermark,
    })
}

/// Whether a reader closes its chunk before the row with `cursor_value`: the chunk holds
/// `commit_rows` rows and, in a read `by_cursor` (incremental), the row starts a new cursor value, so
/// that resuming from the chunk's watermark with `cursor > watermark` never skips rows sharing it.
pub(crate) fn ends_chunk(
    chunk: &Chunk,
    chunk_rows: usize,
    commit_rows: usize,
    by_cursor: bool,
    cursor_value: &Option<serde_json::Value>,
) -> bool {
    chunk_rows >= commit_rows
        && (!by_cursor || (cursor_value.is_some() && *cursor_value != chunk.watermark))
}

/// The table a loop lands into.
pub(crate) struct Target<'a> {
    pub source: &'a str,
    pub table: &'a str,
    pub mode: Mode,
    pub pii: &'a std::collections::BTreeMap<String, Pii>,
    /// `_source` of the landed rows.
    pub origin: &'a str,
}

/// Lands every chunk from `rx` (sent by `reader`, which is joined at the end). Incremental: one
/// commit per chunk carrying its watermark; an empty chunk commits nothing. Full: every chunk in one
/// overwrite commit (see [`land_full`]); an empty table replaces the table with an empty snapshot.
pub(crate) async fn land_chunks(
    cx: &IngestContext,
    target: Target<'_>,
    start: Position,
    mut rx: Receiver<Result<Chunk, IngestError>>,
    reader: tokio::task::JoinHandle<()>,
) -> Result<IngestReport, IngestError> {
    if target.mode == Mode::Full {
        let report = land_full(cx, &target, start, rx).await;
        // On an error the reader may still be sending; it stops when its channel is gone.
        join_reader(&target, reader).await?;
        return report;
    }
    let mut txn_version = start.txn_version;
    let mut report = IngestReport {
        watermark: start.watermark,
        ..IngestReport::default()
    };
    while let Some(chunk) = rx.recv().await {
        let chunk = chunk?;
        report.rows_read += chunk.rows_read;
        if chunk.rows_read == 0 && target.mode == Mode::Incremental {
            continue;
        }
        txn_version += 1;
        let mut metadata = serde_json::Map::new();
        if let Some(w) = &chunk.watermark {
            metadata.insert("sluice.watermark".into(), w.clone());
        }
        let batches = if chunk.batches.is_empty() {
            vec![RecordBatch::new_empty(chunk.schema.clone())]
        } else {
            chunk.batches
        };
        let landed = land(
            cx,
            Landing {
                source: target.source,
                table: target.table,
                batches,
                rejected: chunk.rejected,
                mode: if target.mode == Mode::Full {
                    WriteMode::Overwrite
                } else {
                    WriteMode::Append
                },
                txn_version,
                metadata,
                pii: target.pii,
                origin: target.origin,
            },
        )
        .await?;
        report.rows_written += landed.rows;
        report.rows_quarantined += landed.quarantined;
        report.commits += u64::from(landed.committed);
        if chunk.watermark.is_some() {
            report.watermark = chunk.watermark;
        }
        cx.report_progress(report.rows_written);
    }
    join_reader(&target, reader).await?;
    Ok(report)
}

async fn join_reader(
    target: &Target<'_>,
    reader: tokio::task::JoinHandle<()>,
) -> Result<(), IngestError> {
    reader.await.map_err(|e| IngestError::Read {
        source_name: target.source.to_string(),
        table: target.table.to_string(),
        message: format!("the reader stopped unexpectedly: {e}"),
        transient: false,
    })
}

/// Lands a full load in one overwrite commit without holding it: the chunks' batches stream into
/// [`sluice_lake::Lake::write_stream`], which writes Parquet files as they come and commits once the
/// last chunk is in. Rejected rows are quarantined after the last chunk and before that commit (as
/// [`land`] does). A read error ends the stream with an error, so nothing is committed.
async fn land_full(
    cx: &IngestContext,
    target: &Target<'_>,
    start: Position,
    mut rx: Receiver<Result<Chunk, IngestError>>,
) -> Result<IngestReport, IngestError> {
    let mut report = IngestReport::default();
    let Some(first) = rx.recv().await else {
        return Ok(report);
    };
    let first = first?;
    let txn_version = start.txn_version + 1;
    let batch_id = batch_id(cx, target.source, target.table, txn_version);
    let landed_schema = prepare(
        RecordBatch::new_empty(first.schema.clone()),
        cx,
        target.pii,
        &batch_id,
        target.origin,
    )?
    .schema();
    let spec = bronze_spec(
        cx,
        target.source,
        target.table,
        WriteMode::Overwrite,
        txn_version,
        serde_json::Map::new(),
        &batch_id,
    );
    // A channel of one: the reader waits while the writer encodes (backpressure).
    let (tx, batches) = tokio::sync::mpsc::channel(1);
    let stream = futures::stream::unfold(batches, |mut rx| async move {
        rx.recv().await.map(|batch| (batch, rx))
    });
    let stream = Box::pin(RecordBatchStreamAdapter::new(landed_schema.clone(), stream));
    let id = TableId::bronze(target.source, target.table);
    let write = cx.lake.write_stream(&id, landed_schema, stream, &spec);
    let feed = feed_full(cx, target, first, &mut rx, tx, &batch_id, txn_version);
    let (written, fed) = tokio::join!(write, feed);
    // The read's own error explains a failed write best.
    let (rows_read, quarantined) = fed?;
    let landed = Landed::from_outcome(written?, quarantined);
    report.rows_read = rows_read;
    report.rows_written = landed.rows;
    report.rows_quarantined = landed.quarantined;
    report.commits = u64::from(landed.committed);
    cx.report_progress(report.rows_written);
    Ok(report)
}

/// Sends the prepared batches of `first` and every later chunk to `tx`, then quarantines the rejected
/// rows; returns `(rows read, rows quarantined)`. On an error the stream gets an error item before it
/// ends, so the write fails instead of committing a partial table. When the writer stops reading (it
/// found the load already committed) the rest is not read.
async fn feed_full(
    cx: &IngestContext,
    target: &Target<'_>,
    first: Chunk,
    rx: &mut Receiver<Result<Chunk, IngestError>>,
    tx: Sender<Result<RecordBatch, DataFusionError>>,
    batch_id: &str,
    txn_version: i64,
) -> Result<(u64, u64), IngestError> {
    let mut rows_read = 0;
    let mut rejected = Vec::new();
    let mut next = Some(Ok(first));
    let result: Result<bool, IngestError> = async {
        while let Some(chunk) = next.take() {
            let chunk = chunk?;
            rows_read += chunk.rows_read;
            rejected.extend(chunk.rejected);
            for batch in chunk.batches {
                let batch = prepare(batch, cx, target.pii, batch_id, target.origin)?;
                if tx.send(Ok(batch)).await.is_err() {
                    return Ok(false);
                }
            }
            cx.report_progress(rows_read);
            next = rx.recv().await;
        }
        Ok(true)
    }
    .await;
    let quarantined = match result {
        Ok(true) => {
            quarantine_first(
                cx,
                target.source,
                target.table,
                rejected,
                target.pii,
                batch_id,
                txn_version,
            )
            .await
        }
        Ok(false) => Ok(0),
        Err(e) => Err(e),
    };
    if let Err(e) = &quarantined {
        let _ = tx
            .send(Err(DataFusionError::Execution(format!(
                "the load of {}.{} stopped: {e}",
                target.source, target.table
            ))))
            .await;
    }
    Ok((rows_read, quarantined?))
}
