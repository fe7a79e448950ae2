//! Rows into commit-sized chunks of Arrow batches (driven by the row loop, [`super::rows`]).
//!
//! The loop takes one row at a time and hands it to a [`ChunkWriter`]: it starts the row
//! ([`ChunkWriter::begin_row`]), gives its cursor value ([`ChunkWriter::place`], which may close the
//! chunk so far, to be sent before going on), then either the row's decoded values
//! ([`ChunkWriter::append`]) or, when a value has no Arrow form, the row as read
//! ([`ChunkWriter::reject`], to quarantine with the column and the reason). Each row is decoded
//! completely before anything is appended, so the builders never hold half a row.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use serde_json::Value;
use sluice_lake::QuarantinedRow;

use super::RawRow;
use crate::error::IngestError;
use crate::sources::table_load::{Chunk, ends_chunk};

/// A driver's type mapping for one column.
pub(crate) trait ColumnType: Clone + Send + Sync + 'static {
    /// The Arrow builder of the column's values.
    type Builder: ColumnBuilder;

    /// The Arrow type the column lands as.
    fn arrow_type(&self) -> DataType;
    /// An empty builder for the column's values.
    fn builder(&self) -> Self::Builder;
}

/// An Arrow builder for one column of a driver.
pub(crate) trait ColumnBuilder {
    /// A value decoded for this builder (it may borrow from the row it was read from).
    type Cell<'v>;

    /// Appends a decoded value; one of the wrong shape is a bug in the driver's decoder.
    fn append(&mut self, cell: Self::Cell<'_>) -> Result<(), String>;
    /// The values appended so far as an array; the builder starts over.
    fn finish(&mut self) -> Result<ArrayRef, ArrowError>;
}

/// The decoded value of a column of type `K`.
pub(crate) type CellOf<'v, K> = <<K as ColumnType>::Builder as ColumnBuilder>::Cell<'v>;

/// What a reader reads: one statement whose columns are already mapped.
pub(crate) struct ReadRequest<K> {
    /// The statement (`SELECT * FROM … [WHERE …] [ORDER BY cursor]`).
    pub sql: String,
    /// The high-water mark, bound to the statement's one parameter (incremental reads after the
    /// first).
    pub watermark: Option<Value>,
    /// Name and type mapping of every result column.
    pub columns: Vec<(String, K)>,
    /// Index of the cursor column, for incremental reads.
    pub cursor: Option<usize>,
    /// Rows per Arrow batch.
    pub batch_size: usize,
    /// Rows per chunk (in an incremental read a chunk ends only where the cursor value changes).
    pub commit_rows: usize,
    pub source: String,
    pub table: String,
}

impl<K: ColumnType> ReadRequest<K> {
    /// The Arrow schema of the result (every column nullable).
    pub fn schema(&self) -> SchemaRef {
        schema_of(&self.columns)
    }

    /// A read error of this table.
    pub fn error(&self, message: impl std::fmt::Display, transient: bool) -> IngestError {
        IngestError::Read {
            source_name: self.source.clone(),
            table: self.table.clone(),
            message: message.to_string(),
            transient,
        }
    }
}

/// The Arrow schema of `columns` (every column nullable).
fn schema_of<K: ColumnType>(columns: &[(String, K)]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|(n, k)| Field::new(n, k.arrow_type(), true))
            .collect::<Vec<_>>(),
    ))
}

/// Builds the chunks of one read (see the module doc).
pub(crate) struct ChunkWriter<'r, K: ColumnType> {
    req: &'r ReadRequest<K>,
    schema: SchemaRef,
    builders: Vec<K::Builder>,
    chunk: Chunk,
    chunk_rows: usize,
    in_batch: usize,
    row_number: u64,
}

impl<'r, K: ColumnType> ChunkWriter<'r, K> {
    /// A writer for `req`, with one builder per column.
    pub fn new(req: &'r ReadRequest<K>) -> Self {
        let schema = req.schema();
        ChunkWriter {
            builders: req.columns.iter().map(|(_, k)| k.builder()).collect(),
            chunk: Chunk::new(schema.clone()),
            schema,
            req,
            chunk_rows: 0,
            in_batch: 0,
            row_number: 0,
        }
    }

    /// The number of the current row (1-based; 0 before the first).
    pub fn row_number(&self) -> u64 {
        self.row_number
    }

