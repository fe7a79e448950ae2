//! `materialized: seed` — a CSV file of the project published as a table. Column types are inferred
//! (integers, decimals, booleans, dates, timestamps, text); `column_types: {col: type}` overrides them
//! with SQL type names (`varchar`, `integer`, `bigint`, `numeric(10,2)`, `date`, `timestamp`, …).

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::sync::Arc;

use arrow::csv::ReaderBuilder;
use arrow::csv::reader::Format;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use serde_json::Value;
use sluice_lake::WriteMode;

use super::{Materialization, ModelRun, Published, Staged, publish_rows};
use crate::error::{Result, TransformError};
use crate::relation::staged_relation;

/// Loads a CSV seed.
pub struct SeedMaterialization;

fn seed_error(run: &ModelRun<'_>, message: String) -> TransformError {
    TransformError::Config {
        path: run.model.path.clone(),
        field: "seed".into(),
        message,
    }
}

/// The Arrow type of a SQL type name, as written in dbt's `column_types`.
pub fn sql_type(name: &str) -> Option<DataType> {
    let lower = name.trim().to_ascii_lowercase();
    let (base, args) = match lower.split_once('(') {
        Some((b, a)) => (b.trim(), Some(a.trim_end_matches(')'))),
        None => (lower.as_str(), None),
    };
    Some(match base {
        "varchar" | "text" | "string" | "char" | "character varying" | "character" | "nvarchar" => {
            DataType::Utf8
        }
        "smallint" | "int2" => DataType::Int16,
        "int" | "integer" | "int4" => DataType::Int32,
        "bigint" | "int8" | "long" => DataType::Int64,
        "real" | "float4" => DataType::Float32,
        "float" | "float8" | "double" | "double precision" => DataType::Float64,
        "bool" | "boolean" => DataType::Boolean,
        "date" => DataType::Date32,
        "timestamp" | "datetime" | "timestamp_ntz" | "timestamp without time zone" => {
            DataType::Timestamp(TimeUnit::Microsecond, None)
        }
        "timestamptz" | "timestamp_tz" | "timestamp with time zone" => {
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        }
        "numeric" | "decimal" | "number" => {
            let (p, s) = match args {
                Some(a) => {
                    let mut parts = a.split(',').map(|p| p.trim().parse::<i64>());
                    let p = parts.next().and_then(|r| r.ok()).unwrap_or(38);
                    let s = parts.next().and_then(|r| r.ok()).unwrap_or(0);
                    (p, s)
                }
                None => (38, 9),
            };
            DataType::Decimal128(u8::try_from(p).ok()?, i8::try_from(s).ok()?)
        }
        _ => return None,
    })
}

impl SeedMaterialization {
    fn read(&self, run: &ModelRun<'_>) -> Result<(SchemaRef, Vec<arrow::array::RecordBatch>)> {
        let path = &run.model.path;
        let cfg = &run.model.config.raw;
        let delimiter = cfg
            .get("delimiter")
            .and_then(Value::as_str)
            .and_then(|d| d.bytes().next())
            .unwrap_or(b',');
        let mut file =
            File::open(path).map_err(|e| seed_error(run, format!("cannot read: {e}")))?;
        let format = Format::default()
            .with_header(true)
            .with_delimiter(delimiter);
        let (inferred, _) = format
            .infer_schema(&mut file, None)
            .map_err(|e| seed_error(run, format!("cannot infer the CSV's columns: {e}")))?;
        let overrides = match cfg.get("column_types") {
            Some(Value::Object(m)) => m.clone(),
            None | Some(Value::Null) => serde_json::Map::new(),
            Some(other) => {
                return Err(seed_error(
                    run,
                    format!("`column_types` must map column names to types, found {other}"),
                ));
            }
        };
        for name in overrides.keys() {
            if inferred.field_with_name(name).is_err() {
                return Err(seed_error(
                    run,
                    format!("`column_types` names `{name}`, which is not a column of the CSV"),
                ));
            }
        }
        let fields: Vec<Field> = inferred
            .fields()
            .iter()
            .map(|f| {
                let dt = match overrides.get(f.name()) {
                    Some(Value::String(t)) => sql_type(t).ok_or_else(|| {
                        seed_error(
                            run,
                            format!("`column_types.{}`: unknown type `{t}`", f.name()),
                        )
                    })?,
                    Some(other) => {
                        return Err(seed_error(
                            run,
                            format!(
                                "`column_types.{}` must be a type name, found {other}",
                                f.name()
                            ),
                        ));
                    }
                    // An all-empty column is inferred as Null; keep it as text.
                    None if f.data_type() == &DataType::Null => DataType::Utf8,
                    // Delta stores timestamps in microseconds.
                    None => match f.data_type() {
                        DataType::Timestamp(_, tz) => {
                            DataType::Timestamp(TimeUnit::Microsecond, tz.clone())
                        }
                        other => other.clone(),
                    },
                };
                Ok(Field::new(f.name(), dt, true))
            })
            .collect::<Result<_>>()?;
        let schema: SchemaRef = Arc::new(Schema::new(fields));
        file.seek(SeekFrom::Start(0))
            .map_err(|e| seed_error(run, format!("cannot read: {e}")))?;
        let reader = ReaderBuilder::new(schema.clone())
            .with_format(format)
            .build(file)
            .map_err(|e| seed_error(run, e.to_string()))?;
        let batches = reader
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| seed_error(run, format!("a value does not fit its column: {e}")))?;
        Ok((schema, batches))
    }
}

#[async_trait]
impl Materialization for SeedMaterialization {
    fn name(&self) -> &'static str {
        "seed"
    }

    async fn stage(&self, run: &ModelRun<'_>) -> Result<Staged> {
        let (schema, batches) = self.read(run)?;
        let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
        let relation = staged_relation(&run.model.name);
        run.engine
            .register_batches(&relation, schema.clone(), batches.clone())?;
        Ok(Staged {
            relation,
            sql: String::new(),
            rows,
            schema,
            batches,
            is_incremental: false,
            files: None,
        })
    }

    async fn publish(&self, run: &ModelRun<'_>, staged: Staged) -> Result<Published> {
        publish_rows(run, staged, WriteMode::Overwrite).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_sql_types() {
        assert_eq!(sql_type("varchar(32)"), Some(DataType::Utf8));
        assert_eq!(sql_type("BIGINT"), Some(DataType::Int64));
        assert_eq!(
            sql_type("numeric(10, 2)"),
            Some(DataType::Decimal128(10, 2))
        );
        assert_eq!(
            sql_type("timestamp"),
            Some(DataType::Timestamp(TimeUnit::Microsecond, None))
        );
        assert_eq!(sql_type("geography"), None);
    }
}
