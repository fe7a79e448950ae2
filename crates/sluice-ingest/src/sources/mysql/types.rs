//! Which MySQL / MariaDB column types land, and as which Arrow types.
//!
//! Decided once per query from the prepared statement's column metadata (type, flags, length,
//! decimals, character set), before any row is read, so that an unsupported column stops the table
//! with its name instead of failing mid-read. Every Arrow type chosen must also be a Delta type, and
//! Delta has no unsigned integers: an unsigned column widens to the next signed type (`bigint
//! unsigned` to decimal(20,0)), so no value is ever wrapped.

use arrow::datatypes::{DataType, TimeUnit};
use mysql_async::Column;
use mysql_async::consts::{ColumnFlags, ColumnType};

/// The character set number MySQL reports for binary strings (`binary`, `varbinary`, `blob`).
const BINARY_CHARSET: u16 = 63;

/// How the values of one column are decoded and stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MyKind {
    /// `tinyint(1)` / `bool` and `bit(1)` → Boolean (a `tinyint(1)` other than 0 or 1 is quarantined).
    Bool,
    /// `tinyint` → Int8.
    Int8,
    /// `smallint`, `tinyint unsigned`, `year` → Int16.
    Int16,
    /// `mediumint` (signed or not), `int`, `smallint unsigned` → Int32.
    Int32,
    /// `bigint`, `int unsigned`, `bit(2..=63)` → Int64.
    Int64,
    /// `bigint unsigned`, `bit(64)` → Decimal128(20, 0).
    UInt64,
    /// `float` → Float32.
    Float32,
    /// `double` → Float64.
    Float64,
    /// `decimal(p, s)` with `p <= 38` → Decimal128(p, s).
    Decimal {
        /// Digits in all.
        precision: u8,
        /// Digits after the point.
        scale: i8,
    },
    /// `decimal(p, s)` with `p > 38` → Utf8 (exact decimal text; Delta decimals stop at 38 digits).
    DecimalText,
    /// `char`, `varchar`, `text`, `enum`, `set`, `json` → Utf8.
    Text,
    /// `binary`, `varbinary`, `blob` → Binary.
    Bytes,
    /// `date` → Date32.
    Date,
    /// `datetime` → Timestamp(µs, no time zone).
    DateTime,
    /// `timestamp` → Timestamp(µs, "UTC") (the session runs with `time_zone = '+00:00'`).
    Timestamp,
    /// `time` → Utf8 `[-]HH:MM:SS[.ffffff]` (MySQL times span ±838 hours; Delta has no time type).
    Time,
}

