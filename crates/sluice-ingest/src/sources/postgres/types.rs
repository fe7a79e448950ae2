//! Which PostgreSQL column types land, and as which Arrow types.
//!
//! The mapping is decided once per query from the prepared statement's columns (type and type
//! modifier), before any row is read, so that an unsupported column fails the run with its name
//! instead of surfacing as a decoding error in the middle of a table. Bronze tables are Delta tables,
//! so every Arrow type chosen here must also be a Delta type: that is why `time` and `interval` land as
//! text (Delta has no time-of-day or interval type) and why `numeric` wider than 38 digits lands as
//! text (Delta decimals stop at 38).

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, TimeUnit};
use tokio_postgres::types::{Kind, Type};

use super::read::ColBuilder;
use crate::error::IngestError;
use crate::sources::relational::{ColumnType, unsupported};

/// Precision and scale used for `numeric` columns declared without a type modifier.
pub(crate) const UNCONSTRAINED_NUMERIC: (u8, i8) = (38, 10);

/// How the values of one column are decoded (from PostgreSQL's binary format) and stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PgKind {
    /// `bool` → Boolean.
    Bool,
    /// `int2` → Int16.
    Int2,
    /// `int4` → Int32.
    Int4,
    /// `int8` → Int64.
    Int8,
    /// `float4` → Float32.
    Float4,
    /// `float8` → Float64.
    Float8,
    /// `numeric(p, s)` with `p <= 38` and `0 <= s <= p`, or unconstrained `numeric` as
    /// [`UNCONSTRAINED_NUMERIC`] → Decimal128. `exact`: values that need rounding go to quarantine.
    Decimal {
        /// Decimal digits in all.
        precision: u8,
        /// Digits after the point.
        scale: i8,
    },
    /// `numeric` whose declared precision or scale Delta cannot hold → Utf8 (exact decimal text).
    NumericText,
    /// `text`, `varchar`, `bpchar`, `name`, `citext`, enum labels → Utf8.
    Text,
    /// `json` → Utf8 holding the JSON text.
    Json,
    /// `jsonb` → Utf8 holding the JSON text.
    Jsonb,
    /// `uuid` → Utf8, canonical lowercase hyphenated text.
    Uuid,
    /// `bytea` → Binary.
    Bytea,
    /// `date` → Date32.
    Date,
    /// `timestamp` → Timestamp(µs, no time zone).
    Timestamp,
    /// `timestamptz` → Timestamp(µs, "UTC").
    TimestampTz,
    /// `time` → Utf8 (`HH:MM:SS[.ffffff]`, PostgreSQL's own text form).
    Time,
    /// `interval` → Utf8, ISO 8601 as PostgreSQL prints it with `intervalstyle = iso_8601`.
    Interval,
    /// A one-dimensional array of a scalar kind → List.
    List(Box<PgKind>),
}

impl PgKind {
    /// The kind for a column of type `ty` with type modifier `typmod` (-1: none), or `None` when the
    /// type is not supported.
    pub(crate) fn of(ty: &Type, typmod: i32) -> Option<PgKind> {
        match ty.kind() {
            Kind::Array(item) => match Self::scalar(item, typmod)? {
                // Arrays of arrays do not exist in PostgreSQL; guard anyway.
                PgKind::List(_) => None,
                k => Some(PgKind::List(Box::new(k))),
            },
            _ => Self::scalar(ty, typmod),
        }
    }

