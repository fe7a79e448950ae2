//! Decoding PostgreSQL's binary wire format into values ready for Arrow builders.
//!
//! tokio-postgres always asks for binary results. Rather than going through a Rust type per column
//! (which cannot hold `numeric` exactly, nor `infinity` timestamps), each value is read as raw bytes
//! and decoded here against the column's [`PgKind`]. A value that has no faithful Arrow form (a
//! `numeric` that does not fit the column's decimal, `NaN`, an `infinity` timestamp, a
//! multi-dimensional array) is an error naming the value, and its row goes to quarantine.

use serde_json::Value;
use tokio_postgres::types::{FromSql, Type};

use super::numeric::Numeric;
use super::types::PgKind;

/// Microseconds from 1970-01-01 (Unix) to 2000-01-01 (PostgreSQL's epoch).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Days from 1970-01-01 to 2000-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;
const MICROS_PER_SECOND: i64 = 1_000_000;

/// A column value as the raw bytes PostgreSQL sent (binary format).
pub(crate) struct Raw<'a>(pub &'a [u8]);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(
        _ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw))
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }
}

/// One decoded value. Borrowed text and bytes point into the row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell<'a> {
    Null,
    Bool(bool),
    I16(i16),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    /// Unscaled decimal value at the column's scale.
    Decimal(i128, i8),
    Str(&'a str),
    Owned(String),
    Uuid([u8; 16]),
    Bytes(&'a [u8]),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since 1970-01-01 (wall clock for `timestamp`, UTC for `timestamptz`).
    Timestamp(i64, bool),
    List(Vec<Cell<'a>>),
}

fn fixed<const N: usize>(raw: &[u8], what: &str) -> Result<[u8; N], String> {
    raw.try_into()
        .map_err(|_| format!("malformed {what}: expected {N} bytes, got {}", raw.len()))
}

fn utf8<'a>(raw: &'a [u8], what: &str) -> Result<&'a str, String> {
    std::str::from_utf8(raw).map_err(|e| format!("{what} is not valid UTF-8: {e}"))
}

/// Decodes one non-null value of `kind`.
pub(crate) fn decode<'a>(kind: &PgKind, raw: &'a [u8]) -> Result<Cell<'a>, String> {
    Ok(match kind {
        PgKind::Bool => Cell::Bool(fixed::<1>(raw, "bool")?[0] != 0),
        PgKind::Int2 => Cell::I16(i16::from_be_bytes(fixed(raw, "int2")?)),
        PgKind::Int4 => Cell::I32(i32::from_be_bytes(fixed(raw, "int4")?)),
        PgKind::Int8 => Cell::I64(i64::from_be_bytes(fixed(raw, "int8")?)),
        PgKind::Float4 => Cell::F32(f32::from_be_bytes(fixed(raw, "float4")?)),
        PgKind::Float8 => Cell::F64(f64::from_be_bytes(fixed(raw, "float8")?)),
        PgKind::Decimal { precision, scale } => {
            let n = Numeric::parse(raw)?;
            Cell::Decimal(n.to_decimal(*precision, *scale)?, *scale)
        }
        PgKind::NumericText => Cell::Owned(Numeric::parse(raw)?.to_string()),
        PgKind::Text | PgKind::Json => Cell::Str(utf8(raw, "text")?),
        PgKind::Jsonb => match raw.split_first() {
            Some((1, json)) => Cell::Str(utf8(json, "jsonb")?),
            Some((v, _)) => return Err(format!("unknown jsonb format version {v}")),
            None => return Err("malformed jsonb: empty".into()),
        },
        PgKind::Uuid => Cell::Uuid(fixed(raw, "uuid")?),
        PgKind::Bytea => Cell::Bytes(raw),
        PgKind::Date => {
            let days = i32::from_be_bytes(fixed(raw, "date")?);
            if days == i32::MAX || days == i32::MIN {
                return Err(format!("date `{}` has no Arrow value", infinity(days > 0)));
            }
            Cell::Date(
                days.checked_add(PG_EPOCH_DAYS)
                    .ok_or_else(|| format!("date {days} days after 2000-01-01 is out of range"))?,
            )
        }
        PgKind::Timestamp | PgKind::TimestampTz => {
            let micros = i64::from_be_bytes(fixed(raw, "timestamp")?);
            if micros == i64::MAX || micros == i64::MIN {
                return Err(format!(
                    "timestamp `{}` has no Arrow value",
                    infinity(micros > 0)
                ));
            }
            let unix = micros
                .checked_add(PG_EPOCH_MICROS)
                .ok_or_else(|| format!("timestamp {micros} µs after 2000-01-01 is out of range"))?;
            Cell::Timestamp(unix, *kind == PgKind::TimestampTz)
        }
        PgKind::Time => Cell::Owned(format_time(i64::from_be_bytes(fixed(raw, "time")?))),
        PgKind::Interval => {
            let b: [u8; 16] = fixed(raw, "interval")?;
            let mut micros = [0u8; 8];
            micros.copy_from_slice(&b[..8]);
            let mut days = [0u8; 4];
            days.copy_from_slice(&b[8..12]);
            let mut months = [0u8; 4];
            months.copy_from_slice(&b[12..]);
            Cell::Owned(format_interval(
                i32::from_be_bytes(months),
                i32::from_be_bytes(days),
                i64::from_be_bytes(micros),
            ))
        }
        PgKind::List(item) => decode_array(item, raw)?,
    })
}

