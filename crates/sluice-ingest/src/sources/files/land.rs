//! Landing one file in one commit without holding it.
//!
//! The file is read on a blocking thread ([`stream_file`]) that hands its schema, batches and rejected
//! rows through a channel of one, so it waits while the writer encodes (backpressure). The batches
//! stream into [`sluice_lake::Lake::write_stream`], which writes Parquet as they come and commits once
//! the file is read, with the file's name in the commit metadata (exactly-once). The rejected rows are
//! quarantined after the last batch and before that commit, under the commit's token, as
//! [`crate::landing::land`] does. A read error mid-file ends the stream with an error, so nothing is
//! committed. A file without a single accepted row goes through `land` as before, so that its commit
//! records the file without changing the table's schema.

use std::path::PathBuf;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use sluice_engine::DataFusionError;
use sluice_engine::plan::RecordBatchStreamAdapter;
use sluice_lake::{QuarantinedRow, TableId, WriteMode};
use tokio::sync::mpsc::{Receiver, Sender};

use crate::error::IngestError;
use crate::formats::{FileSink, FileSummary, FormatError, ReadOptions, RejectedRow, stream_file};
use crate::landing::{
    Landed, Landing, Pii, batch_id, bronze_spec, land, prepare, quarantine_first,
};
use crate::source::IngestContext;

/// Which file lands where.
pub(super) struct FileTarget<'a> {
    pub source: &'a str,
    pub table: &'a str,
    /// The file's path relative to the project: `_source`, quarantine origin and commit metadata.
    pub rel: &'a str,
    pub pii: &'a std::collections::BTreeMap<String, Pii>,
    /// The idempotency version of this file's commit.
    pub txn_version: i64,
}

/// What landing one file amounted to.
pub(super) struct FileLanded {
    pub rows_read: u64,
    pub landed: Landed,
}

/// What the reader thread hands over.
pub(super) enum Item {
    Schema(SchemaRef),
    Batch(RecordBatch),
    Rejected(RejectedRow),
}

/// Sends what the reader reads; stops the read when the receiver is gone (the writer found the file
/// already committed, or failed).
pub(super) struct ChannelSink(pub(super) Sender<Item>);

impl FileSink for ChannelSink {
    fn schema(&mut self, schema: &SchemaRef) {
        let _ = self.0.blocking_send(Item::Schema(schema.clone()));
    }

    fn batch(&mut self, batch: RecordBatch) -> bool {
        self.0.blocking_send(Item::Batch(batch)).is_ok()
    }

    fn rejected(&mut self, row: RejectedRow) -> bool {
        self.0.blocking_send(Item::Rejected(row)).is_ok()
    }
}

pub(super) type Reader = tokio::task::JoinHandle<Result<FileSummary, FormatError>>;

/// The read under way: what it still sends, its thread, and the rows it rejected so far.
struct Read {
    rx: Receiver<Item>,
    reader: Reader,
    rejected: Vec<QuarantinedRow>,
}

/// Reads `path` and lands it in one commit; see the module documentation.
pub(super) async fn land_file(
    cx: &IngestContext,
    target: &FileTarget<'_>,
    path: PathBuf,
    opts: ReadOptions,
) -> Result<FileLanded, IngestError> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let reader: Reader =
        tokio::task::spawn_blocking(move || stream_file(&path, &opts, &mut ChannelSink(tx)));
    land_read(cx, target, rx, reader).await
}