impl MyKind {
    /// The kind of `column`, or the column's type name when it is not supported.
    pub(crate) fn of(column: &Column) -> Result<MyKind, String> {
        let flags = column.flags();
        let unsigned = flags.contains(ColumnFlags::UNSIGNED_FLAG);
        let binary = column.character_set() == BINARY_CHARSET;
        Ok(match column.column_type() {
            ColumnType::MYSQL_TYPE_TINY if column.column_length() == 1 => MyKind::Bool,
            ColumnType::MYSQL_TYPE_TINY if unsigned => MyKind::Int16,
            ColumnType::MYSQL_TYPE_TINY => MyKind::Int8,
            ColumnType::MYSQL_TYPE_SHORT if unsigned => MyKind::Int32,
            ColumnType::MYSQL_TYPE_SHORT | ColumnType::MYSQL_TYPE_YEAR => MyKind::Int16,
            ColumnType::MYSQL_TYPE_INT24 => MyKind::Int32,
            ColumnType::MYSQL_TYPE_LONG if unsigned => MyKind::Int64,
            ColumnType::MYSQL_TYPE_LONG => MyKind::Int32,
            ColumnType::MYSQL_TYPE_LONGLONG if unsigned => MyKind::UInt64,
            ColumnType::MYSQL_TYPE_LONGLONG => MyKind::Int64,
            ColumnType::MYSQL_TYPE_BIT => match column.column_length() {
                1 => MyKind::Bool,
                2..=63 => MyKind::Int64,
                _ => MyKind::UInt64,
            },
            ColumnType::MYSQL_TYPE_FLOAT => MyKind::Float32,
            ColumnType::MYSQL_TYPE_DOUBLE => MyKind::Float64,
            ColumnType::MYSQL_TYPE_DECIMAL | ColumnType::MYSQL_TYPE_NEWDECIMAL => {
                decimal_kind(column.column_length(), column.decimals(), unsigned)
            }
            ColumnType::MYSQL_TYPE_VARCHAR
            | ColumnType::MYSQL_TYPE_VAR_STRING
            | ColumnType::MYSQL_TYPE_STRING
            | ColumnType::MYSQL_TYPE_TINY_BLOB
            | ColumnType::MYSQL_TYPE_BLOB
            | ColumnType::MYSQL_TYPE_MEDIUM_BLOB
            | ColumnType::MYSQL_TYPE_LONG_BLOB
                if binary =>
            {
                MyKind::Bytes
            }
            ColumnType::MYSQL_TYPE_VARCHAR
            | ColumnType::MYSQL_TYPE_VAR_STRING
            | ColumnType::MYSQL_TYPE_STRING
            | ColumnType::MYSQL_TYPE_TINY_BLOB
            | ColumnType::MYSQL_TYPE_BLOB
            | ColumnType::MYSQL_TYPE_MEDIUM_BLOB
            | ColumnType::MYSQL_TYPE_LONG_BLOB
            | ColumnType::MYSQL_TYPE_ENUM
            | ColumnType::MYSQL_TYPE_SET
            | ColumnType::MYSQL_TYPE_JSON
            // `SELECT NULL AS x` in a query: a column that is always NULL.
            | ColumnType::MYSQL_TYPE_NULL => MyKind::Text,
            ColumnType::MYSQL_TYPE_DATE | ColumnType::MYSQL_TYPE_NEWDATE => MyKind::Date,
            ColumnType::MYSQL_TYPE_DATETIME | ColumnType::MYSQL_TYPE_DATETIME2 => MyKind::DateTime,
            ColumnType::MYSQL_TYPE_TIMESTAMP | ColumnType::MYSQL_TYPE_TIMESTAMP2 => {
                MyKind::Timestamp
            }
            ColumnType::MYSQL_TYPE_TIME | ColumnType::MYSQL_TYPE_TIME2 => MyKind::Time,
            other => return Err(type_name(other).to_string()),
        })
    }

    /// The Arrow type the column lands as.
    pub(crate) fn arrow_type(self) -> DataType {
        match self {
            MyKind::Bool => DataType::Boolean,
            MyKind::Int8 => DataType::Int8,
            MyKind::Int16 => DataType::Int16,
            MyKind::Int32 => DataType::Int32,
            MyKind::Int64 => DataType::Int64,
            MyKind::UInt64 => DataType::Decimal128(20, 0),
            MyKind::Float32 => DataType::Float32,
            MyKind::Float64 => DataType::Float64,
            MyKind::Decimal { precision, scale } => DataType::Decimal128(precision, scale),
            MyKind::DecimalText | MyKind::Text | MyKind::Time => DataType::Utf8,
            MyKind::Bytes => DataType::Binary,
            MyKind::Date => DataType::Date32,
            MyKind::DateTime => DataType::Timestamp(TimeUnit::Microsecond, None),
            MyKind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        }
    }

    /// Whether the column can be an incremental cursor (totally ordered, round-trips through a
    /// JSON watermark).
    pub(crate) fn can_be_cursor(self) -> bool {
        !matches!(self, MyKind::Bool | MyKind::Bytes)
    }

    /// The comparison `column > ?` for a watermark of this kind; decimals and temporal values are
    /// cast so that MySQL compares them exactly rather than as doubles or strings.
    pub(crate) fn after_watermark(self, quoted_column: &str) -> String {
        let param = match self {
            MyKind::Decimal { .. } | MyKind::DecimalText => "CAST(? AS DECIMAL(65, 30))",
            MyKind::Date => "CAST(? AS DATE)",
            MyKind::DateTime | MyKind::Timestamp => "CAST(? AS DATETIME(6))",
            MyKind::Time => "CAST(? AS TIME(6))",
            _ => "?",
        };
        format!("{quoted_column} > {param}")
    }
}

