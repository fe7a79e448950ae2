//! Streaming a file's content to a consumer instead of holding it.
//!
//! The readers hand the schema, then each accepted batch and each rejected row to a [`FileSink`] as
//! they produce them, so a file of any size is read in memory bounded by a batch (plus its rejected
//! rows). [`super::read_file`] is the collecting sink.

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use super::RejectedRow;

/// Receives what [`super::stream_file`] reads, in order: the schema once, then the accepted
/// batches and the rejected rows (each in file order).
pub trait FileSink {
    /// The schema every later batch has: `merge_schemas(existing, file schema)` when the table
    /// exists. Called once, before any batch.
    fn schema(&mut self, schema: &SchemaRef);
    /// A batch of accepted rows (at most `batch_size`). Returns false to stop reading: the
    /// consumer needs nothing more (the rest of the file is not read).
    fn batch(&mut self, batch: RecordBatch) -> bool;
    /// A row that could not be read. Returns false to stop reading, as for [`FileSink::batch`].
    fn rejected(&mut self, row: RejectedRow) -> bool;
}

/// What a streamed read of one file amounted to.
#[derive(Debug, Clone)]
pub struct FileSummary {
    /// The schema of every batch.
    pub schema: SchemaRef,
    /// Accepted rows handed to the sink.
    pub rows: u64,
    /// Rejected rows handed to the sink.
    pub rejected: u64,
    /// The reason of the first rejected row (for the log).
    pub first_reason: Option<String>,
    /// Whether the sink stopped the read before the end of the file.
    pub stopped: bool,
}

/// A sink with the counts the readers report.
pub(crate) struct Emitter<'s> {
    sink: &'s mut dyn FileSink,
    summary: FileSummary,
}

impl<'s> Emitter<'s> {
    /// Announces `schema` to the sink.
    pub(crate) fn new(sink: &'s mut dyn FileSink, schema: SchemaRef) -> Self {
        sink.schema(&schema);
        Emitter {
            sink,
            summary: FileSummary {
                schema,
                rows: 0,
                rejected: 0,
                first_reason: None,
                stopped: false,
            },
        }
    }

    pub(crate) fn schema(&self) -> &SchemaRef {
        &self.summary.schema
    }

    /// Whether the sink asked to stop.
    pub(crate) fn stopped(&self) -> bool {
        self.summary.stopped
    }

    /// Hands on a batch; false once the sink has stopped.
    pub(crate) fn batch(&mut self, batch: RecordBatch) -> bool {
        if self.summary.stopped {
            return false;
        }
        self.summary.rows += batch.num_rows() as u64;
        self.summary.stopped = !self.sink.batch(batch);
        !self.summary.stopped
    }

    /// Hands on a rejected row; false once the sink has stopped.
    pub(crate) fn rejected(&mut self, row: RejectedRow) -> bool {
        if self.summary.stopped {
            return false;
        }
        self.summary.rejected += 1;
        if self.summary.first_reason.is_none() {
            self.summary.first_reason = Some(row.reason.clone());
        }
        self.summary.stopped = !self.sink.rejected(row);
        !self.summary.stopped
    }

    pub(crate) fn finish(self) -> FileSummary {
        self.summary
    }
}

/// Keeps everything: what [`super::read_file`] returns.
#[derive(Default)]
pub(crate) struct Collect {
    pub(crate) batches: Vec<RecordBatch>,
    pub(crate) rejected: Vec<RejectedRow>,
}

impl FileSink for Collect {
    fn schema(&mut self, _schema: &SchemaRef) {}

    fn batch(&mut self, batch: RecordBatch) -> bool {
        self.batches.push(batch);
        true
    }

    fn rejected(&mut self, row: RejectedRow) -> bool {
        self.rejected.push(row);
        true
    }
}
