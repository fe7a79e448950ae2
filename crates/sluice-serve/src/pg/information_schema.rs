//! `information_schema` as PostgreSQL shapes it, over the served lake schemas.
//!
//! DataFusion's own `information_schema` names types the engine's way (`Int64`, `Utf8View`,
//! `Timestamp(µs, "UTC")`) and lacks the views tools join (`table_constraints`,
//! `key_column_usage`). Grafana shows `columns.data_type` in its query builder, and Metabase's sync
//! reads `udt_name`, `is_identity` and the key views; so the wire session turns DataFusion's off and
//! serves this one: the columns PostgreSQL 16 has, PostgreSQL's type names (the same mapping as
//! `pg_attribute` and the result encoding), and empty key views (the lake has no constraints).
//!
//! Each table is built when a query plans it, so it lists what the lake holds at that moment.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use sluice_engine::catalog::{CatalogProvider, MemTable, SchemaProvider, TableProvider, TableType};
use sluice_engine::{DataFusionError, DfResult};

use super::catalog::SERVED_SCHEMAS;

/// The schema's name.
pub const NAME: &str = "information_schema";

const TABLES: [&str; 8] = [
    "schemata",
    "tables",
    "views",
    "columns",
    "table_constraints",
    "key_column_usage",
    "referential_constraints",
    "routines",
];

/// PostgreSQL's `information_schema` over the published schemas of `lake`, in database `database`.
#[derive(Debug)]
pub struct PgInformationSchema {
    lake: Arc<dyn CatalogProvider>,
    database: String,
}

impl PgInformationSchema {
    /// Serves `lake`'s published schemas as database `database`.
    pub fn new(lake: Arc<dyn CatalogProvider>, database: &str) -> Self {
        Self {
            lake,
            database: database.to_string(),
        }
    }

    fn schemas(&self) -> Vec<String> {
        SERVED_SCHEMAS
            .iter()
            .filter(|s| self.lake.schema(s).is_some())
            .map(|s| s.to_string())
            .collect()
    }

    /// (schema, table, kind, Arrow schema) of every served table and view.
    async fn relations(&self) -> DfResult<Vec<(String, String, TableType, SchemaRef)>> {
        let mut out = Vec::new();
        for schema in self.schemas() {
            let Some(provider) = self.lake.schema(&schema) else {
                continue;
            };
            let mut names = provider.table_names();
            names.sort();
            for name in names {
                if let Some(table) = provider.table(&name).await? {
                    out.push((schema.clone(), name, table.table_type(), table.schema()));
                }
            }
        }
        Ok(out)
    }

    async fn build(&self, name: &str) -> DfResult<Option<RecordBatch>> {
        let db = self.database.as_str();
        let batch = match name {
            "schemata" => {
                let mut names = self.schemas();
                names.extend(["information_schema".to_string(), "pg_catalog".to_string()]);
                let n = names.len();
                text_batch(&[
                    ("catalog_name", vec![Some(db.to_string()); n]),
                    ("schema_name", names.into_iter().map(Some).collect()),
                    ("schema_owner", vec![Some("sluice".to_string()); n]),
                    ("default_character_set_catalog", vec![None; n]),
                    ("default_character_set_schema", vec![None; n]),
                    ("default_character_set_name", vec![None; n]),
                    ("sql_path", vec![None; n]),
                ])?
            }
            "tables" => {
                let rels = self.relations().await?;
                let n = rels.len();
                let kind = |t: &TableType| match t {
                    TableType::View => "VIEW",
                    _ => "BASE TABLE",
                };
                text_batch(&[
                    ("table_catalog", vec![Some(db.to_string()); n]),
                    (
                        "table_schema",
                        rels.iter().map(|r| Some(r.0.clone())).collect(),
                    ),
                    (
                        "table_name",
                        rels.iter().map(|r| Some(r.1.clone())).collect(),
                    ),
                    (
                        "table_type",
                        rels.iter().map(|r| Some(kind(&r.2).into())).collect(),
                    ),
                    ("self_referencing_column_name", vec![None; n]),
                    ("reference_generation", vec![None; n]),
                    ("user_defined_type_catalog", vec![None; n]),
                    ("user_defined_type_schema", vec![None; n]),
                    ("user_defined_type_name", vec![None; n]),
                    ("is_insertable_into", vec![Some("NO".to_string()); n]),
                    ("is_typed", vec![Some("NO".to_string()); n]),
                    ("commit_action", vec![None; n]),
                ])?
            }
            "views" => {
                let views: Vec<_> = self
                    .relations()
                    .await?
                    .into_iter()
                    .filter(|r| r.2 == TableType::View)
                    .collect();
                let n = views.len();
                let no = || vec![Some("NO".to_string()); n];
                text_batch(&[
                    ("table_catalog", vec![Some(db.to_string()); n]),
                    (
                        "table_schema",
                        views.iter().map(|r| Some(r.0.clone())).collect(),
                    ),
                    (
                        "table_name",
                        views.iter().map(|r| Some(r.1.clone())).collect(),
                    ),
                    ("view_definition", vec![None; n]),
                    ("check_option", vec![Some("NONE".to_string()); n]),
                    ("is_updatable", no()),
                    ("is_insertable_into", no()),
                    ("is_trigger_updatable", no()),
                    ("is_trigger_deletable", no()),
                    ("is_trigger_insertable_into", no()),
                ])?
            }
            "columns" => columns(db, &self.relations().await?)?,
            "table_constraints" => empty_text_batch(&[
                "constraint_catalog",
                "constraint_schema",
                "constraint_name",
                "table_catalog",
                "table_schema",
                "table_name",
                "constraint_type",
                "is_deferrable",
                "initially_deferred",
                "enforced",
                "nulls_distinct",
            ])?,
            "key_column_usage" => empty_text_batch(&[
                "constraint_catalog",
                "constraint_schema",
                "constraint_name",
                "table_catalog",
                "table_schema",
                "table_name",
                "column_name",
                "ordinal_position",
                "position_in_unique_constraint",
            ])?,
            "referential_constraints" => empty_text_batch(&[
                "constraint_catalog",
                "constraint_schema",
                "constraint_name",
                "unique_constraint_catalog",
                "unique_constraint_schema",
                "unique_constraint_name",
                "match_option",
                "update_rule",
                "delete_rule",
            ])?,
            "routines" => empty_text_batch(&[
                "specific_catalog",
                "specific_schema",
                "specific_name",
                "routine_catalog",
                "routine_schema",
                "routine_name",
                "routine_type",
                "data_type",
                "type_udt_name",
            ])?,
            _ => return Ok(None),
        };
        Ok(Some(batch))
    }
}

