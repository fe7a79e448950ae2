//! String → typed Arrow column builders, for text formats (CSV).
//!
//! A row must land in every column or in none, so conversion has two steps: [`ColumnBuilder::parse`]
//! checks one value against the column's type and returns a small [`Cell`] without touching the
//! builder; only when every field of the row parsed does the caller [`ColumnBuilder::append`] the
//! cells. Types without a dedicated parser here go through Arrow's cast kernel: value by value for
//! the check, once per batch for the build.

use std::sync::Arc;

use arrow::array::timezone::Tz;
use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder, Float64Builder,
    Int8Builder, Int16Builder, Int32Builder, Int64Builder, LargeStringBuilder, StringArray,
    StringBuilder, StringViewBuilder, UInt8Builder, UInt16Builder, UInt32Builder, UInt64Builder,
};
use arrow::compute::kernels::cast_utils::{parse_decimal, string_to_datetime};
use arrow::compute::{CastOptions, can_cast_types, cast_with_options};
use arrow::datatypes::{DataType, Decimal128Type, TimeUnit};
use arrow::error::ArrowError;
use chrono::{NaiveDate, Utc};

/// One parsed value, waiting to be appended. Text-like values carry no data: the caller still has
/// the original text and passes it to [`ColumnBuilder::append`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Cell {
    /// An empty field.
    Null,
    /// A signed integer (already range-checked for the column's width), or a timestamp in the
    /// column's unit.
    Int(i64),
    /// An unsigned integer (range-checked).
    UInt(u64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A date as days since 1970-01-01.
    Days(i32),
    /// A decimal's unscaled value.
    Decimal(i128),
    /// Text (string columns, and values checked by the cast kernel).
    Text,
}

/// Why a value does not fit its column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParseFailure {
    /// The value is not a valid instance of the type.
    Invalid,
    /// The value is empty and the column is not nullable.
    NullNotAllowed,
}

/// Builds one column of one batch from text values.
pub(crate) struct ColumnBuilder {
    data_type: DataType,
    nullable: bool,
    kind: Kind,
}

enum Kind {
    Int8(Int8Builder),
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    UInt8(UInt8Builder),
    UInt16(UInt16Builder),
    UInt32(UInt32Builder),
    UInt64(UInt64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Boolean(BooleanBuilder),
    Utf8(StringBuilder),
    LargeUtf8(LargeStringBuilder),
    Utf8View(StringViewBuilder),
    Date32(Date32Builder),
    /// Values in `unit` since the epoch; naive texts are read in `tz` (UTC when absent or when the
    /// zone name is not one Arrow knows without `chrono-tz`).
    Timestamp {
        unit: TimeUnit,
        tz: Option<Tz>,
        values: Int64Builder,
    },
    Decimal128 {
        precision: u8,
        scale: i8,
        values: Decimal128Builder,
    },
    /// Any other type: values are checked with, and converted by, Arrow's cast kernel.
    Cast {
        castable: bool,
        values: StringBuilder,
    },
}

fn strict() -> CastOptions<'static> {
    CastOptions {
        safe: false,
        ..Default::default()
    }
}

fn internal(what: &str) -> ArrowError {
    ArrowError::InvalidArgumentError(format!("internal error: {what}"))
}