/// `decimal` with the column length and decimals MySQL reports: the length counts the digits, a
/// point when there are decimals, and a sign unless the column is unsigned.
fn decimal_kind(length: u32, decimals: u8, unsigned: bool) -> MyKind {
    let precision = i64::from(length) - i64::from(decimals > 0) - i64::from(!unsigned);
    match (u8::try_from(precision), i8::try_from(decimals)) {
        (Ok(p), Ok(s)) if (1..=38).contains(&p) && i16::from(s) <= i16::from(p) => {
            MyKind::Decimal {
                precision: p,
                scale: s,
            }
        }
        _ => MyKind::DecimalText,
    }
}

/// The SQL name of a column type, for error messages.
fn type_name(t: ColumnType) -> &'static str {
    match t {
        ColumnType::MYSQL_TYPE_GEOMETRY => "geometry",
        ColumnType::MYSQL_TYPE_VECTOR => "vector",
        ColumnType::MYSQL_TYPE_TYPED_ARRAY => "typed array",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(t: ColumnType, length: u32, flags: ColumnFlags, charset: u16) -> Column {
        Column::new(t)
            .with_column_length(length)
            .with_flags(flags)
            .with_character_set(charset)
    }

    #[test]
    fn integers_widen_when_unsigned() {
        let none = ColumnFlags::empty();
        let u = ColumnFlags::UNSIGNED_FLAG;
        let kind = |t, len, f| MyKind::of(&col(t, len, f, 63)).unwrap();
        assert_eq!(kind(ColumnType::MYSQL_TYPE_TINY, 1, none), MyKind::Bool);
        assert_eq!(kind(ColumnType::MYSQL_TYPE_TINY, 4, none), MyKind::Int8);
        assert_eq!(kind(ColumnType::MYSQL_TYPE_TINY, 3, u), MyKind::Int16);
        assert_eq!(kind(ColumnType::MYSQL_TYPE_SHORT, 5, u), MyKind::Int32);
        assert_eq!(kind(ColumnType::MYSQL_TYPE_LONG, 10, u), MyKind::Int64);
        assert_eq!(kind(ColumnType::MYSQL_TYPE_LONGLONG, 20, u), MyKind::UInt64);
        assert_eq!(kind(ColumnType::MYSQL_TYPE_BIT, 1, u), MyKind::Bool);
        assert_eq!(kind(ColumnType::MYSQL_TYPE_BIT, 12, u), MyKind::Int64);
        assert_eq!(kind(ColumnType::MYSQL_TYPE_BIT, 64, u), MyKind::UInt64);
        assert_eq!(MyKind::UInt64.arrow_type(), DataType::Decimal128(20, 0));
    }

    #[test]
    fn decimals_strings_and_unsupported() {
        assert_eq!(
            decimal_kind(14, 3, false),
            MyKind::Decimal {
                precision: 12,
                scale: 3
            }
        );
        assert_eq!(
            decimal_kind(10, 0, true),
            MyKind::Decimal {
                precision: 10,
                scale: 0
            }
        );
        assert_eq!(decimal_kind(67, 30, false), MyKind::DecimalText);
        let blob = col(
            ColumnType::MYSQL_TYPE_BLOB,
            65535,
            ColumnFlags::BLOB_FLAG,
            63,
        );
        assert_eq!(MyKind::of(&blob).unwrap(), MyKind::Bytes);
        let text = col(
            ColumnType::MYSQL_TYPE_BLOB,
            65535,
            ColumnFlags::BLOB_FLAG,
            224,
        );
        assert_eq!(MyKind::of(&text).unwrap(), MyKind::Text);
        let geo = col(ColumnType::MYSQL_TYPE_GEOMETRY, 0, ColumnFlags::empty(), 63);
        assert_eq!(MyKind::of(&geo).unwrap_err(), "geometry");
        assert_eq!(
            MyKind::Timestamp.after_watermark("`ts`"),
            "`ts` > CAST(? AS DATETIME(6))"
        );
        assert!(!MyKind::Bytes.can_be_cursor());
    }
}