#[async_trait]
impl SchemaProvider for PgInformationSchema {
    fn table_names(&self) -> Vec<String> {
        TABLES.iter().map(|t| t.to_string()).collect()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let Some(batch) = self.build(&name.to_ascii_lowercase()).await? else {
            return Ok(None);
        };
        let table = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
        Ok(Some(Arc::new(table)))
    }

    async fn table_type(&self, name: &str) -> DfResult<Option<TableType>> {
        Ok(self.table_exist(name).then_some(TableType::View))
    }

    fn table_exist(&self, name: &str) -> bool {
        TABLES.contains(&name.to_ascii_lowercase().as_str())
    }
}

/// How PostgreSQL describes a lake column type in `information_schema.columns`.
struct PgColumnType {
    data_type: String,
    udt_name: String,
    numeric_precision: Option<i32>,
    numeric_radix: Option<i32>,
    numeric_scale: Option<i32>,
    datetime_precision: Option<i32>,
}

fn pg_column_type(t: &DataType) -> PgColumnType {
    let simple = |data_type: &str, udt: &str| PgColumnType {
        data_type: data_type.to_string(),
        udt_name: udt.to_string(),
        numeric_precision: None,
        numeric_radix: None,
        numeric_scale: None,
        datetime_precision: None,
    };
    let int = |data_type: &str, udt: &str, bits: i32| PgColumnType {
        numeric_precision: Some(bits),
        numeric_radix: Some(2),
        numeric_scale: Some(0),
        ..simple(data_type, udt)
    };
    let time = |data_type: &str, udt: &str, digits: i32| PgColumnType {
        datetime_precision: Some(digits),
        ..simple(data_type, udt)
    };
    let digits = |unit: &TimeUnit| match unit {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 3,
        _ => 6,
    };
    match t {
        DataType::Boolean => simple("boolean", "bool"),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => int("smallint", "int2", 16),
        DataType::Int32 | DataType::UInt16 => int("integer", "int4", 32),
        DataType::Int64 | DataType::UInt32 => int("bigint", "int8", 64),
        DataType::Float16 | DataType::Float32 => PgColumnType {
            numeric_precision: Some(24),
            numeric_radix: Some(2),
            ..simple("real", "float4")
        },
        DataType::Float64 => PgColumnType {
            numeric_precision: Some(53),
            numeric_radix: Some(2),
            ..simple("double precision", "float8")
        },
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => PgColumnType {
            numeric_precision: Some(i32::from(*p)),
            numeric_radix: Some(10),
            numeric_scale: Some(i32::from(*s)),
            ..simple("numeric", "numeric")
        },
        DataType::UInt64 => simple("numeric", "numeric"),
        DataType::Date32 | DataType::Date64 => time("date", "date", 0),
        DataType::Timestamp(unit, None) => {
            time("timestamp without time zone", "timestamp", digits(unit))
        }
        DataType::Timestamp(unit, Some(_)) => {
            time("timestamp with time zone", "timestamptz", digits(unit))
        }
        DataType::Time32(unit) | DataType::Time64(unit) => {
            time("time without time zone", "time", digits(unit))
        }
        DataType::Interval(_) | DataType::Duration(_) => time("interval", "interval", 6),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => simple("bytea", "bytea"),
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            let inner = pg_column_type(f.data_type());
            simple("ARRAY", &format!("_{}", inner.udt_name))
        }
        DataType::Struct(_) => simple("USER-DEFINED", "record"),
        _ => simple("text", "text"),
    }
}

