//! SQLite's row reader and type mapping; the kit's loop reads the rows on a blocking thread
//! ([`relational::read_rows_blocking`]).
//!
//! SQLite is dynamically typed: a column declared INTEGER can hold text. Each value is converted to the
//! column's declared type; a row holding a value that cannot be converted goes to quarantine with the
//! column and the value named, instead of failing the load or being silently coerced.

use std::sync::Arc;

use arrow::array::{ArrayRef, BinaryBuilder, Float64Builder, Int64Builder, StringBuilder};
use arrow::datatypes::DataType;
use arrow::error::ArrowError;
use rusqlite::params_from_iter;
use rusqlite::types::ValueRef;

use crate::error::IngestError;
use crate::sources::relational::{
    self, ChunkTx, ColumnBuilder, ColumnType, DbFailure, ReadRequest, RowReader,
};

/// How a column's values are converted: its declared type's affinity.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Int,
    Float,
    Text,
    Blob,
}

pub(crate) fn kind_of(decl: Option<&str>) -> Kind {
    // SQLite's type-affinity rules (https://sqlite.org/datatype3.html §3.1), with untyped columns as text.
    let d = decl.unwrap_or("").to_ascii_uppercase();
    if d.contains("INT") {
        Kind::Int
    } else if d.contains("CHAR") || d.contains("CLOB") || d.contains("TEXT") || d.is_empty() {
        Kind::Text
    } else if d.contains("BLOB") {
        Kind::Blob
    } else {
        Kind::Float
    }
}

pub(crate) enum Builder {
    Int(Int64Builder),
    Float(Float64Builder),
    Text(StringBuilder),
    Blob(BinaryBuilder),
}

impl Builder {
    fn new(kind: Kind) -> Self {
        match kind {
            Kind::Int => Builder::Int(Int64Builder::new()),
            Kind::Float => Builder::Float(Float64Builder::new()),
            Kind::Text => Builder::Text(StringBuilder::new()),
            Kind::Blob => Builder::Blob(BinaryBuilder::new()),
        }
    }

    fn push(&mut self, cell: Cell) {
        match (self, cell) {
            (Builder::Int(b), Cell::Int(v)) => b.append_value(v),
            (Builder::Float(b), Cell::Float(v)) => b.append_value(v),
            (Builder::Text(b), Cell::Text(v)) => b.append_value(v),
            (Builder::Blob(b), Cell::Blob(v)) => b.append_value(v),
            (Builder::Int(b), _) => b.append_null(),
            (Builder::Float(b), _) => b.append_null(),
            (Builder::Text(b), _) => b.append_null(),
            (Builder::Blob(b), _) => b.append_null(),
        }
    }
}

impl ColumnBuilder for Builder {
    type Cell<'v> = Cell;

    fn append(&mut self, cell: Cell) -> Result<(), String> {
        self.push(cell);
        Ok(())
    }

    fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
        Ok(match self {
            Builder::Int(b) => Arc::new(b.finish()),
            Builder::Float(b) => Arc::new(b.finish()),
            Builder::Text(b) => Arc::new(b.finish()),
            Builder::Blob(b) => Arc::new(b.finish()),
        })
    }
}

impl ColumnType for Kind {
    type Builder = Builder;

    fn builder(&self) -> Builder {
        Builder::new(*self)
    }

    fn arrow_type(&self) -> DataType {
        match self {
            Kind::Int => DataType::Int64,
            Kind::Float => DataType::Float64,
            Kind::Text => DataType::Utf8,
            Kind::Blob => DataType::Binary,
        }
    }
}

/// A converted value, ready to append.
pub(crate) enum Cell {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
    Blob(Vec<u8>),
}

