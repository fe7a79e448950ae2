//! MySQL's row reader, value decoding and Arrow builders; the kit's loop
//! ([`relational::read_rows`]) turns the rows into chunks.
//!
//! The driver reads the socket only as fast as rows are taken, so memory stays bounded by the kit's
//! chunks. A row with one bad value (a zero date, a `tinyint(1)` holding 7) goes to quarantine
//! whole, with its exact values as JSON.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int8Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::compute::kernels::cast_utils::parse_decimal;
use arrow::datatypes::Decimal128Type;
use arrow::error::ArrowError;
use chrono::{NaiveDate, NaiveDateTime};
use mysql_async::prelude::Queryable;
use mysql_async::{BinaryProtocol, Conn, QueryResult, Row, Statement, Value};

use super::client::MyFailure;
use super::types::MyKind;
use crate::sources::relational::{
    self, ChunkTx, ColumnBuilder, ColumnType, DbFailure, ReadRequest, RowReader,
};

/// One decoded value.
#[derive(Debug, PartialEq)]
pub(crate) enum Cell {
    Null,
    Bool(bool),
    I8(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    Wide(i128),
    F32(f32),
    F64(f64),
    Str(String),
    Bytes(Vec<u8>),
    Date(i32),
    Micros(i64),
}

/// An Arrow builder for one [`MyKind`].
pub(crate) enum ColBuilder {
    Bool(BooleanBuilder),
    I8(Int8Builder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    Decimal(Decimal128Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Str(StringBuilder),
    Bytes(BinaryBuilder),
    Date(Date32Builder),
    Micros(TimestampMicrosecondBuilder),
}

impl ColBuilder {
    fn new(kind: MyKind) -> Self {
        match kind {
            MyKind::Bool => ColBuilder::Bool(BooleanBuilder::new()),
            MyKind::Int8 => ColBuilder::I8(Int8Builder::new()),
            MyKind::Int16 => ColBuilder::I16(Int16Builder::new()),
            MyKind::Int32 => ColBuilder::I32(Int32Builder::new()),
            MyKind::Int64 => ColBuilder::I64(Int64Builder::new()),
            MyKind::UInt64 | MyKind::Decimal { .. } => {
                ColBuilder::Decimal(Decimal128Builder::new().with_data_type(kind.arrow_type()))
            }
            MyKind::Float32 => ColBuilder::F32(Float32Builder::new()),
            MyKind::Float64 => ColBuilder::F64(Float64Builder::new()),
            MyKind::DecimalText | MyKind::Text | MyKind::Time => {
                ColBuilder::Str(StringBuilder::new())
            }
            MyKind::Bytes => ColBuilder::Bytes(BinaryBuilder::new()),
            MyKind::Date => ColBuilder::Date(Date32Builder::new()),
            MyKind::DateTime | MyKind::Timestamp => ColBuilder::Micros(
                TimestampMicrosecondBuilder::new().with_data_type(kind.arrow_type()),
            ),
        }
    }

    /// Appends a decoded value; a value of the wrong shape is a bug in [`decode`].
    fn append(&mut self, cell: Cell) -> Result<(), String> {
        match (self, cell) {
            (ColBuilder::Bool(b), Cell::Null) => b.append_null(),
            (ColBuilder::I8(b), Cell::Null) => b.append_null(),
            (ColBuilder::I16(b), Cell::Null) => b.append_null(),
            (ColBuilder::I32(b), Cell::Null) => b.append_null(),
            (ColBuilder::I64(b), Cell::Null) => b.append_null(),
            (ColBuilder::Decimal(b), Cell::Null) => b.append_null(),
            (ColBuilder::F32(b), Cell::Null) => b.append_null(),
            (ColBuilder::F64(b), Cell::Null) => b.append_null(),
            (ColBuilder::Str(b), Cell::Null) => b.append_null(),
            (ColBuilder::Bytes(b), Cell::Null) => b.append_null(),
            (ColBuilder::Date(b), Cell::Null) => b.append_null(),
            (ColBuilder::Micros(b), Cell::Null) => b.append_null(),
            (ColBuilder::Bool(b), Cell::Bool(v)) => b.append_value(v),
            (ColBuilder::I8(b), Cell::I8(v)) => b.append_value(v),
            (ColBuilder::I16(b), Cell::I16(v)) => b.append_value(v),
            (ColBuilder::I32(b), Cell::I32(v)) => b.append_value(v),
            (ColBuilder::I64(b), Cell::I64(v)) => b.append_value(v),
            (ColBuilder::Decimal(b), Cell::Wide(v)) => b.append_value(v),
            (ColBuilder::F32(b), Cell::F32(v)) => b.append_value(v),
            (ColBuilder::F64(b), Cell::F64(v)) => b.append_value(v),
            (ColBuilder::Str(b), Cell::Str(v)) => b.append_value(v),
            (ColBuilder::Bytes(b), Cell::Bytes(v)) => b.append_value(v),
            (ColBuilder::Date(b), Cell::Date(v)) => b.append_value(v),
            (ColBuilder::Micros(b), Cell::Micros(v)) => b.append_value(v),
            (_, cell) => return Err(format!("internal error: unexpected value {cell:?}")),
        }
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            ColBuilder::Bool(b) => Arc::new(b.finish()),
            ColBuilder::I8(b) => Arc::new(b.finish()),
            ColBuilder::I16(b) => Arc::new(b.finish()),
            ColBuilder::I32(b) => Arc::new(b.finish()),
            ColBuilder::I64(b) => Arc::new(b.finish()),
            ColBuilder::Decimal(b) => Arc::new(b.finish()),
            ColBuilder::F32(b) => Arc::new(b.finish()),
            ColBuilder::F64(b) => Arc::new(b.finish()),
            ColBuilder::Str(b) => Arc::new(b.finish()),
            ColBuilder::Bytes(b) => Arc::new(b.finish()),
            ColBuilder::Date(b) => Arc::new(b.finish()),
            ColBuilder::Micros(b) => Arc::new(b.finish()),
        }
    }
}

/// A `bit(n)` value: big-endian bytes.
fn bits(bytes: &[u8]) -> Result<u64, String> {
    if bytes.len() > 8 {
        return Err(format!(
            "bit value of {} bytes does not fit 64 bits",
            bytes.len()
        ));
    }
    Ok(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

/// The value as an integer (binary-protocol integers, or `bit(n)` bytes).
fn integer(v: &Value) -> Result<i128, String> {
    match v {
        Value::Int(i) => Ok(i128::from(*i)),
        Value::UInt(u) => Ok(i128::from(*u)),
        // The binary protocol sends integers typed; bytes are `bit(n)` values.
        Value::Bytes(b) => bits(b).map(i128::from),
        other => Err(format!("expected an integer, found {other:?}")),
    }
}

fn utf8(b: &[u8]) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|e| format!("not valid UTF-8: {e}"))
}

/// The calendar date and time of a `Value::Date`, or why it has none (zero dates).
fn date_time(v: &Value) -> Result<NaiveDateTime, String> {
    let Value::Date(y, mo, d, h, mi, s, us) = *v else {
        return Err(format!("expected a date, found {v:?}"));
    };
    NaiveDate::from_ymd_opt(i32::from(y), u32::from(mo), u32::from(d))
        .and_then(|date| date.and_hms_micro_opt(u32::from(h), u32::from(mi), u32::from(s), us))
        .ok_or_else(|| {
            format!(
                "`{}` is not a calendar date and has no Arrow value",
                date_text(v)
            )
        })
}

/// `YYYY-MM-DD HH:MM:SS.ffffff`, as MySQL writes a datetime (also for zero dates).
fn date_text(v: &Value) -> String {
    match *v {
        Value::Date(y, mo, d, h, mi, s, us) => {
            format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}")
        }
        _ => String::new(),
    }
}

/// `[-]HH:MM:SS[.ffffff]`, hours counting the days (MySQL's own text form).
fn time_text(neg: bool, days: u32, h: u8, m: u8, s: u8, us: u32) -> String {
    let hours = u64::from(days) * 24 + u64::from(h);
    let sign = if neg { "-" } else { "" };
    if us == 0 {
        format!("{sign}{hours:02}:{m:02}:{s:02}")
    } else {
        format!("{sign}{hours:02}:{m:02}:{s:02}.{us:06}")
    }
}

/// `n` as a narrower integer, or why it does not fit.
fn fit<T: TryFrom<i128>>(n: i128, to: &str) -> Result<T, String> {
    T::try_from(n).map_err(|_| format!("{n} does not fit {to}"))
}

/// Decodes one value of a column of `kind`.
fn decode(kind: MyKind, v: &Value) -> Result<Cell, String> {
    if *v == Value::NULL {
        return Ok(Cell::Null);
    }
    Ok(match kind {
        MyKind::Bool => match integer(v)? {
            0 => Cell::Bool(false),
            1 => Cell::Bool(true),
            n => {
                return Err(format!(
                    "{n} is not a boolean (0 or 1); cast it in `query:`"
                ));
            }
        },
        MyKind::Int8 => Cell::I8(fit(integer(v)?, "int8")?),
        MyKind::Int16 => Cell::I16(fit(integer(v)?, "int16")?),
        MyKind::Int32 => Cell::I32(fit(integer(v)?, "int32")?),
        MyKind::Int64 => Cell::I64(fit(integer(v)?, "int64")?),
        MyKind::UInt64 => Cell::Wide(integer(v)?),
        MyKind::Float32 => match v {
            Value::Float(f) => Cell::F32(*f),
            // A double in a float column only comes from expressions; keep the nearest float.
            #[allow(clippy::cast_possible_truncation)]
            Value::Double(d) => Cell::F32(*d as f32),
            other => return Err(format!("expected a float, found {other:?}")),
        },
        MyKind::Float64 => match v {
            Value::Double(d) => Cell::F64(*d),
            Value::Float(f) => Cell::F64(f64::from(*f)),
            other => return Err(format!("expected a double, found {other:?}")),
        },
        MyKind::Decimal { precision, scale } => {
            let text = match v {
                Value::Bytes(b) => utf8(b)?,
                other => return Err(format!("expected decimal text, found {other:?}")),
            };
            Cell::Wide(
                parse_decimal::<Decimal128Type>(&text, precision, scale).map_err(|e| {
                    format!("decimal {text} does not fit decimal({precision},{scale}): {e}")
                })?,
            )
        }
        MyKind::DecimalText | MyKind::Text => match v {
            Value::Bytes(b) => Cell::Str(utf8(b)?),
            other => return Err(format!("expected text, found {other:?}")),
        },
        MyKind::Bytes => match v {
            Value::Bytes(b) => Cell::Bytes(b.clone()),
            other => return Err(format!("expected bytes, found {other:?}")),
        },
        MyKind::Date => {
            let days = date_time(v)?.date() - NaiveDate::default();
            Cell::Date(i32::try_from(days.num_days()).map_err(|_| "date out of range".to_string())?)
        }
        MyKind::DateTime | MyKind::Timestamp => {
            Cell::Micros(date_time(v)?.and_utc().timestamp_micros())
        }
        MyKind::Time => match *v {
            Value::Time(neg, days, h, m, s, us) => Cell::Str(time_text(neg, days, h, m, s, us)),
            ref other => return Err(format!("expected a time, found {other:?}")),
        },
    })
}

/// The watermark JSON of a cursor value: numbers for integers and floats, MySQL's text for the rest.
fn cursor_json(kind: MyKind, v: &Value) -> Result<serde_json::Value, String> {
    Ok(match (kind, v) {
        (_, Value::Int(i)) => (*i).into(),
        (_, Value::UInt(u)) => (*u).into(),
        (_, Value::Float(f)) => f64::from(*f).into(),
        (_, Value::Double(d)) => (*d).into(),
        (MyKind::Date, d @ Value::Date(..)) => date_text(d).get(..10).unwrap_or_default().into(),
        (_, d @ Value::Date(..)) => date_text(d).into(),
        (_, Value::Time(neg, days, h, m, s, us)) => time_text(*neg, *days, *h, *m, *s, *us).into(),
        (MyKind::Int64 | MyKind::UInt64, Value::Bytes(b)) => bits(b)?.into(),
        (_, Value::Bytes(b)) => utf8(b)?.into(),
        (_, Value::NULL) => serde_json::Value::Null,
    })
}

/// The statement parameter for a watermark read back from the lake.
pub(crate) fn watermark_param(w: &serde_json::Value) -> Value {
    match w {
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Value::Int(i),
            (None, Some(u), _) => Value::UInt(u),
            (None, None, Some(f)) => Value::Double(f),
            _ => Value::Bytes(n.to_string().into_bytes()),
        },
        serde_json::Value::String(s) => Value::Bytes(s.clone().into_bytes()),
        other => Value::Bytes(other.to_string().into_bytes()),
    }
}