    fn scalar(ty: &Type, typmod: i32) -> Option<PgKind> {
        match ty.kind() {
            // Enum values travel as their label.
            Kind::Enum(_) => return Some(PgKind::Text),
            // A domain is stored and sent as its base type.
            Kind::Domain(base) => return Self::scalar(base, typmod),
            Kind::Simple => {}
            _ => return None,
        }
        Some(match *ty {
            Type::BOOL => PgKind::Bool,
            Type::INT2 => PgKind::Int2,
            Type::INT4 => PgKind::Int4,
            Type::INT8 => PgKind::Int8,
            Type::FLOAT4 => PgKind::Float4,
            Type::FLOAT8 => PgKind::Float8,
            Type::NUMERIC => numeric_kind(typmod),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => PgKind::Text,
            Type::JSON => PgKind::Json,
            Type::JSONB => PgKind::Jsonb,
            Type::UUID => PgKind::Uuid,
            Type::BYTEA => PgKind::Bytea,
            Type::DATE => PgKind::Date,
            Type::TIMESTAMP => PgKind::Timestamp,
            Type::TIMESTAMPTZ => PgKind::TimestampTz,
            Type::TIME => PgKind::Time,
            Type::INTERVAL => PgKind::Interval,
            // citext is an extension type (no fixed oid); its binary form is the text.
            _ if ty.name() == "citext" => PgKind::Text,
            _ => return None,
        })
    }

    /// The Arrow type the column lands as.
    pub(crate) fn arrow_type(&self) -> DataType {
        match self {
            PgKind::Bool => DataType::Boolean,
            PgKind::Int2 => DataType::Int16,
            PgKind::Int4 => DataType::Int32,
            PgKind::Int8 => DataType::Int64,
            PgKind::Float4 => DataType::Float32,
            PgKind::Float8 => DataType::Float64,
            PgKind::Decimal { precision, scale } => DataType::Decimal128(*precision, *scale),
            PgKind::NumericText
            | PgKind::Text
            | PgKind::Json
            | PgKind::Jsonb
            | PgKind::Uuid
            | PgKind::Time
            | PgKind::Interval => DataType::Utf8,
            PgKind::Bytea => DataType::Binary,
            PgKind::Date => DataType::Date32,
            PgKind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            PgKind::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            PgKind::List(item) => {
                DataType::List(Arc::new(Field::new_list_field(item.arrow_type(), true)))
            }
        }
    }

    /// Whether values of this kind are totally ordered and round-trip through text, so that the
    /// column can be an incremental cursor.
    pub(crate) fn can_be_cursor(&self) -> bool {
        matches!(
            self,
            PgKind::Int2
                | PgKind::Int4
                | PgKind::Int8
                | PgKind::Float4
                | PgKind::Float8
                | PgKind::Decimal { .. }
                | PgKind::NumericText
                | PgKind::Text
                | PgKind::Uuid
                | PgKind::Date
                | PgKind::Timestamp
                | PgKind::TimestampTz
                | PgKind::Time
        )
    }
}

/// A result column of a batch read: how it lands, and its PostgreSQL type (a cursor's watermark is
/// cast back to it).
#[derive(Debug, Clone)]
pub(crate) struct PgColumn {
    pub kind: PgKind,
    pub ty: Type,
}

impl ColumnType for PgColumn {
    type Builder = ColBuilder;

    fn arrow_type(&self) -> DataType {
        self.kind.arrow_type()
    }

    fn builder(&self) -> ColBuilder {
        ColBuilder::new(&self.kind)
    }
}

/// How a column of a prepared statement lands, or the error naming it when its type does not
/// (`table` as messages write it: `schema.table`).
pub(crate) fn kind_of(
    c: &tokio_postgres::Column,
    source: &str,
    table: &str,
) -> Result<PgKind, IngestError> {
    PgKind::of(c.type_(), c.type_modifier())
        .ok_or_else(|| unsupported("postgres", source, table, c.name(), c.type_().name()))
}

/// Maps every column of a prepared statement, or names the first whose type does not land.
pub(crate) fn columns_of(
    columns: &[tokio_postgres::Column],
    source: &str,
    table: &str,
) -> Result<Vec<(String, PgColumn)>, IngestError> {
    columns
        .iter()
        .map(|c| {
            let kind = kind_of(c, source, table)?;
            let ty = c.type_().clone();
            Ok((c.name().to_string(), PgColumn { kind, ty }))
        })
        .collect()
}

