//! Schemas of landing files: inference of text columns, merging a file's schema into a table's
//! (schema evolution), parsing type names from source configs, and conforming batches to a schema.
//!
//! Merging is what lets a table evolve without rewriting it: the table's columns keep their order
//! and type, new columns (and new fields inside struct columns) are appended as nullable, and every
//! batch is then conformed to the merged schema so one file lands in one write.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, LargeListArray, ListArray, StructArray, new_null_array,
};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, FieldRef, Fields, Schema, TimeUnit};
use arrow::error::ArrowError;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use super::FormatError;
use super::temporal::TemporalInference;

/// Union of two schemas: `existing` fields first, in their order and with their type, then the
/// fields only `incoming` has (made nullable). Struct columns present in both are merged the same
/// way, recursively (also through list elements), so a new nested field evolves the struct.
pub fn merge_schemas(existing: &Schema, incoming: &Schema) -> Schema {
    Schema::new_with_metadata(
        merge_fields(existing.fields(), incoming.fields()),
        existing.metadata().clone(),
    )
}

fn merge_fields(existing: &Fields, incoming: &Fields) -> Fields {
    // Name maps, not `Fields::find` (a linear scan): wide files would make this quadratic.
    let incoming_by_name = by_name(incoming);
    let existing_by_name = by_name(existing);
    let mut out: Vec<FieldRef> = existing
        .iter()
        .map(|field| match incoming_by_name.get(field.name().as_str()) {
            Some(&i) => {
                let other = &incoming[i];
                let merged = merge_types(field.data_type(), other.data_type());
                if &merged == field.data_type() {
                    Arc::clone(field)
                } else {
                    Arc::new(field.as_ref().clone().with_data_type(merged))
                }
            }
            None => Arc::clone(field),
        })
        .collect();
    for field in incoming.iter() {
        if !existing_by_name.contains_key(field.name().as_str()) {
            out.push(Arc::new(field.as_ref().clone().with_nullable(true)));
        }
    }
    Fields::from(out)
}

/// Each field's position by name (the first one when a name repeats, like `Fields::find`).
/// The two type sources a reader consults per column, as hash lookups (a linear search per column
/// is quadratic in a wide file): the target table's fields by name, and the types declared in the
/// source config (the last declaration of a name wins).
pub(crate) fn type_lookups<'a>(
    existing: Option<&'a Schema>,
    declared: &'a [(String, DataType)],
) -> (HashMap<&'a str, usize>, HashMap<&'a str, &'a DataType>) {
    let table = existing.map(|s| by_name(s.fields())).unwrap_or_default();
    let declared = declared
        .iter()
        .rev()
        .map(|(n, t)| (n.as_str(), t))
        .collect();
    (table, declared)
}

pub(crate) fn by_name(fields: &Fields) -> HashMap<&str, usize> {
    let mut map = HashMap::with_capacity(fields.len());
    for (i, f) in fields.iter().enumerate() {
        map.entry(f.name().as_str()).or_insert(i);
    }
    map
}

/// The type of a column after merging: the existing type, with struct fields unioned recursively.
pub(crate) fn merge_types(existing: &DataType, incoming: &DataType) -> DataType {
    match (existing, incoming) {
        (DataType::Struct(e), DataType::Struct(i)) => DataType::Struct(merge_fields(e, i)),
        (DataType::List(e), DataType::List(i)) => DataType::List(merge_element(e, i)),
        (DataType::LargeList(e), DataType::LargeList(i)) => {
            DataType::LargeList(merge_element(e, i))
        }
        _ => existing.clone(),
    }
}

fn merge_element(existing: &FieldRef, incoming: &FieldRef) -> FieldRef {
    let merged = merge_types(existing.data_type(), incoming.data_type());
    Arc::new(existing.as_ref().clone().with_data_type(merged))
}

