//! What the database connectors (`sqlite`, `postgres`) share: the load mode, the commit-sized
//! [`Chunk`] a reader produces, the position a table resumes from, and the loop that lands chunks.
//!
//! A reader runs apart from the writer and sends chunks through a channel of one, so it waits while a
//! chunk is being committed (backpressure) and memory stays bounded to about two chunks.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use serde::Deserialize;
use sluice_lake::{QuarantinedRow, TableId, WriteMode};
use tokio::sync::mpsc::Receiver;

use crate::error::IngestError;
use crate::landing::{Landing, Pii, app_id, land};
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

/// The table a loop lands into.
pub(crate) struct Target<'a> {
    pub source: &'a str,
    pub table: &'a str,
    pub mode: Mode,
    pub pii: &'a std::collections::BTreeMap<String, Pii>,
    /// `_source` of the landed rows.
    pub origin: &'a str,
}

/// Lands every chunk from `rx` (sent by `reader`, which is joined at the end), one commit each, carrying its watermark; an empty incremental chunk
/// commits nothing, an empty full load replaces the table with an empty snapshot.
pub(crate) async fn land_chunks(
    cx: &IngestContext,
    target: Target<'_>,
    start: Position,
    mut rx: Receiver<Result<Chunk, IngestError>>,
    reader: tokio::task::JoinHandle<()>,
) -> Result<IngestReport, IngestError> {
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
    reader.await.map_err(|e| IngestError::Read {
        source_name: target.source.to_string(),
        table: target.table.to_string(),
        message: format!("the reader stopped unexpectedly: {e}"),
        transient: false,
    })?;
    Ok(report)
}