fn infinity(positive: bool) -> &'static str {
    if positive { "infinity" } else { "-infinity" }
}

/// Reads a big-endian i32 at `*pos` and advances.
fn take_i32(raw: &[u8], pos: &mut usize) -> Result<i32, String> {
    let end = pos.saturating_add(4);
    let bytes = raw
        .get(*pos..end)
        .ok_or_else(|| "malformed array: truncated".to_string())?;
    *pos = end;
    Ok(i32::from_be_bytes(fixed(bytes, "array header")?))
}

/// A one-dimensional array: `ndim, has_nulls, element oid, (length, lower bound) per dimension`,
/// then `length, bytes` per element (length -1: NULL).
fn decode_array<'a>(item: &PgKind, raw: &'a [u8]) -> Result<Cell<'a>, String> {
    let mut pos = 0;
    let ndim = take_i32(raw, &mut pos)?;
    let _has_nulls = take_i32(raw, &mut pos)?;
    let _oid = take_i32(raw, &mut pos)?;
    match ndim {
        0 => return Ok(Cell::List(Vec::new())),
        1 => {}
        n => {
            return Err(format!(
                "multi-dimensional array ({n} dimensions) cannot land as a list; \
                 flatten it in `query:`"
            ));
        }
    }
    let len = take_i32(raw, &mut pos)?;
    let _lower_bound = take_i32(raw, &mut pos)?;
    let len = usize::try_from(len).map_err(|_| format!("malformed array: length {len}"))?;
    let mut items = Vec::with_capacity(len.min(raw.len() / 4));
    for _ in 0..len {
        let n = take_i32(raw, &mut pos)?;
        if n < 0 {
            items.push(Cell::Null);
            continue;
        }
        let end = pos.saturating_add(n.unsigned_abs() as usize);
        let bytes = raw
            .get(pos..end)
            .ok_or_else(|| "malformed array: element truncated".to_string())?;
        pos = end;
        items.push(decode(item, bytes)?);
    }
    Ok(Cell::List(items))
}

/// Microseconds since midnight as `HH:MM:SS[.ffffff]` (trailing zeros of the fraction dropped).
pub(crate) fn format_time(micros: i64) -> String {
    let secs = micros.div_euclid(MICROS_PER_SECOND);
    let frac = micros.rem_euclid(MICROS_PER_SECOND);
    let mut s = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    push_fraction(&mut s, frac);
    s
}

fn push_fraction(s: &mut String, frac: i64) {
    if frac != 0 {
        let digits = format!("{frac:06}");
        s.push('.');
        s.push_str(digits.trim_end_matches('0'));
    }
}

/// An interval as ISO 8601, exactly as PostgreSQL prints it with `intervalstyle = iso_8601`
/// (`P1Y2M3DT4H5M6.5S`, `PT0S`; a negative part carries its own sign, as in `P-1Y-2MT-3H`).
pub(crate) fn format_interval(months: i32, days: i32, micros: i64) -> String {
    let (years, months) = (months / 12, months % 12);
    let hours = micros / (3600 * MICROS_PER_SECOND);
    let rest = micros % (3600 * MICROS_PER_SECOND);
    let minutes = rest / (60 * MICROS_PER_SECOND);
    let rest = rest % (60 * MICROS_PER_SECOND);
    let (seconds, frac) = (rest / MICROS_PER_SECOND, rest % MICROS_PER_SECOND);
    if years == 0 && months == 0 && days == 0 && micros == 0 {
        return "PT0S".into();
    }
    let mut s = String::from("P");
    for (v, unit) in [
        (i64::from(years), 'Y'),
        (i64::from(months), 'M'),
        (i64::from(days), 'D'),
    ] {
        if v != 0 {
            s.push_str(&format!("{v}{unit}"));
        }
    }
    if micros != 0 {
        s.push('T');
        for (v, unit) in [(hours, 'H'), (minutes, 'M')] {
            if v != 0 {
                s.push_str(&format!("{v}{unit}"));
            }
        }
        if seconds != 0 || frac != 0 {
            if seconds < 0 || frac < 0 {
                s.push('-');
            }
            s.push_str(&seconds.abs().to_string());
            push_fraction(&mut s, frac.abs());
            s.push('S');
        }
    }
    s
}