/// A value exactly, for the quarantined row's JSON.
fn raw_json(v: &Value) -> serde_json::Value {
    match v {
        Value::NULL => serde_json::Value::Null,
        Value::Int(i) => (*i).into(),
        Value::UInt(u) => (*u).into(),
        Value::Float(f) => serde_json::Number::from_f64(f64::from(*f))
            .map_or_else(|| f.to_string().into(), serde_json::Value::Number),
        Value::Double(d) => serde_json::Number::from_f64(*d)
            .map_or_else(|| d.to_string().into(), serde_json::Value::Number),
        Value::Bytes(b) => match std::str::from_utf8(b) {
            Ok(s) => s.into(),
            Err(_) => format!(
                "0x{}",
                b.iter().map(|x| format!("{x:02x}")).collect::<String>()
            )
            .into(),
        },
        d @ Value::Date(..) => date_text(d).into(),
        Value::Time(neg, days, h, m, s, us) => time_text(*neg, *days, *h, *m, *s, *us).into(),
    }
}

impl ColumnType for MyKind {
    type Builder = ColBuilder;

    fn arrow_type(&self) -> arrow::datatypes::DataType {
        MyKind::arrow_type(*self)
    }

    fn builder(&self) -> ColBuilder {
        ColBuilder::new(*self)
    }
}

