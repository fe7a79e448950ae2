//! Parquet, written row group by row group.
//!
//! A Parquet file ends with its footer (the schema and where every row group is), so the file is only
//! readable once the last chunk has arrived. What can stream is the row groups: the writer buffers rows
//! until a row group is full ([`ROW_GROUP_ROWS`] rows or [`ROW_GROUP_BYTES`] bytes, whichever comes
//! first), encodes it into its in-memory buffer, and the encoder hands those bytes out at once. The
//! memory held is one row group, not the file.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::{EncodeError, Encoder};

/// Most rows in one row group.
pub const ROW_GROUP_ROWS: usize = 64 * 1024;
/// Most (estimated, encoded) bytes in one row group.
pub const ROW_GROUP_BYTES: usize = 32 * 1024 * 1024;

/// Encodes one Parquet file.
pub(super) struct ParquetEncoder {
    writer: ArrowWriter<Vec<u8>>,
}

impl ParquetEncoder {
    /// Starts the file (the magic bytes go out with the first row group).
    pub(super) fn new(schema: SchemaRef) -> Result<Self, EncodeError> {
        Self::with_row_group_rows(schema, ROW_GROUP_ROWS)
    }

    fn with_row_group_rows(schema: SchemaRef, rows: usize) -> Result<Self, EncodeError> {
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(rows.max(1)))
            .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
            .build();
        let writer = ArrowWriter::try_new(Vec::new(), Arc::clone(&schema), Some(props))?;
        Ok(ParquetEncoder { writer })
    }

    /// Takes whatever the writer has flushed so far. Draining the buffer is safe: the writer counts
    /// the bytes it wrote for the footer's offsets rather than asking the buffer.
    fn drain(&mut self) -> Result<Vec<u8>, EncodeError> {
        self.writer
            .sync()
            .map_err(parquet::errors::ParquetError::from)?;
        Ok(std::mem::take(self.writer.inner_mut()))
    }
}

impl Encoder for ParquetEncoder {
    fn batch(&mut self, batch: &RecordBatch) -> Result<Vec<u8>, EncodeError> {
        self.writer.write(batch)?;
        self.drain()
    }

    fn finish(&mut self) -> Result<Vec<u8>, EncodeError> {
        self.writer.finish()?;
        self.drain()
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;

    fn ints(from: i64, n: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        RecordBatch::try_new(
            schema,
            vec![Arc::new(Int64Array::from_iter_values(from..from + n))],
        )
        .unwrap()
    }

    #[test]
    fn full_row_groups_leave_before_the_footer() {
        let first = ints(0, 100);
        let mut enc = ParquetEncoder::with_row_group_rows(first.schema(), 150).unwrap();
        let a = enc.batch(&first).unwrap();
        assert_eq!(a, b"PAR1", "only the magic: the row group is still filling");
        let b = enc.batch(&ints(100, 100)).unwrap();
        assert!(b.len() > 100, "a full row group is sent at once");
        let c = enc.finish().unwrap();
        assert!(c.ends_with(b"PAR1"), "the footer comes last");

        let file: Vec<u8> = [a, b, c].concat();
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes_of(file))
            .unwrap()
            .build()
            .unwrap();
        let read: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
        let total: usize = read.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(total, 200);
        let last = read.last().unwrap();
        let col = last
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(col.value(col.len() - 1), 199);
    }

    #[test]
    fn an_empty_result_is_a_valid_file_with_the_schema() {
        let schema = ints(0, 0).schema();
        let mut enc = ParquetEncoder::new(schema.clone()).unwrap();
        let file = enc.finish().unwrap();
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes_of(file)).unwrap();
        assert_eq!(builder.schema().fields(), schema.fields());
    }

    fn bytes_of(v: Vec<u8>) -> axum::body::Bytes {
        axum::body::Bytes::from(v)
    }
}