/// `numeric` with type modifier `typmod`: `((precision << 16) | (scale & 0x7ff)) + 4`, or -1.
fn numeric_kind(typmod: i32) -> PgKind {
    if typmod < 4 {
        let (precision, scale) = UNCONSTRAINED_NUMERIC;
        return PgKind::Decimal { precision, scale };
    }
    let t = typmod - 4;
    let precision = (t >> 16) & 0xffff;
    // PostgreSQL 15+ allows a scale from -1000 to 1000, stored as 11-bit two's complement.
    let scale = ((t & 0x7ff) ^ 1024) - 1024;
    match (u8::try_from(precision), i8::try_from(scale)) {
        (Ok(p), Ok(s)) if (1..=38).contains(&p) && s >= 0 && i32::from(s) <= i32::from(p) => {
            PgKind::Decimal {
                precision: p,
                scale: s,
            }
        }
        _ => PgKind::NumericText,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typmod(p: i32, s: i32) -> i32 {
        ((p << 16) | (s & 0x7ff)) + 4
    }

    #[test]
    fn numeric_typmods() {
        assert_eq!(
            numeric_kind(typmod(12, 2)),
            PgKind::Decimal {
                precision: 12,
                scale: 2
            }
        );
        assert_eq!(
            numeric_kind(-1),
            PgKind::Decimal {
                precision: 38,
                scale: 10
            }
        );
        assert_eq!(numeric_kind(typmod(39, 2)), PgKind::NumericText);
        assert_eq!(numeric_kind(typmod(5, -2)), PgKind::NumericText);
        assert_eq!(numeric_kind(typmod(2, 5)), PgKind::NumericText);
        assert_eq!(
            numeric_kind(typmod(38, 38)),
            PgKind::Decimal {
                precision: 38,
                scale: 38
            }
        );
    }

    #[test]
    fn scalar_and_array_types() {
        assert_eq!(PgKind::of(&Type::INT4, -1), Some(PgKind::Int4));
        assert_eq!(
            PgKind::of(&Type::TEXT_ARRAY, -1),
            Some(PgKind::List(Box::new(PgKind::Text)))
        );
        assert_eq!(
            PgKind::of(&Type::NUMERIC_ARRAY, typmod(10, 3)),
            Some(PgKind::List(Box::new(PgKind::Decimal {
                precision: 10,
                scale: 3
            })))
        );
        assert_eq!(PgKind::of(&Type::TS_VECTOR, -1), None);
        assert_eq!(PgKind::of(&Type::INT4_RANGE, -1), None);
        assert_eq!(PgKind::of(&Type::TIMETZ, -1), None);
        let citext = Type::new("citext".into(), 90001, Kind::Simple, "public".into());
        assert_eq!(PgKind::of(&citext, -1), Some(PgKind::Text));
        let mood = Type::new(
            "mood".into(),
            90002,
            Kind::Enum(vec!["sad".into(), "ok".into()]),
            "public".into(),
        );
        assert_eq!(PgKind::of(&mood, -1), Some(PgKind::Text));
        let money = Type::new(
            "pos".into(),
            90003,
            Kind::Domain(Type::INT8),
            "public".into(),
        );
        assert_eq!(PgKind::of(&money, -1), Some(PgKind::Int8));
    }

    #[test]
    fn arrow_types() {
        assert_eq!(
            PgKind::TimestampTz.arrow_type(),
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        assert_eq!(
            PgKind::List(Box::new(PgKind::Int8)).arrow_type(),
            DataType::List(Arc::new(Field::new("item", DataType::Int64, true)))
        );
        assert!(PgKind::TimestampTz.can_be_cursor());
        assert!(!PgKind::Jsonb.can_be_cursor());
        assert!(!PgKind::List(Box::new(PgKind::Int8)).can_be_cursor());
    }
}