impl ColumnBuilder for ColBuilder {
    type Cell<'v> = Cell;

    fn append(&mut self, cell: Cell) -> Result<(), String> {
        ColBuilder::append(self, cell)
    }

    fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
        Ok(ColBuilder::finish(self))
    }
}

/// The rows of a running statement (it holds the connection until they are all read or dropped).
struct MyRows<'c>(QueryResult<'c, 'static, BinaryProtocol>);

/// The value of a row whose value was taken (never: values are only borrowed).
static NULL: Value = Value::NULL;

impl RowReader for MyRows<'_> {
    type Column = MyKind;
    type Row<'a>
        = Row
    where
        Self: 'a;
    type Value<'v> = &'v Value;

    async fn next_row(&mut self) -> Result<Option<Row>, DbFailure> {
        self.0.next().await.map_err(MyFailure::from)
    }

    fn values(row: &Row) -> Result<Vec<&Value>, String> {
        Ok((0..row.len())
            .map(|i| row.as_ref(i).unwrap_or(&NULL))
            .collect())
    }

    fn cursor(kind: &MyKind, value: &&Value) -> Result<Option<serde_json::Value>, String> {
        match *value {
            Value::NULL => Ok(None),
            v => cursor_json(*kind, v).map(Some),
        }
    }

    fn decode(kind: &MyKind, value: &&Value) -> Result<Cell, String> {
        decode(*kind, value)
    }

    fn raw_json(_: &MyKind, value: &&Value) -> serde_json::Value {
        raw_json(value)
    }
}