    /// Starts the next row; returns its number (for messages).
    pub fn begin_row(&mut self) -> u64 {
        self.row_number += 1;
        self.row_number
    }

    /// Places the current row, whose cursor value is `cursor` (`None` when NULL or when the read
    /// has no cursor). Returns the chunk so far when this row starts a new one: the caller sends it
    /// before going on.
    pub fn place(&mut self, cursor: Option<Value>) -> Result<Option<Chunk>, IngestError> {
        // Cut a chunk only between different cursor values, so resuming from its watermark with
        // `cursor > watermark` never skips rows that share the boundary value.
        let full = if ends_chunk(
            &self.chunk,
            self.chunk_rows,
            self.req.commit_rows,
            self.req.cursor.is_some(),
            &cursor,
        ) {
            self.finish_batch()?;
            self.chunk_rows = 0;
            Some(std::mem::replace(
                &mut self.chunk,
                Chunk::new(self.schema.clone()),
            ))
        } else {
            None
        };
        self.chunk.rows_read += 1;
        self.chunk_rows += 1;
        // A NULL cursor never becomes the watermark: `cursor > NULL` would select nothing again.
        if cursor.as_ref().is_some_and(|v| !v.is_null()) {
            self.chunk.watermark = cursor;
        }
        Ok(full)
    }

    /// Appends the current row, decoded completely: one cell per column, in order.
    pub fn append<'v>(
        &mut self,
        cells: impl IntoIterator<Item = CellOf<'v, K>>,
    ) -> Result<(), IngestError> {
        for (b, c) in self.builders.iter_mut().zip(cells) {
            b.append(c).map_err(|e| self.req.error(e, false))?;
        }
        self.in_batch += 1;
        if self.in_batch >= self.req.batch_size {
            self.finish_batch()?;
        }
        Ok(())
    }

    /// Sends the current row to quarantine: `column` held a value without an Arrow form (`why`);
    /// `raw` is the row as read.
    pub fn reject(&mut self, column: &str, why: &str, raw: RawRow) {
        self.chunk.rejected.push(QuarantinedRow {
            source_file: None,
            line: Some(self.row_number),
            reason: format!("row {}: column `{column}`: {why}", self.row_number),
            raw: Value::Object(raw).to_string(),
        });
    }

    /// The error for a cursor value that cannot be read (a bug or a corrupt value: the read stops).
    pub fn cursor_error(&self, why: impl std::fmt::Display) -> IngestError {
        let name = self
            .req
            .cursor
            .and_then(|i| self.req.columns.get(i))
            .map_or("", |(n, _)| n.as_str());
        self.req.error(
            format!("row {}: cursor `{name}`: {why}", self.row_number),
            false,
        )
    }

    /// The last chunk, once the rows are all read.
    pub fn finish(mut self) -> Result<Chunk, IngestError> {
        self.finish_batch()?;
        Ok(self.chunk)
    }

    /// Closes the batch being built, if it holds rows.
    fn finish_batch(&mut self) -> Result<(), IngestError> {
        if self.in_batch == 0 {
            return Ok(());
        }
        self.in_batch = 0;
        let arrow_error = |source| IngestError::Arrow {
            context: format!("{}.{}", self.req.source, self.req.table),
            source,
        };
        let arrays = self
            .builders
            .iter_mut()
            .map(ColumnBuilder::finish)
            .collect::<Result<Vec<_>, _>>()
            .map_err(arrow_error)?;
        let batch = RecordBatch::try_new(self.schema.clone(), arrays).map_err(arrow_error)?;
        self.chunk.batches.push(batch);
        Ok(())
    }
}

