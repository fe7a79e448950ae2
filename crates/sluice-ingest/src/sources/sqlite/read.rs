//! Reading SQLite rows into Arrow batches on a blocking thread, in commit-sized chunks.
//!
//! SQLite is dynamically typed: a column declared INTEGER can hold text. Each value is converted to the
//! column's declared type; a row holding a value that cannot be converted goes to quarantine with the
//! column and the value named, instead of failing the load or being silently coerced.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, Float64Builder, Int64Builder, RecordBatch, StringBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use rusqlite::types::ValueRef;
use rusqlite::{OpenFlags, params_from_iter};
use sluice_lake::QuarantinedRow;
use tokio::sync::mpsc::Sender;

use crate::error::IngestError;
use crate::sources::table_load::Chunk;

/// What to read.
pub(crate) struct ReadRequest {
    pub db: PathBuf,
    pub sql: String,
    pub params: Vec<rusqlite::types::Value>,
    /// Index of the cursor column in the result, for incremental reads.
    pub cursor: Option<String>,
    pub batch_size: usize,
    /// Rows per chunk (in an incremental read a chunk ends only where the cursor value changes).
    pub commit_rows: usize,
    pub source: String,
    pub table: String,
    pub busy_timeout: std::time::Duration,
}

#[derive(Clone, Copy)]
enum Kind {
    Int,
    Float,
    Text,
    Blob,
}

fn kind_of(decl: Option<&str>) -> Kind {
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

enum Builder {
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

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Int(b) => Arc::new(b.finish()),
            Builder::Float(b) => Arc::new(b.finish()),
            Builder::Text(b) => Arc::new(b.finish()),
            Builder::Blob(b) => Arc::new(b.finish()),
        }
    }
}