fn format_decimal(unscaled: i128, scale: i8) -> String {
    let scale = usize::try_from(scale).unwrap_or(0);
    let digits = unscaled.unsigned_abs().to_string();
    let sign = if unscaled < 0 { "-" } else { "" };
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let digits = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = digits.split_at(digits.len() - scale);
    format!("{sign}{int}.{frac}")
}

fn format_timestamp(unix_micros: i64, tz: bool) -> String {
    match chrono::DateTime::from_timestamp_micros(unix_micros) {
        Some(t) if tz => t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        Some(t) => t.naive_utc().format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
        None => unix_micros.to_string(),
    }
}

fn float_json(v: f64) -> Value {
    serde_json::Number::from_f64(v)
        .map(Value::Number)
        .unwrap_or_else(|| {
            Value::String(if v.is_nan() {
                "NaN".into()
            } else {
                infinity_word(v)
            })
        })
}

fn infinity_word(v: f64) -> String {
    if v > 0.0 { "Infinity" } else { "-Infinity" }.into()
}

impl Cell<'_> {
    /// The value as JSON: numbers for integers and finite floats, text for everything else
    /// (decimals exactly, timestamps as ISO 8601, bytes as `\x` hex like PostgreSQL).
    pub(crate) fn to_json(&self) -> Value {
        match self {
            Cell::Null => Value::Null,
            Cell::Bool(b) => Value::Bool(*b),
            Cell::I16(v) => (*v).into(),
            Cell::I32(v) => (*v).into(),
            Cell::I64(v) => (*v).into(),
            Cell::F32(v) => float_json(f64::from(*v)),
            Cell::F64(v) => float_json(*v),
            Cell::Decimal(v, s) => format_decimal(*v, *s).into(),
            Cell::Str(s) => (*s).into(),
            Cell::Owned(s) => s.clone().into(),
            Cell::Uuid(b) => uuid::Uuid::from_bytes(*b).hyphenated().to_string().into(),
            Cell::Bytes(b) => {
                let mut s = String::with_capacity(2 + b.len() * 2);
                s.push_str("\\x");
                for byte in *b {
                    s.push_str(&format!("{byte:02x}"));
                }
                s.into()
            }
            Cell::Date(days) => chrono::DateTime::from_timestamp(i64::from(*days) * 86_400, 0)
                .map(|t| t.format("%Y-%m-%d").to_string())
                .unwrap_or_else(|| days.to_string())
                .into(),
            Cell::Timestamp(us, tz) => format_timestamp(*us, *tz).into(),
            Cell::List(items) => Value::Array(items.iter().map(Cell::to_json).collect()),
        }
    }
}

/// The value of an incremental cursor column as JSON, for the high-water mark. Unlike [`decode`] it
/// accepts every value the column can hold (`NaN`, `infinity`), since the mark must be able to pass
/// any row: the JSON is sent back as text and cast to the column type.
pub(crate) fn cursor_json(kind: &PgKind, raw: &[u8]) -> Result<Value, String> {
    match kind {
        PgKind::Decimal { .. } | PgKind::NumericText => Ok(Numeric::parse(raw)?.to_string().into()),
        PgKind::Date if raw == i32::MAX.to_be_bytes() || raw == i32::MIN.to_be_bytes() => {
            Ok(infinity(raw == i32::MAX.to_be_bytes()).into())
        }
        PgKind::Timestamp | PgKind::TimestampTz
            if raw == i64::MAX.to_be_bytes() || raw == i64::MIN.to_be_bytes() =>
        {
            Ok(infinity(raw == i64::MAX.to_be_bytes()).into())
        }
        _ => decode(kind, raw).map(|c| c.to_json()),
    }
}

/// A best-effort JSON rendering of a value for a quarantined row (the row as received).
pub(crate) fn raw_json(kind: &PgKind, raw: Option<&[u8]>) -> Value {
    let Some(raw) = raw else {
        return Value::Null;
    };
    cursor_json(kind, raw).unwrap_or_else(|_| Cell::Bytes(raw).to_json())
}