/// Decodes every value of a row with `decode`, stopping at the first that fails: `Err((column
/// index, why))`.
pub(crate) fn decode_row<T, C>(
    values: impl IntoIterator<Item = T>,
    mut decode: impl FnMut(usize, T) -> Result<C, String>,
) -> Result<Vec<C>, (usize, String)> {
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| decode(i, v).map_err(|why| (i, why)))
        .collect()
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, Int64Builder};

    use super::*;

    #[derive(Clone)]
    struct Int;

    impl ColumnType for Int {
        type Builder = Int64Builder;

        fn arrow_type(&self) -> DataType {
            DataType::Int64
        }

        fn builder(&self) -> Int64Builder {
            Int64Builder::new()
        }
    }

    impl ColumnBuilder for Int64Builder {
        type Cell<'v> = i64;

        fn append(&mut self, cell: i64) -> Result<(), String> {
            self.append_value(cell);
            Ok(())
        }

        fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
            Ok(Arc::new(Int64Builder::finish(self)))
        }
    }

    fn request(cursor: bool, batch_size: usize, commit_rows: usize) -> ReadRequest<Int> {
        ReadRequest {
            sql: String::new(),
            watermark: None,
            columns: vec![("c".into(), Int), ("v".into(), Int)],
            cursor: cursor.then_some(0),
            batch_size,
            commit_rows,
            source: "s".into(),
            table: "t".into(),
        }
    }

    /// Feeds rows `(cursor, value)`; a negative value is a row that fails conversion.
    fn feed(req: &ReadRequest<Int>, rows: &[(i64, i64)]) -> Vec<Chunk> {
        let mut w = ChunkWriter::new(req);
        let mut chunks = Vec::new();
        for &(c, v) in rows {
            let cursor = req.cursor.map(|_| Value::from(c));
            w.begin_row();
            chunks.extend(w.place(cursor).unwrap());
            match decode_row([c, v], |_, x| {
                if x < 0 {
                    Err(format!("{x} is negative"))
                } else {
                    Ok(x)
                }
            }) {
                Ok(cells) => w.append(cells).unwrap(),
                Err((i, why)) => w.reject(&req.columns[i].0, &why, RawRow::new()),
            }
        }
        chunks.push(w.finish().unwrap());
        chunks
    }

    fn rows_per_batch(chunk: &Chunk) -> Vec<usize> {
        chunk.batches.iter().map(RecordBatch::num_rows).collect()
    }

    #[test]
    fn chunks_are_cut_only_between_cursor_values() {
        let req = request(true, 3, 2);
        let rows = [
            (1, 0),
            (2, 0),
            (3, 0),
            (3, 0),
            (3, 0),
            (5, 0),
            (7, 0),
            (7, 0),
        ];
        let chunks = feed(&req, &rows);
        let sizes: Vec<u64> = chunks.iter().map(|c| c.rows_read).collect();
        assert_eq!(sizes, [2, 3, 3]);
        let marks: Vec<Value> = chunks
            .iter()
            .map(|c| c.watermark.clone().unwrap())
            .collect();
        assert_eq!(marks, [Value::from(2), Value::from(3), Value::from(7)]);
        assert_eq!(rows_per_batch(&chunks[1]), [3]);
    }

    #[test]
    fn batches_and_quarantine_within_a_chunk() {
        let req = request(false, 2, 100);
        let chunks = feed(&req, &[(1, 0), (2, -1), (3, 0), (4, 0), (5, 0)]);
        assert_eq!(chunks.len(), 1);
        let chunk = &chunks[0];
        assert_eq!(chunk.rows_read, 5);
        assert_eq!(rows_per_batch(chunk), [2, 2]);
        assert_eq!(chunk.watermark, None);
        assert_eq!(chunk.rejected.len(), 1);
        assert_eq!(chunk.rejected[0].line, Some(2));
        assert_eq!(
            chunk.rejected[0].reason,
            "row 2: column `v`: -1 is negative"
        );
        let first = chunk.batches[0].column(1);
        assert_eq!(first.len(), 2);
    }

    #[test]
    fn a_full_read_cuts_a_chunk_per_commit_rows() {
        let req = request(false, 2, 2);
        let chunks = feed(&req, &[(1, 0), (2, 0), (3, 0), (4, 0), (5, 0)]);
        let sizes: Vec<u64> = chunks.iter().map(|c| c.rows_read).collect();
        assert_eq!(sizes, [2, 2, 1]);
    }

    #[test]
    fn a_null_cursor_never_becomes_the_watermark() {
        let req = request(true, 10, 10);
        let mut w = ChunkWriter::new(&req);
        for cursor in [Some(Value::from(4)), Some(Value::Null), None] {
            w.begin_row();
            w.place(cursor).unwrap();
        }
        assert_eq!(w.row_number(), 3);
        let e = w.cursor_error("bad").to_string();
        assert!(e.contains("row 3: cursor `c`: bad"), "{e}");
        assert_eq!(w.finish().unwrap().watermark, Some(Value::from(4)));
    }
}