/// Runs `statement` (prepared from the request's SQL) on `conn` and sends chunks; stops early if
/// the receiver is gone.
pub(crate) async fn read_chunks(
    mut conn: Conn,
    statement: Statement,
    req: ReadRequest<MyKind>,
    tx: ChunkTx,
) {
    let params: Vec<Value> = req.watermark.iter().map(watermark_param).collect();
    let rows = conn
        .exec_iter(&statement, params)
        .await
        .map(MyRows)
        .map_err(|e| MyFailure::from(e).into_error(&req.source, &req.table, "query failed"));
    relational::read_rows(rows, &req, &tx).await;
    if let Err(e) = conn.disconnect().await {
        tracing::debug!(error = %e, "mysql disconnect failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_edge_values() {
        assert_eq!(
            decode(MyKind::Bool, &Value::Int(1)).unwrap(),
            Cell::Bool(true)
        );
        assert!(
            decode(MyKind::Bool, &Value::Int(7))
                .unwrap_err()
                .contains("not a boolean")
        );
        assert_eq!(
            decode(MyKind::Bool, &Value::Bytes(vec![1])).unwrap(),
            Cell::Bool(true)
        );
        assert_eq!(
            decode(MyKind::Int64, &Value::Bytes(vec![0x01, 0x02])).unwrap(),
            Cell::I64(258)
        );
        assert_eq!(
            decode(MyKind::UInt64, &Value::UInt(u64::MAX)).unwrap(),
            Cell::Wide(i128::from(u64::MAX))
        );
        assert!(
            decode(MyKind::Int8, &Value::Int(300))
                .unwrap_err()
                .contains("int8")
        );
        let zero = Value::Date(0, 0, 0, 0, 0, 0, 0);
        assert_eq!(
            decode(MyKind::DateTime, &zero).unwrap_err(),
            "`0000-00-00 00:00:00.000000` is not a calendar date and has no Arrow value"
        );
        assert_eq!(
            decode(MyKind::Time, &Value::Time(true, 1, 2, 3, 4, 500)).unwrap(),
            Cell::Str("-26:03:04.000500".into())
        );
        assert_eq!(
            decode(
                MyKind::Decimal {
                    precision: 6,
                    scale: 2
                },
                &Value::Bytes(b"-12.50".to_vec())
            )
            .unwrap(),
            Cell::Wide(-1250)
        );
        assert_eq!(
            decode(MyKind::Date, &Value::Date(1970, 1, 2, 0, 0, 0, 0)).unwrap(),
            Cell::Date(1)
        );
    }

    #[test]
    fn watermarks_round_trip() {
        let d = Value::Date(2024, 5, 1, 10, 0, 0, 250);
        let w = cursor_json(MyKind::DateTime, &d).unwrap();
        assert_eq!(w, "2024-05-01 10:00:00.000250");
        assert_eq!(
            watermark_param(&w),
            Value::Bytes(b"2024-05-01 10:00:00.000250".to_vec())
        );
        assert_eq!(cursor_json(MyKind::Date, &d).unwrap(), "2024-05-01");
        assert_eq!(
            watermark_param(&serde_json::json!(u64::MAX)),
            Value::UInt(u64::MAX)
        );
        assert_eq!(watermark_param(&serde_json::json!(-3)), Value::Int(-3));
        assert_eq!(raw_json(&Value::Bytes(vec![0xff, 0x00])), "0xff00");
    }
}
