//! PostgreSQL's row reader and Arrow builders; the kit's loop ([`relational::read_rows`]) turns the
//! rows into chunks.
//!
//! Rows arrive through tokio-postgres' row stream, which reads the socket only as fast as rows are
//! consumed, so memory stays bounded by the kit's chunks whatever the table's size.

use std::pin::Pin;
use std::sync::Arc;

use arrow::array::builder::NullBufferBuilder;
use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, ListArray, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::buffer::{OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, FieldRef};
use arrow::error::ArrowError;
use futures::TryStreamExt;
use tokio_postgres::{Client, Row, RowStream, Statement};

use super::client::PgFailure;
use super::decode::{Cell, Raw, cursor_json, decode, raw_json, watermark_text};
use super::types::{PgColumn, PgKind};
use crate::sources::relational::{self, ChunkTx, ColumnBuilder, DbFailure, ReadRequest, RowReader};

/// An Arrow builder for one [`PgKind`] (also used by CDC for change rows).
pub(crate) enum ColBuilder {
    Bool(BooleanBuilder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Decimal(Decimal128Builder),
    Str(StringBuilder),
    Bytes(BinaryBuilder),
    Date(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder),
    List {
        field: FieldRef,
        offsets: Vec<i32>,
        nulls: NullBufferBuilder,
        values: Box<ColBuilder>,
    },
}

impl ColBuilder {
    pub(crate) fn new(kind: &PgKind) -> Self {
        match kind {
            PgKind::Bool => ColBuilder::Bool(BooleanBuilder::new()),
            PgKind::Int2 => ColBuilder::I16(Int16Builder::new()),
            PgKind::Int4 => ColBuilder::I32(Int32Builder::new()),
            PgKind::Int8 => ColBuilder::I64(Int64Builder::new()),
            PgKind::Float4 => ColBuilder::F32(Float32Builder::new()),
            PgKind::Float8 => ColBuilder::F64(Float64Builder::new()),
            PgKind::Decimal { .. } => {
                ColBuilder::Decimal(Decimal128Builder::new().with_data_type(kind.arrow_type()))
            }
            PgKind::NumericText
            | PgKind::Text
            | PgKind::Json
            | PgKind::Jsonb
            | PgKind::Uuid
            | PgKind::Time
            | PgKind::Interval => ColBuilder::Str(StringBuilder::new()),
            PgKind::Bytea => ColBuilder::Bytes(BinaryBuilder::new()),
            PgKind::Date => ColBuilder::Date(Date32Builder::new()),
            PgKind::Timestamp | PgKind::TimestampTz => ColBuilder::Timestamp(
                TimestampMicrosecondBuilder::new().with_data_type(kind.arrow_type()),
            ),
            PgKind::List(item) => {
                let field = match kind.arrow_type() {
                    DataType::List(f) => f,
                    _ => Arc::new(arrow::datatypes::Field::new_list_field(
                        item.arrow_type(),
                        true,
                    )),
                };
                ColBuilder::List {
                    field,
                    offsets: vec![0],
                    nulls: NullBufferBuilder::new(0),
                    values: Box::new(ColBuilder::new(item)),
                }
            }
        }
    }