fn convert(kind: Kind, v: ValueRef<'_>) -> Result<Cell, String> {
    Ok(match (kind, v) {
        (_, ValueRef::Null) => Cell::Null,
        (Kind::Int, ValueRef::Integer(i)) => Cell::Int(i),
        (Kind::Int, ValueRef::Real(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
            Cell::Int(f as i64)
        }
        (Kind::Int, ValueRef::Text(t)) => {
            let s = std::str::from_utf8(t).map_err(|_| "invalid UTF-8 text".to_string())?;
            Cell::Int(
                s.trim()
                    .parse()
                    .map_err(|_| format!("expected an integer, found {s:?}"))?,
            )
        }
        (Kind::Float, ValueRef::Integer(i)) => Cell::Float(i as f64),
        (Kind::Float, ValueRef::Real(f)) => Cell::Float(f),
        (Kind::Float, ValueRef::Text(t)) => {
            let s = std::str::from_utf8(t).map_err(|_| "invalid UTF-8 text".to_string())?;
            Cell::Float(
                s.trim()
                    .parse()
                    .map_err(|_| format!("expected a number, found {s:?}"))?,
            )
        }
        (Kind::Text, ValueRef::Text(t)) => Cell::Text(
            std::str::from_utf8(t)
                .map_err(|_| "invalid UTF-8 text".to_string())?
                .to_string(),
        ),
        (Kind::Text, ValueRef::Integer(i)) => Cell::Text(i.to_string()),
        (Kind::Text, ValueRef::Real(f)) => Cell::Text(f.to_string()),
        (Kind::Blob, ValueRef::Blob(b)) => Cell::Blob(b.to_vec()),
        (Kind::Blob, ValueRef::Text(t)) => Cell::Blob(t.to_vec()),
        (Kind::Int | Kind::Float, ValueRef::Blob(_)) => {
            return Err("expected a number, found a blob".into());
        }
        (Kind::Text, ValueRef::Blob(_)) => return Err("expected text, found a blob".into()),
        (Kind::Blob, other) => Cell::Blob(format!("{other:?}").into_bytes()),
        (Kind::Int, ValueRef::Real(f)) => return Err(format!("expected an integer, found {f}")),
    })
}

fn raw_json(v: ValueRef<'_>) -> serde_json::Value {
    match v {
        ValueRef::Null => serde_json::Value::Null,
        ValueRef::Integer(i) => i.into(),
        ValueRef::Real(f) => serde_json::Number::from_f64(f)
            .map(Into::into)
            .unwrap_or(serde_json::Value::Null),
        ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned().into(),
        ValueRef::Blob(b) => format!("<{} bytes>", b.len()).into(),
    }
}

fn is_transient(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// A SQLite failure as a read error of `source.table` (transient when the database is busy).
pub(crate) fn sqlite_error(
    source: &str,
    table: &str,
    message: impl std::fmt::Display,
    e: &rusqlite::Error,
) -> IngestError {
    IngestError::Read {
        source_name: source.to_string(),
        table: table.to_string(),
        message: message.to_string(),
        transient: is_transient(e),
    }
}

/// The columns of `sql` and how each converts.
pub(crate) fn describe(
    conn: &rusqlite::Connection,
    sql: &str,
) -> Result<Vec<(String, Kind)>, rusqlite::Error> {
    let stmt = conn.prepare(sql)?;
    Ok(stmt
        .columns()
        .map(|c| (c.name().to_string(), kind_of(c.decl_type())))
        .collect())
}

/// The statement parameter for a watermark read back from the lake.
fn watermark_param(v: &serde_json::Value) -> rusqlite::types::Value {
    match v {
        serde_json::Value::Number(n) if n.is_i64() => {
            rusqlite::types::Value::Integer(n.as_i64().unwrap_or_default())
        }
        serde_json::Value::Number(n) => {
            rusqlite::types::Value::Real(n.as_f64().unwrap_or_default())
        }
        serde_json::Value::String(s) => rusqlite::types::Value::Text(s.clone()),
        serde_json::Value::Null => rusqlite::types::Value::Null,
        other => rusqlite::types::Value::Text(other.to_string()),
    }
}

/// The rows of a running statement.
struct SqliteRows<'s>(rusqlite::Rows<'s>);

impl<'s> RowReader for SqliteRows<'s> {
    type Column = Kind;
    type Row<'a>
        = &'a rusqlite::Row<'s>
    where
        Self: 'a;
    type Value<'v> = ValueRef<'v>;

    async fn next_row(&mut self) -> Result<Option<&rusqlite::Row<'s>>, DbFailure> {
        // A blocking call: this reader runs on a blocking thread (see `read_chunks`).
        self.0.next().map_err(|e| DbFailure {
            message: e.to_string(),
            transient: is_transient(&e),
        })
    }

    fn values<'v>(row: &'v &rusqlite::Row<'s>) -> Result<Vec<ValueRef<'v>>, String> {
        (0..row.as_ref().column_count())
            .map(|i| row.get_ref(i).map_err(|e| e.to_string()))
            .collect()
    }

    fn cursor(_: &Kind, value: &ValueRef<'_>) -> Result<Option<serde_json::Value>, String> {
        // SQLite values are dynamically typed: the cursor's watermark keeps the value as stored.
        Ok(Some(raw_json(*value)))
    }

    fn decode(kind: &Kind, value: &ValueRef<'_>) -> Result<Cell, String> {
        convert(*kind, *value)
    }

    fn raw_json(_: &Kind, value: &ValueRef<'_>) -> serde_json::Value {
        raw_json(*value)
    }
}

/// Runs the query on `conn` and sends chunks; runs on a blocking thread of `runtime`. Returns early
/// if the receiver is gone.
pub(crate) fn read_chunks(
    runtime: &tokio::runtime::Handle,
    conn: rusqlite::Connection,
    req: ReadRequest<Kind>,
    tx: ChunkTx,
) {
    let mut statement = conn.prepare(&req.sql);
    let params: Vec<rusqlite::types::Value> = req.watermark.iter().map(watermark_param).collect();
    let rows = match statement.as_mut() {
        Ok(s) => s
            .query(params_from_iter(params.iter()))
            .map(SqliteRows)
            .map_err(|e| sqlite_error(&req.source, &req.table, &e, &e)),
        Err(e) => Err(sqlite_error(
            &req.source,
            &req.table,
            format!("{e} (query: {})", req.sql),
            e,
        )),
    };
    relational::read_rows_blocking(runtime, rows, &req, &tx);
}