impl ColumnBuilder {
    /// A builder for a column of `data_type`.
    pub(crate) fn new(data_type: &DataType, nullable: bool) -> Self {
        let kind = match data_type {
            DataType::Int8 => Kind::Int8(Int8Builder::new()),
            DataType::Int16 => Kind::Int16(Int16Builder::new()),
            DataType::Int32 => Kind::Int32(Int32Builder::new()),
            DataType::Int64 => Kind::Int64(Int64Builder::new()),
            DataType::UInt8 => Kind::UInt8(UInt8Builder::new()),
            DataType::UInt16 => Kind::UInt16(UInt16Builder::new()),
            DataType::UInt32 => Kind::UInt32(UInt32Builder::new()),
            DataType::UInt64 => Kind::UInt64(UInt64Builder::new()),
            DataType::Float32 => Kind::Float32(Float32Builder::new()),
            DataType::Float64 => Kind::Float64(Float64Builder::new()),
            DataType::Boolean => Kind::Boolean(BooleanBuilder::new()),
            DataType::Utf8 => Kind::Utf8(StringBuilder::new()),
            DataType::LargeUtf8 => Kind::LargeUtf8(LargeStringBuilder::new()),
            DataType::Utf8View => Kind::Utf8View(StringViewBuilder::new()),
            DataType::Date32 => Kind::Date32(Date32Builder::new()),
            DataType::Timestamp(unit, tz) => Kind::Timestamp {
                unit: *unit,
                tz: tz.as_deref().and_then(|name| name.parse::<Tz>().ok()),
                values: Int64Builder::new(),
            },
            DataType::Decimal128(precision, scale) => Kind::Decimal128 {
                precision: *precision,
                scale: *scale,
                values: Decimal128Builder::new(),
            },
            other => Kind::Cast {
                castable: can_cast_types(&DataType::Utf8, other),
                values: StringBuilder::new(),
            },
        };
        ColumnBuilder {
            data_type: data_type.clone(),
            nullable,
            kind,
        }
    }

    /// Checks `value` against the column's type. An empty value (for non-text types: empty after
    /// trimming) is null.
    pub(crate) fn parse(&self, value: &str) -> Result<Cell, ParseFailure> {
        let is_text = matches!(
            self.kind,
            Kind::Utf8(_) | Kind::LargeUtf8(_) | Kind::Utf8View(_)
        );
        let v = if is_text { value } else { value.trim() };
        if v.is_empty() {
            return if self.nullable {
                Ok(Cell::Null)
            } else {
                Err(ParseFailure::NullNotAllowed)
            };
        }
        let cell = match &self.kind {
            Kind::Int8(_) => v.parse::<i8>().ok().map(|n| Cell::Int(n.into())),
            Kind::Int16(_) => v.parse::<i16>().ok().map(|n| Cell::Int(n.into())),
            Kind::Int32(_) => v.parse::<i32>().ok().map(|n| Cell::Int(n.into())),
            Kind::Int64(_) => v.parse::<i64>().ok().map(Cell::Int),
            Kind::UInt8(_) => v.parse::<u8>().ok().map(|n| Cell::UInt(n.into())),
            Kind::UInt16(_) => v.parse::<u16>().ok().map(|n| Cell::UInt(n.into())),
            Kind::UInt32(_) => v.parse::<u32>().ok().map(|n| Cell::UInt(n.into())),
            Kind::UInt64(_) => v.parse::<u64>().ok().map(Cell::UInt),
            Kind::Float32(_) => v.parse::<f32>().ok().map(|x| Cell::Float(x.into())),
            Kind::Float64(_) => v.parse::<f64>().ok().map(Cell::Float),
            Kind::Boolean(_) => parse_bool(v).map(Cell::Bool),
            Kind::Utf8(_) | Kind::LargeUtf8(_) | Kind::Utf8View(_) => Some(Cell::Text),
            Kind::Date32(_) => parse_date(v).map(Cell::Days),
            Kind::Timestamp { unit, tz, .. } => {
                parse_timestamp(v, *unit, tz.as_ref()).map(Cell::Int)
            }
            Kind::Decimal128 {
                precision, scale, ..
            } => parse_decimal_strict(v, *precision, *scale).map(Cell::Decimal),
            Kind::Cast { castable, .. } => {
                let single = StringArray::from(vec![v]);
                (*castable && cast_with_options(&single, &self.data_type, &strict()).is_ok())
                    .then_some(Cell::Text)
            }
        };
        cell.ok_or(ParseFailure::Invalid)
    }