/// The watermark JSON as the text PostgreSQL parses back into the cursor's type.
pub(crate) fn watermark_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_match_postgres_iso_8601() {
        assert_eq!(format_interval(0, 0, 0), "PT0S");
        assert_eq!(
            format_interval(14, 3, ((4 * 60 + 5) * 60 + 6) * 1_000_000 + 789_000),
            "P1Y2M3DT4H5M6.789S"
        );
        assert_eq!(format_interval(-14, 0, -3_600_000_000), "P-1Y-2MT-1H");
        assert_eq!(format_interval(0, 0, -1_500_000), "PT-1.5S");
        assert_eq!(format_interval(0, 0, -500_000), "PT-0.5S");
        assert_eq!(format_interval(0, 1, 0), "P1D");
    }

    #[test]
    fn times_and_timestamps() {
        assert_eq!(format_time(0), "00:00:00");
        assert_eq!(format_time(45_296_500_000), "12:34:56.5");
        assert_eq!(format_time(86_400_000_000), "24:00:00");
        let zero = 0i64.to_be_bytes();
        let ts = decode(&PgKind::TimestampTz, &zero).unwrap();
        assert_eq!(ts, Cell::Timestamp(PG_EPOCH_MICROS, true));
        assert_eq!(ts.to_json(), "2000-01-01T00:00:00.000000Z");
        let inf = decode(&PgKind::Timestamp, &i64::MAX.to_be_bytes()).unwrap_err();
        assert!(inf.contains("infinity"), "{inf}");
        assert_eq!(
            cursor_json(&PgKind::Timestamp, &i64::MIN.to_be_bytes()).unwrap(),
            "-infinity"
        );
        let one = 1i32.to_be_bytes();
        let d = decode(&PgKind::Date, &one).unwrap();
        assert_eq!(d.to_json(), "2000-01-02");
    }

    #[test]
    fn arrays() {
        let mut raw = Vec::new();
        for v in [1i32, 1, 23, 3, 1] {
            raw.extend_from_slice(&v.to_be_bytes());
        }
        raw.extend_from_slice(&4i32.to_be_bytes());
        raw.extend_from_slice(&7i32.to_be_bytes());
        raw.extend_from_slice(&(-1i32).to_be_bytes());
        raw.extend_from_slice(&4i32.to_be_bytes());
        raw.extend_from_slice(&(-9i32).to_be_bytes());
        let cell = decode(&PgKind::List(Box::new(PgKind::Int4)), &raw).unwrap();
        assert_eq!(
            cell,
            Cell::List(vec![Cell::I32(7), Cell::Null, Cell::I32(-9)])
        );
        assert_eq!(cell.to_json(), serde_json::json!([7, null, -9]));
        // Truncated input is an error, not a panic.
        let err = decode(&PgKind::List(Box::new(PgKind::Int4)), &raw[..30]).unwrap_err();
        assert!(err.contains("truncated"), "{err}");
        let mut two_d = Vec::new();
        for v in [2i32, 0, 23, 1, 1, 1, 1] {
            two_d.extend_from_slice(&v.to_be_bytes());
        }
        let err = decode(&PgKind::List(Box::new(PgKind::Int4)), &two_d).unwrap_err();
        assert!(err.contains("2 dimensions"), "{err}");
    }

    #[test]
    fn json_renderings() {
        assert_eq!(Cell::Decimal(-5, 2).to_json(), "-0.05");
        assert_eq!(Cell::Decimal(12345, 0).to_json(), "12345");
        assert_eq!(Cell::Bytes(&[0xde, 0xad]).to_json(), "\\xdead");
        assert_eq!(Cell::F64(f64::NAN).to_json(), "NaN");
        assert_eq!(watermark_text(&serde_json::json!(42)), "42");
        assert_eq!(
            watermark_text(&serde_json::json!("2024-01-01")),
            "2024-01-01"
        );
        assert_eq!(
            decode(&PgKind::Jsonb, b"\x01{\"a\": 1}").unwrap(),
            Cell::Str("{\"a\": 1}")
        );
        assert!(
            decode(&PgKind::Int4, &[0, 1])
                .unwrap_err()
                .contains("4 bytes")
        );
        assert_eq!(
            raw_json(
                &PgKind::Decimal {
                    precision: 5,
                    scale: 0
                },
                Some(&crate::sources::postgres::numeric::tests::numeric(
                    2,
                    0,
                    0,
                    &[1]
                ))
            ),
            "100000000"
        );
    }
}