    /// Appends a decoded value; a value of the wrong shape is a bug in the decoder.
    pub(crate) fn append(&mut self, cell: Cell<'_>) -> Result<(), String> {
        match (self, cell) {
            (ColBuilder::Bool(b), Cell::Null) => b.append_null(),
            (ColBuilder::I16(b), Cell::Null) => b.append_null(),
            (ColBuilder::I32(b), Cell::Null) => b.append_null(),
            (ColBuilder::I64(b), Cell::Null) => b.append_null(),
            (ColBuilder::F32(b), Cell::Null) => b.append_null(),
            (ColBuilder::F64(b), Cell::Null) => b.append_null(),
            (ColBuilder::Decimal(b), Cell::Null) => b.append_null(),
            (ColBuilder::Str(b), Cell::Null) => b.append_null(),
            (ColBuilder::Bytes(b), Cell::Null) => b.append_null(),
            (ColBuilder::Date(b), Cell::Null) => b.append_null(),
            (ColBuilder::Timestamp(b), Cell::Null) => b.append_null(),
            (ColBuilder::List { offsets, nulls, .. }, Cell::Null) => {
                let last = offsets.last().copied().unwrap_or(0);
                offsets.push(last);
                nulls.append_null();
            }
            (ColBuilder::Bool(b), Cell::Bool(v)) => b.append_value(v),
            (ColBuilder::I16(b), Cell::I16(v)) => b.append_value(v),
            (ColBuilder::I32(b), Cell::I32(v)) => b.append_value(v),
            (ColBuilder::I64(b), Cell::I64(v)) => b.append_value(v),
            (ColBuilder::F32(b), Cell::F32(v)) => b.append_value(v),
            (ColBuilder::F64(b), Cell::F64(v)) => b.append_value(v),
            (ColBuilder::Decimal(b), Cell::Decimal(v, _)) => b.append_value(v),
            (ColBuilder::Str(b), Cell::Str(v)) => b.append_value(v),
            (ColBuilder::Str(b), Cell::Owned(v)) => b.append_value(v),
            (ColBuilder::Str(b), Cell::Uuid(v)) => {
                let mut buf = uuid::Uuid::encode_buffer();
                b.append_value(
                    uuid::Uuid::from_bytes(v)
                        .hyphenated()
                        .encode_lower(&mut buf),
                );
            }
            (ColBuilder::Bytes(b), Cell::Bytes(v)) => b.append_value(v),
            (ColBuilder::Date(b), Cell::Date(v)) => b.append_value(v),
            (ColBuilder::Timestamp(b), Cell::Timestamp(v, _)) => b.append_value(v),
            (
                ColBuilder::List {
                    offsets,
                    nulls,
                    values,
                    ..
                },
                Cell::List(items),
            ) => {
                let last = offsets.last().copied().unwrap_or(0);
                let len = i32::try_from(items.len()).map_err(|_| "array too long".to_string())?;
                let end = last
                    .checked_add(len)
                    .ok_or_else(|| "list values overflow one Arrow batch".to_string())?;
                for item in items {
                    values.append(item)?;
                }
                offsets.push(end);
                nulls.append_non_null();
            }
            (_, cell) => return Err(format!("internal error: unexpected value {cell:?}")),
        }
        Ok(())
    }

    pub(crate) fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
        Ok(match self {
            ColBuilder::Bool(b) => Arc::new(b.finish()),
            ColBuilder::I16(b) => Arc::new(b.finish()),
            ColBuilder::I32(b) => Arc::new(b.finish()),
            ColBuilder::I64(b) => Arc::new(b.finish()),
            ColBuilder::F32(b) => Arc::new(b.finish()),
            ColBuilder::F64(b) => Arc::new(b.finish()),
            ColBuilder::Decimal(b) => Arc::new(b.finish()),
            ColBuilder::Str(b) => Arc::new(b.finish()),
            ColBuilder::Bytes(b) => Arc::new(b.finish()),
            ColBuilder::Date(b) => Arc::new(b.finish()),
            ColBuilder::Timestamp(b) => Arc::new(b.finish()),
            ColBuilder::List {
                field,
                offsets,
                nulls,
                values,
            } => {
                let offsets =
                    OffsetBuffer::new(ScalarBuffer::from(std::mem::replace(offsets, vec![0])));
                Arc::new(ListArray::try_new(
                    field.clone(),
                    offsets,
                    values.finish()?,
                    nulls.finish(),
                )?)
            }
        })
    }
}

impl ColumnBuilder for ColBuilder {
    type Cell<'v> = Cell<'v>;

