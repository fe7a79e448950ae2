//! [`Rows`]: what a sink receives, a stream of Arrow record batches of one schema.
//!
//! A plain Arrow stream rather than the engine's own type, so that sinks know Arrow only and the
//! engine stays behind `sluice-transform`.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use futures::StreamExt;
use futures::stream::BoxStream;

use crate::SinkError;

/// A stream of record batches of one schema, read one batch at a time.
pub struct Rows {
    schema: SchemaRef,
    batches: BoxStream<'static, Result<RecordBatch, SinkError>>,
}

impl Rows {
    /// Batches of `schema` from `batches`.
    pub fn new(
        schema: SchemaRef,
        batches: BoxStream<'static, Result<RecordBatch, SinkError>>,
    ) -> Self {
        Rows { schema, batches }
    }

    /// Batches already in memory (tests, small results).
    pub fn from_batches(schema: SchemaRef, batches: Vec<RecordBatch>) -> Self {
        Rows::new(
            schema,
            futures::stream::iter(batches.into_iter().map(Ok)).boxed(),
        )
    }

    /// The schema of every batch.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The next batch, or `None` at the end.
    pub async fn next(&mut self) -> Option<Result<RecordBatch, SinkError>> {
        self.batches.next().await
    }
}

impl std::fmt::Debug for Rows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rows")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}