    /// Appends a cell that [`ColumnBuilder::parse`] returned for `value`.
    pub(crate) fn append(&mut self, cell: Cell, value: &str) -> Result<(), ArrowError> {
        let mismatch = || internal("cell does not match its column builder");
        match (&mut self.kind, cell) {
            (kind, Cell::Null) => kind.append_null(),
            (Kind::Int8(b), Cell::Int(n)) => b.append_value(n.try_into().map_err(|_| mismatch())?),
            (Kind::Int16(b), Cell::Int(n)) => b.append_value(n.try_into().map_err(|_| mismatch())?),
            (Kind::Int32(b), Cell::Int(n)) => b.append_value(n.try_into().map_err(|_| mismatch())?),
            (Kind::Int64(b), Cell::Int(n)) => b.append_value(n),
            (Kind::UInt8(b), Cell::UInt(n)) => {
                b.append_value(n.try_into().map_err(|_| mismatch())?)
            }
            (Kind::UInt16(b), Cell::UInt(n)) => {
                b.append_value(n.try_into().map_err(|_| mismatch())?)
            }
            (Kind::UInt32(b), Cell::UInt(n)) => {
                b.append_value(n.try_into().map_err(|_| mismatch())?)
            }
            (Kind::UInt64(b), Cell::UInt(n)) => b.append_value(n),
            // The value came from `f32::from_str`, so narrowing it back is exact.
            (Kind::Float32(b), Cell::Float(x)) => b.append_value(x as f32),
            (Kind::Float64(b), Cell::Float(x)) => b.append_value(x),
            (Kind::Boolean(b), Cell::Bool(x)) => b.append_value(x),
            (Kind::Utf8(b), Cell::Text) => b.append_value(value),
            (Kind::LargeUtf8(b), Cell::Text) => b.append_value(value),
            (Kind::Utf8View(b), Cell::Text) => b.append_value(value),
            (Kind::Date32(b), Cell::Days(d)) => b.append_value(d),
            (Kind::Timestamp { values, .. }, Cell::Int(n)) => values.append_value(n),
            (Kind::Decimal128 { values, .. }, Cell::Decimal(n)) => values.append_value(n),
            (Kind::Cast { values, .. }, Cell::Text) => values.append_value(value.trim()),
            _ => return Err(mismatch()),
        }
        Ok(())
    }

    /// Finishes the column of the current batch; the builder is empty afterwards.
    pub(crate) fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
        Ok(match &mut self.kind {
            Kind::Int8(b) => Arc::new(b.finish()),
            Kind::Int16(b) => Arc::new(b.finish()),
            Kind::Int32(b) => Arc::new(b.finish()),
            Kind::Int64(b) => Arc::new(b.finish()),
            Kind::UInt8(b) => Arc::new(b.finish()),
            Kind::UInt16(b) => Arc::new(b.finish()),
            Kind::UInt32(b) => Arc::new(b.finish()),
            Kind::UInt64(b) => Arc::new(b.finish()),
            Kind::Float32(b) => Arc::new(b.finish()),
            Kind::Float64(b) => Arc::new(b.finish()),
            Kind::Boolean(b) => Arc::new(b.finish()),
            Kind::Utf8(b) => Arc::new(b.finish()),
            Kind::LargeUtf8(b) => Arc::new(b.finish()),
            Kind::Utf8View(b) => Arc::new(b.finish()),
            Kind::Date32(b) => Arc::new(b.finish()),
            // Int64 → Timestamp reinterprets the values in the target unit and zone.
            Kind::Timestamp { values, .. } => {
                cast_with_options(&values.finish(), &self.data_type, &strict())?
            }
            Kind::Decimal128 {
                precision,
                scale,
                values,
            } => Arc::new(
                values
                    .finish()
                    .with_precision_and_scale(*precision, *scale)?,
            ),
            Kind::Cast { values, .. } => {
                cast_with_options(&values.finish(), &self.data_type, &strict())?
            }
        })
    }
}