    fn append(&mut self, cell: Cell<'_>) -> Result<(), String> {
        ColBuilder::append(self, cell)
    }

    fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
        ColBuilder::finish(self)
    }
}

/// The rows of a running statement.
struct PgRows(Pin<Box<RowStream>>);

impl RowReader for PgRows {
    type Column = PgColumn;
    type Row<'a> = Row;
    /// The value's bytes in the binary format, `None` for NULL.
    type Value<'v> = Option<&'v [u8]>;

    async fn next_row(&mut self) -> Result<Option<Row>, DbFailure> {
        self.0.try_next().await.map_err(PgFailure::from)
    }

    fn values(row: &Row) -> Result<Vec<Option<&[u8]>>, String> {
        (0..row.len())
            .map(|i| {
                let raw: Option<Raw<'_>> = row.try_get(i).map_err(|e| e.to_string())?;
                Ok(raw.map(|r| r.0))
            })
            .collect()
    }

    fn cursor(
        column: &PgColumn,
        value: &Option<&[u8]>,
    ) -> Result<Option<serde_json::Value>, String> {
        value.map(|raw| cursor_json(&column.kind, raw)).transpose()
    }

    fn decode<'a>(column: &PgColumn, value: &'a Option<&[u8]>) -> Result<Cell<'a>, String> {
        match value {
            Some(raw) => decode(&column.kind, raw),
            None => Ok(Cell::Null),
        }
    }

    fn raw_json(column: &PgColumn, value: &Option<&[u8]>) -> serde_json::Value {
        raw_json(&column.kind, *value)
    }
}

/// Runs `statement` (prepared from the request's SQL) and sends chunks. Returns early if the
/// receiver is gone.
pub(crate) async fn read_chunks(
    client: Client,
    statement: Statement,
    req: ReadRequest<PgColumn>,
    tx: ChunkTx,
) {
    let params: Vec<String> = req.watermark.iter().map(watermark_text).collect();
    let rows = client
        .query_raw(&statement, params.iter())
        .await
        .map(|stream| PgRows(Box::pin(stream)))
        .map_err(|e| PgFailure::from(e).into_error(&req.source, &req.table, "query failed"));
    relational::read_rows(rows, &req, &tx).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};

    #[test]
    fn list_builder_with_nulls_and_empty() {
        let kind = PgKind::List(Box::new(PgKind::Text));
        let mut b = ColBuilder::new(&kind);
        b.append(Cell::List(vec![Cell::Str("a"), Cell::Null]))
            .unwrap();
        b.append(Cell::Null).unwrap();
        b.append(Cell::List(vec![])).unwrap();
        let arr = b.finish().unwrap();
        assert_eq!(arr.data_type(), &kind.arrow_type());
        let list = arr.as_list::<i32>();
        assert_eq!(list.len(), 3);
        assert!(list.is_null(1));
        assert_eq!(list.value(0).len(), 2);
        assert_eq!(list.value(2).len(), 0);
        // The builder starts over after finish.
        b.append(Cell::List(vec![Cell::Str("z")])).unwrap();
        assert_eq!(b.finish().unwrap().len(), 1);
    }

    #[test]
    fn decimal_and_uuid_builders() {
        let kind = PgKind::Decimal {
            precision: 10,
            scale: 2,
        };
        let mut b = ColBuilder::new(&kind);
        b.append(Cell::Decimal(12345, 2)).unwrap();
        let arr = b.finish().unwrap();
        assert_eq!(arr.data_type(), &DataType::Decimal128(10, 2));
        let mut u = ColBuilder::new(&PgKind::Uuid);
        u.append(Cell::Uuid([0xab; 16])).unwrap();
        let arr = u.finish().unwrap();
        assert_eq!(
            arr.as_string::<i32>().value(0),
            "abababab-abab-abab-abab-abababababab"
        );
        assert!(u.append(Cell::I32(1)).unwrap_err().contains("internal"));
    }
}