/// The type `timestamp` means in a source config, and the type inferred for ISO timestamps with
/// an offset: microseconds since the epoch, UTC.
pub(crate) fn utc_micros() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Parses a column type name used in source YAML (case-insensitive):
/// `int`/`bigint`/`integer` → Int64, `double`/`float`/`real` → Float64, `string`/`text`/`varchar`
/// → Utf8, `bool`/`boolean` → Boolean, `date` → Date32, `timestamp` → Timestamp(µs, "UTC"),
/// `decimal(p,s)` → Decimal128(p, s) with 1 ≤ p ≤ 38 and 0 ≤ s ≤ p (`decimal(p)` means scale 0).
///
/// ```
/// use arrow::datatypes::DataType;
/// use sluice_ingest::formats::parse_type_name;
/// assert_eq!(parse_type_name("Decimal(12, 2)").unwrap(), DataType::Decimal128(12, 2));
/// assert!(parse_type_name("money").is_err());
/// ```
pub fn parse_type_name(s: &str) -> Result<DataType, FormatError> {
    let name = s.trim().to_ascii_lowercase();
    let unknown = |reason: &str| FormatError::UnknownType {
        name: s.to_string(),
        reason: reason.to_string(),
    };
    Ok(match name.as_str() {
        "int" | "bigint" | "integer" => DataType::Int64,
        "double" | "float" | "real" => DataType::Float64,
        "string" | "text" | "varchar" => DataType::Utf8,
        "bool" | "boolean" => DataType::Boolean,
        "date" => DataType::Date32,
        "timestamp" => utc_micros(),
        _ => {
            let Some(args) = name
                .strip_prefix("decimal")
                .map(str::trim_start)
                .and_then(|rest| rest.strip_prefix('('))
                .and_then(|rest| rest.strip_suffix(')'))
            else {
                return Err(unknown(""));
            };
            let mut parts = args.split(',').map(str::trim);
            let precision: u8 = parts
                .next()
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| unknown("decimal precision must be a number from 1 to 38"))?;
            let scale: i8 = match parts.next() {
                None => 0,
                Some(p) => p.parse().map_err(|_| {
                    unknown("decimal scale must be a number from 0 to the precision")
                })?,
            };
            if parts.next().is_some() {
                return Err(unknown("decimal takes at most two arguments: decimal(p,s)"));
            }
            if !(1..=38).contains(&precision) {
                return Err(unknown("decimal precision must be from 1 to 38"));
            }
            if scale < 0 || scale as u8 > precision {
                return Err(unknown("decimal scale must be from 0 to the precision"));
            }
            DataType::Decimal128(precision, scale)
        }
    })
}

/// Replaces the `Null` type (a column or nested field that only ever held `null`) with Utf8:
/// tables cannot store a column of type Null, and text is what a later value can always become.
pub(crate) fn replace_null_types(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Null => DataType::Utf8,
        DataType::Struct(fields) => DataType::Struct(
            fields
                .iter()
                .map(|f| {
                    Arc::new(
                        f.as_ref()
                            .clone()
                            .with_data_type(replace_null_types(f.data_type())),
                    )
                })
                .collect(),
        ),
        DataType::List(e) => DataType::List(Arc::new(
            e.as_ref()
                .clone()
                .with_data_type(replace_null_types(e.data_type())),
        )),
        DataType::LargeList(e) => DataType::LargeList(Arc::new(
            e.as_ref()
                .clone()
                .with_data_type(replace_null_types(e.data_type())),
        )),
        other => other.clone(),
    }
}

/// Fails when the table has a non-nullable column that the file does not have at all: every row
/// would violate it, so this is a whole-file problem.
pub(crate) fn check_required_columns(
    path: &std::path::Path,
    existing: Option<&Schema>,
    file_columns: &[&str],
) -> Result<(), FormatError> {
    let Some(existing) = existing else {
        return Ok(());
    };
    let file_columns: HashSet<&str> = file_columns.iter().copied().collect();
    match existing
        .fields()
        .iter()
        .find(|f| !f.is_nullable() && !file_columns.contains(f.name().as_str()))
    {
        Some(field) => Err(FormatError::MissingRequiredColumn {
            path: path.to_path_buf(),
            column: field.name().clone(),
        }),
        None => Ok(()),
    }
}