/// Lands what `reader` sends through `rx`.
async fn land_read(
    cx: &IngestContext,
    target: &FileTarget<'_>,
    mut rx: Receiver<Item>,
    reader: Reader,
) -> Result<FileLanded, IngestError> {
    let mut schema = None;
    let mut rejected = Vec::new();
    let mut first = None;
    while let Some(item) = rx.recv().await {
        match item {
            Item::Schema(s) => schema = Some(s),
            Item::Rejected(row) => rejected.push(quarantined(target, row)),
            Item::Batch(batch) => {
                first = Some(batch);
                break;
            }
        }
    }
    let Some(first) = first else {
        // The whole file is read: no accepted row.
        drop(rx);
        let summary = join_reader(target, reader).await?;
        let landed = land(
            cx,
            Landing {
                source: target.source,
                table: target.table,
                batches: vec![RecordBatch::new_empty(summary.schema)],
                rejected,
                mode: WriteMode::Append,
                txn_version: target.txn_version,
                metadata: file_metadata(target),
                pii: target.pii,
                origin: target.rel,
            },
        )
        .await?;
        return Ok(FileLanded {
            rows_read: 0,
            landed,
        });
    };
    let schema = schema.unwrap_or_else(|| first.schema());
    let batch_id = batch_id(cx, target.source, target.table, target.txn_version);
    let landed_schema = prepare(
        RecordBatch::new_empty(schema),
        cx,
        target.pii,
        &batch_id,
        target.rel,
    )?
    .schema();
    let spec = bronze_spec(
        cx,
        target.source,
        target.table,
        WriteMode::Append,
        target.txn_version,
        file_metadata(target),
        &batch_id,
    );
    let (batches_tx, batches) = tokio::sync::mpsc::channel(1);
    let stream = futures::stream::unfold(batches, |mut rx| async move {
        rx.recv().await.map(|batch| (batch, rx))
    });
    let stream = Box::pin(RecordBatchStreamAdapter::new(landed_schema.clone(), stream));
    let id = TableId::bronze(target.source, target.table);
    let write = cx.lake.write_stream(&id, landed_schema, stream, &spec);
    let read = Read {
        rx,
        reader,
        rejected,
    };
    let feed = feed(cx, target, first, read, batches_tx, &batch_id);
    let (written, fed) = tokio::join!(write, feed);
    // The read's own error explains a failed write best.
    let (rows_read, quarantined) = fed?;
    Ok(FileLanded {
        rows_read,
        landed: Landed::from_outcome(written?, quarantined),
    })
}

/// Sends the prepared batches to the write, then quarantines the rejected rows; returns `(rows read,
/// rows quarantined)`. On an error the write's stream gets an error item before it ends, so nothing
/// is committed. When the write stops reading (the file's commit is already recorded), the rest of
/// the file is not read.
async fn feed(
    cx: &IngestContext,
    target: &FileTarget<'_>,
    first: RecordBatch,
    read: Read,
    tx: Sender<Result<RecordBatch, DataFusionError>>,
    batch_id: &str,
) -> Result<(u64, u64), IngestError> {
    let Read {
        mut rx,
        reader,
        mut rejected,
    } = read;
    let sent: Result<bool, IngestError> = async {
        let mut next = Some(Item::Batch(first));
        while let Some(item) = next.take() {
            match item {
                Item::Batch(batch) => {
                    let batch = prepare(batch, cx, target.pii, batch_id, target.rel)?;
                    if tx.send(Ok(batch)).await.is_err() {
                        return Ok(false);
                    }
                }
                Item::Rejected(row) => rejected.push(quarantined(target, row)),
                Item::Schema(_) => {}
            }
            next = rx.recv().await;
        }
        Ok(true)
    }
    .await;
    // Unblocks a reader still sending.
    drop(rx);
    let read = join_reader(target, reader).await;
    let result = match (sent, read) {
        (_, Err(e)) | (Err(e), _) => Err(e),
        (Ok(true), Ok(summary)) => quarantine_first(
            cx,
            target.source,
            target.table,
            rejected,
            target.pii,
            batch_id,
            target.txn_version,
        )
        .await
        .map(|quarantined| (summary.rows, quarantined)),
        (Ok(false), Ok(summary)) => Ok((summary.rows, 0)),
    };
    if let Err(e) = &result {
        let _ = tx
            .send(Err(DataFusionError::Execution(format!(
                "landing {} in {}.{} stopped: {e}",
                target.rel, target.source, target.table
            ))))
            .await;
    }
    result
}

/// The reader's outcome: its summary, or why it failed.
pub(super) async fn join_reader(
    target: &FileTarget<'_>,
    reader: Reader,
) -> Result<FileSummary, IngestError> {
    let read = reader.await.map_err(|e| IngestError::Read {
        source_name: target.source.to_string(),
        table: target.table.to_string(),
        message: format!("reader failed: {e}"),
        transient: false,
    })?;
    Ok(read?)
}

/// The commit metadata naming the file, by which it is landed exactly once.
pub(super) fn file_metadata(target: &FileTarget<'_>) -> serde_json::Map<String, serde_json::Value> {
    let mut metadata = serde_json::Map::new();
    metadata.insert("sluice.file".into(), target.rel.into());
    metadata
}

pub(super) fn quarantined(target: &FileTarget<'_>, r: RejectedRow) -> QuarantinedRow {
    QuarantinedRow {
        source_file: Some(target.rel.to_string()),
        line: Some(r.line),
        reason: format!("{}:{}: {}", target.rel, r.line, r.reason),
        // With PII rules, the named fields (as a JSON object, which the rules then apply to) rather
        // than a line the rules cannot split.
        raw: match r.fields {
            Some(fields) if !target.pii.is_empty() => serde_json::Value::Object(fields).to_string(),
            _ => r.raw,
        },
    }
}

#[cfg(test)]
#[path = "land_tests.rs"]
mod tests;