/// A converted value, ready to append.
enum Cell {
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

fn read_error(req: &ReadRequest, e: impl std::fmt::Display, transient: bool) -> IngestError {
    IngestError::Read {
        source_name: req.source.clone(),
        table: req.table.clone(),
        message: e.to_string(),
        transient,
    }
}

fn is_transient(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// Runs the query and sends chunks; runs on a blocking thread. Returns early if the receiver is gone.
pub(crate) fn read_chunks(req: ReadRequest, tx: Sender<Result<Chunk, IngestError>>) {
    if let Err(e) = read_inner(&req, &tx) {
        let _ = tx.blocking_send(Err(e));
    }
}

fn read_inner(
    req: &ReadRequest,
    tx: &Sender<Result<Chunk, IngestError>>,
) -> Result<(), IngestError> {
    if !req.db.is_file() {
        return Err(read_error(
            req,
            format!("database file {} does not exist", req.db.display()),
            false,
        ));
    }
    let conn = rusqlite::Connection::open_with_flags(
        &req.db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| {
        read_error(
            req,
            format!("cannot open {}: {e}", req.db.display()),
            is_transient(&e),
        )
    })?;
    let _ = conn.busy_timeout(req.busy_timeout);
    let mut stmt = conn
        .prepare(&req.sql)
        .map_err(|e| read_error(req, format!("{e} (query: {})", req.sql), is_transient(&e)))?;
    let columns: Vec<(String, Kind)> = stmt
        .columns()
        .map(|c| (c.name().to_string(), kind_of(c.decl_type())))
        .collect();
    let schema: SchemaRef = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(n, k)| {
                let dt = match k {
                    Kind::Int => DataType::Int64,
                    Kind::Float => DataType::Float64,
                    Kind::Text => DataType::Utf8,
                    Kind::Blob => DataType::Binary,
                };
                Field::new(n, dt, true)
            })
            .collect::<Vec<_>>(),
    ));
    let cursor_idx = req
        .cursor
        .as_ref()
        .and_then(|c| columns.iter().position(|(n, _)| n == c));
    if let (Some(c), None) = (&req.cursor, cursor_idx) {
        return Err(read_error(
            req,
            format!(
                "cursor column `{c}` is not in the result (columns: {})",
                columns
                    .iter()
                    .map(|c| c.0.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            false,
        ));
    }
    let mut rows = stmt
        .query(params_from_iter(req.params.iter()))
        .map_err(|e| {
            let t = is_transient(&e);
            read_error(req, e, t)
        })?;

    let new_builders = || {
        columns
            .iter()
            .map(|(_, k)| Builder::new(*k))
            .collect::<Vec<_>>()
    };
    let mut builders = new_builders();
    let mut in_batch = 0usize;
    let mut chunk = Chunk::new(schema.clone());
    let mut chunk_rows = 0usize;
    let mut row_number: u64 = 0;
    let mut cells: Vec<Cell> = Vec::with_capacity(columns.len());

    let finish_batch = |builders: &mut Vec<Builder>| -> Result<RecordBatch, IngestError> {
        let arrays: Vec<ArrayRef> = builders.iter_mut().map(Builder::finish).collect();
        RecordBatch::try_new(schema.clone(), arrays).map_err(|source| IngestError::Arrow {
            context: format!("{}.{}", req.source, req.table),
            source,
        })
    };

    loop {
        let row = match rows.next() {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(e) => {
                let t = is_transient(&e);
                return Err(read_error(req, e, t));
            }
        };
        row_number += 1;
        let cursor_value = match cursor_idx {
            Some(i) => Some(
                row.get_ref(i)
                    .map(raw_json)
                    .map_err(|e| read_error(req, e, false))?,
            ),
            None => None,
        };
        // Cut a chunk only between different cursor values, so resuming from its watermark with
        // `cursor > watermark` never skips rows that share the boundary value.
        if crate::sources::table_load::ends_chunk(
            &chunk,
            chunk_rows,
            req.commit_rows,
            req.cursor.is_some(),
            &cursor_value,
        ) {
            if in_batch > 0 {
                chunk.batches.push(finish_batch(&mut builders)?);
                in_batch = 0;
            }
            let full = std::mem::replace(&mut chunk, Chunk::new(schema.clone()));
            if tx.blocking_send(Ok(full)).is_err() {
                return Ok(());
            }
            chunk_rows = 0;
        }
        chunk.rows_read += 1;
        chunk_rows += 1;
        // A NULL cursor never becomes the watermark: `cursor > NULL` would select nothing ever again.
        if cursor_value.as_ref().is_some_and(|v| !v.is_null()) {
            chunk.watermark = cursor_value;
        }
        cells.clear();
        let mut bad: Option<String> = None;
        for (i, (name, kind)) in columns.iter().enumerate() {
            let v = row.get_ref(i).map_err(|e| read_error(req, e, false))?;
            match convert(*kind, v) {
                Ok(c) => cells.push(c),
                Err(why) => {
                    bad = Some(format!("row {row_number}: column `{name}`: {why}"));
                    break;
                }
            }
        }
        if let Some(reason) = bad {
            let raw: serde_json::Map<String, serde_json::Value> = columns
                .iter()
                .enumerate()
                .map(|(i, (n, _))| {
                    (
                        n.clone(),
                        row.get_ref(i)
                            .map(raw_json)
                            .unwrap_or(serde_json::Value::Null),
                    )
                })
                .collect();
            chunk.rejected.push(QuarantinedRow {
                source_file: None,
                line: Some(row_number),
                reason,
                raw: serde_json::Value::Object(raw).to_string(),
            });
            continue;
        }
        for (b, c) in builders.iter_mut().zip(cells.drain(..)) {
            match (b, c) {
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
        in_batch += 1;
        if in_batch >= req.batch_size {
            chunk.batches.push(finish_batch(&mut builders)?);
            builders = new_builders();
            in_batch = 0;
        }
    }
    if in_batch > 0 {
        chunk.batches.push(finish_batch(&mut builders)?);
    }
    let _ = tx.blocking_send(Ok(chunk));
    Ok(())
}