impl Kind {
    fn append_null(&mut self) {
        match self {
            Kind::Int8(b) => b.append_null(),
            Kind::Int16(b) => b.append_null(),
            Kind::Int32(b) => b.append_null(),
            Kind::Int64(b) => b.append_null(),
            Kind::UInt8(b) => b.append_null(),
            Kind::UInt16(b) => b.append_null(),
            Kind::UInt32(b) => b.append_null(),
            Kind::UInt64(b) => b.append_null(),
            Kind::Float32(b) => b.append_null(),
            Kind::Float64(b) => b.append_null(),
            Kind::Boolean(b) => b.append_null(),
            Kind::Utf8(b) => b.append_null(),
            Kind::LargeUtf8(b) => b.append_null(),
            Kind::Utf8View(b) => b.append_null(),
            Kind::Date32(b) => b.append_null(),
            Kind::Timestamp { values, .. } => values.append_null(),
            Kind::Decimal128 { values, .. } => values.append_null(),
            Kind::Cast { values, .. } => values.append_null(),
        }
    }
}

/// `true/false`, `t/f`, `yes/no`, `y/n`, `1/0`, case-insensitive: a column declared boolean says
/// the text is a flag, whatever spelling the producer used.
fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "1" => Some(true),
        "false" | "f" | "no" | "n" | "0" => Some(false),
        _ => None,
    }
}

/// `YYYY-MM-DD` → days since 1970-01-01.
fn parse_date(v: &str) -> Option<i32> {
    let date = NaiveDate::parse_from_str(v, "%Y-%m-%d").ok()?;
    let days = date.signed_duration_since(NaiveDate::default()).num_days();
    i32::try_from(days).ok()
}

/// An ISO 8601 / RFC 3339 timestamp (offset optional; without one it is read in `tz`, else UTC;
/// a bare date is midnight) → value in `unit` since the epoch.
fn parse_timestamp(v: &str, unit: TimeUnit, tz: Option<&Tz>) -> Option<i64> {
    let instant = match tz {
        Some(tz) => string_to_datetime(tz, v).ok()?.with_timezone(&Utc),
        None => string_to_datetime(&Utc, v).ok()?,
    };
    match unit {
        TimeUnit::Second => Some(instant.timestamp()),
        TimeUnit::Millisecond => Some(instant.timestamp_millis()),
        TimeUnit::Microsecond => Some(instant.timestamp_micros()),
        TimeUnit::Nanosecond => instant.timestamp_nanos_opt(),
    }
}