fn columns(db: &str, rels: &[(String, String, TableType, SchemaRef)]) -> DfResult<RecordBatch> {
    let mut text: Vec<(&str, Vec<Option<String>>)> = [
        "table_catalog",
        "table_schema",
        "table_name",
        "column_name",
        "column_default",
        "is_nullable",
        "data_type",
        "udt_catalog",
        "udt_schema",
        "udt_name",
        "is_identity",
        "is_generated",
        "is_updatable",
    ]
    .into_iter()
    .map(|n| (n, Vec::new()))
    .collect();
    let mut ints: Vec<(&str, Vec<Option<i32>>)> = [
        "ordinal_position",
        "character_maximum_length",
        "numeric_precision",
        "numeric_precision_radix",
        "numeric_scale",
        "datetime_precision",
    ]
    .into_iter()
    .map(|n| (n, Vec::new()))
    .collect();
    for (schema, table, _, arrow) in rels {
        for (i, field) in arrow.fields().iter().enumerate() {
            let t = pg_column_type(field.data_type());
            let values = [
                Some(db.to_string()),
                Some(schema.clone()),
                Some(table.clone()),
                Some(field.name().clone()),
                None,
                Some(if field.is_nullable() { "YES" } else { "NO" }.to_string()),
                Some(t.data_type),
                Some(db.to_string()),
                Some("pg_catalog".to_string()),
                Some(t.udt_name),
                Some("NO".to_string()),
                Some("NEVER".to_string()),
                Some("NO".to_string()),
            ];
            for ((_, column), v) in text.iter_mut().zip(values) {
                column.push(v);
            }
            let position = i32::try_from(i + 1).unwrap_or(i32::MAX);
            let numbers = [
                Some(position),
                None,
                t.numeric_precision,
                t.numeric_radix,
                t.numeric_scale,
                t.datetime_precision,
            ];
            for ((_, column), v) in ints.iter_mut().zip(numbers) {
                column.push(v);
            }
        }
    }
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    // PostgreSQL's column order: the names first, position, default, nullability, types.
    let order = [
        "table_catalog",
        "table_schema",
        "table_name",
        "column_name",
        "ordinal_position",
        "column_default",
        "is_nullable",
        "data_type",
        "character_maximum_length",
        "numeric_precision",
        "numeric_precision_radix",
        "numeric_scale",
        "datetime_precision",
        "udt_catalog",
        "udt_schema",
        "udt_name",
        "is_identity",
        "is_generated",
        "is_updatable",
    ];
    for name in order {
        if let Some((_, v)) = text.iter().find(|(n, _)| *n == name) {
            fields.push(Field::new(name, DataType::Utf8, true));
            arrays.push(Arc::new(StringArray::from(v.clone())));
        } else if let Some((_, v)) = ints.iter().find(|(n, _)| *n == name) {
            fields.push(Field::new(name, DataType::Int32, true));
            arrays.push(Arc::new(Int32Array::from(v.clone())));
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).map_err(DataFusionError::from)
}

fn text_batch(columns: &[(&str, Vec<Option<String>>)]) -> DfResult<RecordBatch> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, _)| Field::new(*n, DataType::Utf8, true))
        .collect();
    let arrays: Vec<ArrayRef> = columns
        .iter()
        .map(|(_, v)| Arc::new(StringArray::from(v.clone())) as ArrayRef)
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).map_err(DataFusionError::from)
}

fn empty_text_batch(names: &[&str]) -> DfResult<RecordBatch> {
    let columns: Vec<(&str, Vec<Option<String>>)> = names.iter().map(|n| (*n, vec![])).collect();
    text_batch(&columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lake_types_get_postgresql_names() {
        let t = pg_column_type(&DataType::Int64);
        assert_eq!(
            (t.data_type.as_str(), t.udt_name.as_str()),
            ("bigint", "int8")
        );
        let t = pg_column_type(&DataType::Timestamp(
            TimeUnit::Microsecond,
            Some("UTC".into()),
        ));
        assert_eq!(t.data_type, "timestamp with time zone");
        let t = pg_column_type(&DataType::Decimal128(12, 2));
        assert_eq!((t.numeric_precision, t.numeric_scale), (Some(12), Some(2)));
        let list = DataType::List(Arc::new(Field::new("item", DataType::Int64, true)));
        assert_eq!(pg_column_type(&list).udt_name, "_int8");
        assert_eq!(pg_column_type(&DataType::Utf8View).data_type, "text");
    }
}