/// Reshapes `batch` to exactly `target`: columns in target order, absent columns as nulls, struct
/// and list columns rebuilt with the target's fields, other type differences cast (strictly: a
/// value that does not convert is an error, never a silent null).
pub(crate) fn conform_batch(
    batch: &RecordBatch,
    target: &Arc<Schema>,
) -> Result<RecordBatch, ArrowError> {
    if batch.schema_ref() == target {
        return Ok(batch.clone());
    }
    let source = batch.schema();
    let source_index = by_name(source.fields());
    let columns = target
        .fields()
        .iter()
        .map(|field| match source_index.get(field.name().as_str()) {
            Some(&i) => conform_array(batch.column(i), field.data_type()),
            None => Ok(new_null_array(field.data_type(), batch.num_rows())),
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new_with_options(
        Arc::clone(target),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
}

/// Converts one array to `target`, matching struct children by name.
pub(crate) fn conform_array(array: &ArrayRef, target: &DataType) -> Result<ArrayRef, ArrowError> {
    if array.data_type() == target {
        return Ok(Arc::clone(array));
    }
    match (array.data_type(), target) {
        (DataType::Struct(_), DataType::Struct(fields)) => {
            let source = array.as_struct();
            let source_index = by_name(source.fields());
            let children = fields
                .iter()
                .map(|f| match source_index.get(f.name().as_str()) {
                    Some(&i) => conform_array(source.column(i), f.data_type()),
                    None => Ok(new_null_array(f.data_type(), source.len())),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Arc::new(StructArray::try_new_with_length(
                fields.clone(),
                children,
                source.nulls().cloned(),
                source.len(),
            )?))
        }
        (DataType::List(_), DataType::List(element)) => {
            let list = array.as_list::<i32>();
            let values = conform_array(list.values(), element.data_type())?;
            Ok(Arc::new(ListArray::try_new(
                Arc::clone(element),
                list.offsets().clone(),
                values,
                list.nulls().cloned(),
            )?))
        }
        (DataType::LargeList(_), DataType::LargeList(element)) => {
            let list = array.as_list::<i64>();
            let values = conform_array(list.values(), element.data_type())?;
            Ok(Arc::new(LargeListArray::try_new(
                Arc::clone(element),
                list.offsets().clone(),
                values,
                list.nulls().cloned(),
            )?))
        }
        _ => cast_with_options(
            array,
            target,
            &CastOptions {
                safe: false,
                ..Default::default()
            },
        ),
    }
}

/// Infers the type of one text (CSV) column from its non-empty values, as DuckDB's sniffer does:
/// Int64 if all parse as i64, else Float64 if all parse as f64, else Boolean if all are true/false,
/// else Date32 if all are dates (`2025-07-19`), else a timestamp if all are ISO 8601 date-times
/// (`2025-07-19 20:25:47`, `2025-07-19T20:25:47.123`; see [`TemporalInference`] for which), else
/// Utf8. A column with no value is Utf8.
#[derive(Debug, Clone)]
pub(crate) struct TextInference {
    int: bool,
    float: bool,
    boolean: bool,
    temporal: TemporalInference,
    seen: bool,
}

impl Default for TextInference {
    fn default() -> Self {
        TextInference {
            int: true,
            float: true,
            boolean: true,
            temporal: TemporalInference::default(),
            seen: false,
        }
    }
}

impl TextInference {
    /// Takes one value into account.
    pub(crate) fn observe(&mut self, value: &str) {
        let v = value.trim();
        if v.is_empty() {
            return;
        }
        self.seen = true;
        if self.int && v.parse::<i64>().is_err() {
            self.int = false;
        }
        // `f64::from_str` also takes "inf" and "NaN"; a column of words is not numeric.
        if self.float && !(v.bytes().any(|b| b.is_ascii_digit()) && v.parse::<f64>().is_ok()) {
            self.float = false;
        }
        if self.boolean && !(v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false")) {
            self.boolean = false;
        }
        if !self.temporal.is_settled() {
            self.temporal.observe(v);
        }
    }

    /// Whether further values can still change the answer.
    pub(crate) fn is_settled(&self) -> bool {
        self.seen && !(self.int || self.float || self.boolean) && self.temporal.is_settled()
    }

    /// The inferred type.
    pub(crate) fn data_type(&self) -> DataType {
        if !self.seen {
            DataType::Utf8
        } else if self.int {
            DataType::Int64
        } else if self.float {
            DataType::Float64
        } else if self.boolean {
            DataType::Boolean
        } else {
            self.temporal.data_type().unwrap_or(DataType::Utf8)
        }
    }
}

#[cfg(test)]
mod tests;