/// A decimal that fits `precision` and has no more significant fractional digits than `scale`
/// (Arrow's parser would silently drop the extra digits).
fn parse_decimal_strict(v: &str, precision: u8, scale: i8) -> Option<i128> {
    if !v.contains(['e', 'E']) {
        let fraction = v.split_once('.').map_or("", |(_, f)| f);
        let significant = fraction.trim_end_matches('0').len();
        if significant > usize::try_from(scale.max(0)).ok()? {
            return None;
        }
    }
    parse_decimal::<Decimal128Type>(v, precision, scale).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{
        Date32Type, Decimal128Type, Field, Fields, Float32Type, Int8Type, TimestampMillisecondType,
    };

    fn build(data_type: &DataType, values: &[&str]) -> (Vec<Result<Cell, ParseFailure>>, ArrayRef) {
        let mut builder = ColumnBuilder::new(data_type, true);
        let results: Vec<_> = values.iter().map(|v| builder.parse(v)).collect();
        for (r, v) in results.iter().zip(values) {
            if let Ok(cell) = r {
                builder.append(*cell, v).unwrap();
            }
        }
        (results, builder.finish().unwrap())
    }

    #[test]
    fn integers_are_range_checked() {
        let (results, array) = build(&DataType::Int8, &["127", "128", " -5 ", "", "1.0"]);
        assert_eq!(
            results,
            vec![
                Ok(Cell::Int(127)),
                Err(ParseFailure::Invalid),
                Ok(Cell::Int(-5)),
                Ok(Cell::Null),
                Err(ParseFailure::Invalid)
            ]
        );
        let array = array.as_primitive::<Int8Type>();
        assert_eq!(array.len(), 3);
        assert_eq!(array.value(1), -5);
        assert!(array.is_null(2));
        assert_eq!(
            ColumnBuilder::new(&DataType::UInt16, true).parse("-1"),
            Err(ParseFailure::Invalid)
        );
    }

    #[test]
    fn floats_bools_and_text() {
        let (_, array) = build(&DataType::Float32, &["1.5", "-2"]);
        assert_eq!(array.as_primitive::<Float32Type>().values(), &[1.5, -2.0]);
        let (results, _) = build(&DataType::Boolean, &["TRUE", "n", "0", "maybe"]);
        assert_eq!(results[0], Ok(Cell::Bool(true)));
        assert_eq!(results[1], Ok(Cell::Bool(false)));
        assert_eq!(results[3], Err(ParseFailure::Invalid));
        let (_, array) = build(&DataType::Utf8, &[" padded ", ""]);
        let strings = array.as_string::<i32>();
        assert_eq!(strings.value(0), " padded ", "text is kept as written");
        assert!(strings.is_null(1));
    }

    #[test]
    fn dates_timestamps_and_decimals() {
        let (results, array) = build(&DataType::Date32, &["1970-01-02", "2024-02-30"]);
        assert_eq!(results[1], Err(ParseFailure::Invalid));
        assert_eq!(array.as_primitive::<Date32Type>().value(0), 1);

        let millis_utc = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        let (results, array) = build(
            &millis_utc,
            &[
                "1970-01-01T00:00:01.5Z",
                "1970-01-01 02:00:00+02:00",
                "yesterday",
            ],
        );
        assert_eq!(results[2], Err(ParseFailure::Invalid));
        assert_eq!(array.data_type(), &millis_utc);
        assert_eq!(
            array.as_primitive::<TimestampMillisecondType>().values(),
            &[1500, 0]
        );

        let (_, array) = build(
            &DataType::Timestamp(TimeUnit::Millisecond, Some("+01:00".into())),
            &["1970-01-01T01:00:00"],
        );
        assert_eq!(
            array.as_primitive::<TimestampMillisecondType>().value(0),
            0,
            "a naive text is read in the column's zone"
        );

        let (results, array) = build(
            &DataType::Decimal128(5, 2),
            &["12.34", "1.234", "1.50", "99999"],
        );
        assert_eq!(
            results[1],
            Err(ParseFailure::Invalid),
            "digits beyond the scale"
        );
        assert_eq!(
            results[3],
            Err(ParseFailure::Invalid),
            "beyond the precision"
        );
        assert_eq!(
            array.as_primitive::<Decimal128Type>().values(),
            &[1234, 150]
        );
    }

    #[test]
    fn empty_in_non_nullable_column_and_cast_fallback() {
        let builder = ColumnBuilder::new(&DataType::Int64, false);
        assert_eq!(builder.parse("  "), Err(ParseFailure::NullNotAllowed));

        let (results, array) = build(&DataType::Time32(TimeUnit::Second), &["01:00:00", "25:99"]);
        assert_eq!(results, vec![Ok(Cell::Text), Err(ParseFailure::Invalid)]);
        assert_eq!(array.data_type(), &DataType::Time32(TimeUnit::Second));
        assert_eq!(array.len(), 1);

        let strukt = DataType::Struct(Fields::from(vec![Field::new("a", DataType::Int64, true)]));
        let builder = ColumnBuilder::new(&strukt, true);
        assert_eq!(builder.parse("{\"a\":1}"), Err(ParseFailure::Invalid));
        assert_eq!(builder.parse(""), Ok(Cell::Null));
    }

    #[test]
    fn mismatched_cell_is_an_error_not_a_panic() {
        let mut builder = ColumnBuilder::new(&DataType::Int8, true);
        assert!(builder.append(Cell::Int(1000), "1000").is_err());
        assert!(builder.append(Cell::Bool(true), "true").is_err());
    }
}
