//! PostgreSQL functions that client libraries and BI tools call while connecting and browsing, answered
//! the way a PostgreSQL 16 server with Sluice's tables would.
//!
//! `datafusion-pg-catalog` provides many (`format_type`, `pg_get_expr`, `current_schemas`, ...); these
//! are the ones it lacks or answers in a way clients reject:
//!
//! - `version()`: DataFusion's says `Apache DataFusion 55.2.0, ...`, which SQLAlchemy's dialect
//!   cannot parse ("Could not determine version"); ours starts `PostgreSQL 16.0 (Sluice 0.1.0)`;
//! - `current_setting(name)`: Grafana reads `server_version_num` and `search_path`;
//! - `to_regtype(name)`: psycopg 3's type lookup (`TypeInfo.fetch`, which SQLAlchemy calls for
//!   `hstore` on connect);
//! - `pg_type_is_visible`, `pg_get_serial_sequence`, `pg_get_indexdef`, `obj_description`,
//!   `col_description`, `shobj_description`, `json_build_object` (SQLAlchemy's reflection queries);
//! - the `has_*_privilege` family for any argument types: the library's accepts only text, but
//!   clients pass `pg_class.oid`. Every served table is readable, so each answers `true`.
//!
//! Sluice has no indexes, sequences, comments or defaults, so the functions about them answer NULL,
//! as PostgreSQL does for an object without one.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Int32Array, ListBuilder, StringArray, StringBuilder,
};
use arrow::datatypes::{DataType, Field};
use sluice_engine::extension::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use sluice_engine::{DataFusionError, DfResult, ScalarValue, SessionContext};

/// The PostgreSQL major version the endpoint presents itself as (the catalog emulation is 16's).
pub const PG_VERSION: &str = "16.0";
/// `server_version_num` for [`PG_VERSION`].
pub const PG_VERSION_NUM: &str = "160000";

/// `server_version` as reported at startup and by `SHOW server_version`: PostgreSQL's version with
/// Sluice's inside, like distributions add theirs (`15.20 (Debian 15.20-0+deb12u1)`).
pub fn server_version() -> String {
    format!("{PG_VERSION} (Sluice {})", env!("CARGO_PKG_VERSION"))
}

/// What `version()` answers.
pub fn version_string() -> String {
    format!(
        "PostgreSQL {PG_VERSION} (Sluice {}) on {}-{}, read-only lake endpoint",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH,
        std::env::consts::OS
    )
}

/// `current_setting(name)` for the settings clients read; `None` for unknown ones (PostgreSQL
/// raises an error there; NULL keeps a tool's probe from failing its whole query).
pub fn current_setting(name: &str) -> Option<String> {
    let value = match name.to_ascii_lowercase().as_str() {
        "server_version" => server_version(),
        "server_version_num" => PG_VERSION_NUM.to_string(),
        "lc_collate" | "lc_ctype" => "C.UTF-8".to_string(),
        "datestyle" => "ISO, MDY".to_string(),
        "intervalstyle" => "postgres".to_string(),
        "default_transaction_isolation" | "transaction_isolation" => "read committed".to_string(),
        other => super::settings::setting_value(other, None)?,
    };
    Some(value)
}

/// The OID of a built-in type by any of its PostgreSQL names (`int8`, `bigint`, `pg_catalog.int8`,
/// `bigint[]`); `None` for types this server does not have (`hstore`, user types).
pub fn regtype_oid(name: &str) -> Option<i32> {
    let name = name.trim().trim_matches('"').to_ascii_lowercase();
    let name = name.strip_prefix("pg_catalog.").unwrap_or(&name);
    let (base, array) = match name.strip_suffix("[]") {
        Some(b) => (b.trim(), true),
        None => (name, false),
    };
    // (scalar oid, array oid) per PostgreSQL's pg_type.
    let (oid, array_oid) = match base {
        "bool" | "boolean" => (16, 1000),
        "bytea" => (17, 1001),
        "char" => (18, 1002),
        "name" => (19, 1003),
        "int8" | "bigint" => (20, 1016),
        "int2" | "smallint" => (21, 1005),
        "int4" | "integer" | "int" => (23, 1007),
        "text" => (25, 1009),
        "oid" => (26, 1028),
        "json" => (114, 199),
        "float4" | "real" => (700, 1021),
        "float8" | "double precision" => (701, 1022),
        "bpchar" | "character" => (1042, 1014),
        "varchar" | "character varying" => (1043, 1015),
        "date" => (1082, 1182),
        "time" | "time without time zone" => (1083, 1183),
        "timestamp" | "timestamp without time zone" => (1114, 1115),
        "timestamptz" | "timestamp with time zone" => (1184, 1185),
        "interval" => (1186, 1187),
        "timetz" | "time with time zone" => (1266, 1270),
        "numeric" | "decimal" => (1700, 1231),
        "uuid" => (2950, 2951),
        "jsonb" => (3802, 3807),
        "record" => (2249, 2287),
        "regclass" => (2205, 2210),
        "regtype" => (2206, 2211),
        "regproc" => (24, 1008),
        _ => return None,
    };
    Some(if array { array_oid } else { oid })
}

/// The schema unqualified names resolve in: the engine's default schema, which the wire session
/// keeps. `current_schema()`, `current_schemas()` and `search_path` report it, so a client that
/// qualifies names with the current schema (SQLAlchemy's default schema, Superset's SQL Lab,
/// Grafana's table list) names the tables an unqualified query reads.
pub const DEFAULT_SCHEMA: &str = "gold";

/// Registers the functions of this module into `ctx`, replacing same-named ones.
pub fn register(ctx: &SessionContext) {
    for udf in functions() {
        ctx.register_udf(udf);
    }
}

/// Every function this module adds (one list, so a name cannot be registered twice unnoticed).
pub fn functions() -> Vec<ScalarUDF> {
    let any = |n: &[usize]| {
        Signature::one_of(
            n.iter().map(|&n| TypeSignature::Any(n)).collect(),
            Volatility::Stable,
        )
    };
    let constant = |name: &'static str, signature: Signature, value: ScalarValue| {
        ScalarUDF::new_from_impl(PgFunction {
            name,
            signature,
            kind: Kind::Constant(value),
        })
    };
    let mut out = vec![
        constant(
            "version",
            Signature::nullary(Volatility::Stable),
            ScalarValue::Utf8(Some(version_string())),
        ),
        ScalarUDF::new_from_impl(PgFunction {
            name: "current_setting",
            signature: any(&[1, 2]),
            kind: Kind::CurrentSetting,
        }),
        ScalarUDF::new_from_impl(PgFunction {
            name: "to_regtype",
            signature: any(&[1]),
            kind: Kind::RegType,
        }),
        constant(
            "pg_type_is_visible",
            any(&[1]),
            ScalarValue::Boolean(Some(true)),
        ),
        constant("pg_get_serial_sequence", any(&[2]), ScalarValue::Utf8(None)),
        constant("pg_get_indexdef", any(&[1, 3]), ScalarValue::Utf8(None)),
        constant("obj_description", any(&[1, 2]), ScalarValue::Utf8(None)),
        constant("col_description", any(&[2]), ScalarValue::Utf8(None)),
        constant("shobj_description", any(&[2]), ScalarValue::Utf8(None)),
        // psql's `\d+` (sizes and view definitions are not known to the catalog: NULL, which psql
        // shows empty).
        constant("pg_table_size", any(&[1]), ScalarValue::Int64(None)),
        constant("pg_get_viewdef", any(&[1, 2]), ScalarValue::Utf8(None)),
        ScalarUDF::new_from_impl(PgFunction {
            name: "pg_size_pretty",
            signature: any(&[1]),
            kind: Kind::SizePretty,
        }),
        ScalarUDF::new_from_impl(PgFunction {
            name: "json_build_object",
            signature: Signature::variadic_any(Volatility::Immutable),
            kind: Kind::JsonObject,
        }),
        constant(
            "current_schema",
            Signature::nullary(Volatility::Stable),
            ScalarValue::Utf8(Some(DEFAULT_SCHEMA.to_string())),
        ),
        ScalarUDF::new_from_impl(PgFunction {
            name: "current_schemas",
            signature: any(&[1]),
            kind: Kind::CurrentSchemas,
        }),
        super::compat::expandarray_udf(),
        super::compat::as_array_udf(),
    ];
    out.extend(super::scalar::functions(DEFAULT_SCHEMA));
    for name in [
        "has_table_privilege",
        "has_schema_privilege",
        "has_database_privilege",
        "has_any_column_privilege",
        "has_column_privilege",
        "has_function_privilege",
        "has_sequence_privilege",
        "pg_has_role",
    ] {
        out.push(constant(
            name,
            any(&[2, 3, 4]),
            ScalarValue::Boolean(Some(true)),
        ));
    }
    out
}

#[derive(Debug, PartialEq, Eq, Hash)]
enum Kind {
    /// The same value for every row.
    Constant(ScalarValue),
    /// [`current_setting`] of the first argument.
    CurrentSetting,
    /// [`regtype_oid`] of the first argument.
    RegType,
    /// `json_build_object(k1, v1, k2, v2, ...)`.
    JsonObject,
    /// `current_schemas(include_implicit)`: the default schema, after `pg_catalog` if implicit
    /// schemas are asked for (PostgreSQL searches it first).
    CurrentSchemas,
    /// [`size_pretty`] of the first argument.
    SizePretty,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct PgFunction {
    name: &'static str,
    signature: Signature,
    kind: Kind,
}

impl ScalarUDFImpl for PgFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(match &self.kind {
            Kind::Constant(v) => v.data_type(),
            Kind::CurrentSetting | Kind::JsonObject | Kind::SizePretty => DataType::Utf8,
            Kind::RegType => DataType::Int32,
            Kind::CurrentSchemas => {
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
            }
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        match &self.kind {
            Kind::Constant(v) => Ok(ColumnarValue::Scalar(v.clone())),
            Kind::CurrentSetting => {
                let input = first_as_text(&args)?;
                let out: StringArray = input.iter().map(|v| v.and_then(current_setting)).collect();
                Ok(ColumnarValue::Array(Arc::new(out)))
            }
            Kind::RegType => {
                let input = first_as_text(&args)?;
                let out: Int32Array = input.iter().map(|v| v.and_then(regtype_oid)).collect();
                Ok(ColumnarValue::Array(Arc::new(out)))
            }
            Kind::JsonObject => json_build_object(&args),
            Kind::SizePretty => {
                let first = args
                    .args
                    .first()
                    .ok_or_else(|| DataFusionError::Plan("missing argument".into()))?
                    .to_array(args.number_rows)?;
                let bytes = arrow::compute::cast(&first, &DataType::Int64)?;
                let bytes = bytes
                    .as_any()
                    .downcast_ref::<arrow::array::Int64Array>()
                    .ok_or_else(|| DataFusionError::Internal("not a number".into()))?;
                let out: StringArray = bytes.iter().map(|v| v.map(size_pretty)).collect();
                Ok(ColumnarValue::Array(Arc::new(out)))
            }
            Kind::CurrentSchemas => {
                let first = args
                    .args
                    .first()
                    .ok_or_else(|| DataFusionError::Plan("missing argument".into()))?
                    .to_array(args.number_rows)?;
                let implicit = arrow::compute::cast(&first, &DataType::Boolean)?;
                let implicit = implicit
                    .as_any()
                    .downcast_ref::<BooleanArray>()
                    .ok_or_else(|| DataFusionError::Internal("not a boolean".into()))?;
                let lists = implicit.iter().map(|v| {
                    v.map(|implicit| {
                        let implicit = implicit.then(|| "pg_catalog".to_string());
                        [implicit, Some(DEFAULT_SCHEMA.to_string())]
                            .into_iter()
                            .flatten()
                            .map(Some)
                            .collect::<Vec<_>>()
                    })
                });
                let mut builder = ListBuilder::new(StringBuilder::new());
                for list in lists {
                    builder.append_option(list);
                }
                Ok(ColumnarValue::Array(Arc::new(builder.finish())))
            }
        }
    }
}

/// PostgreSQL's `pg_size_pretty(bigint)`: bytes below 10 kB, then kB, MB, GB, TB, PB, each rounded
/// half away from zero.
pub fn size_pretty(bytes: i64) -> String {
    const LIMIT: i64 = 10 * 1024;
    const LIMIT2: i64 = LIMIT * 2 - 1;
    let half_rounded = |x: i64| (x + if x < 0 { -1 } else { 1 }) / 2;
    if bytes.abs() < LIMIT {
        return format!("{bytes} bytes");
    }
    // In half units from here on, so the last shift can round.
    let mut size = bytes >> 9;
    for unit in ["kB", "MB", "GB", "TB"] {
        if size.abs() < LIMIT2 {
            return format!("{} {unit}", half_rounded(size));
        }
        size >>= 10;
    }
    format!("{} PB", half_rounded(size))
}

/// The first argument as text, one value per row.
fn first_as_text(args: &ScalarFunctionArgs) -> DfResult<StringArray> {
    let first = args
        .args
        .first()
        .ok_or_else(|| DataFusionError::Plan("missing argument".into()))?;
    let array = first.to_array(args.number_rows)?;
    text_of(&array)
}

pub(crate) fn text_of(array: &ArrayRef) -> DfResult<StringArray> {
    let cast = arrow::compute::cast(array, &DataType::Utf8)?;
    cast.as_any()
        .downcast_ref::<StringArray>()
        .cloned()
        .ok_or_else(|| DataFusionError::Internal("cast to Utf8 did not give strings".into()))
}

/// `json_build_object`: keys as text; numbers and booleans as JSON literals, NULL as `null`, the
/// rest as JSON strings.
fn json_build_object(args: &ScalarFunctionArgs) -> DfResult<ColumnarValue> {
    if !args.args.len().is_multiple_of(2) {
        return Err(DataFusionError::Plan(
            "json_build_object: argument list must have even number of elements".into(),
        ));
    }
    let rows = args.number_rows;
    let mut columns = Vec::with_capacity(args.args.len());
    for a in &args.args {
        let array = a.to_array(rows)?;
        let numeric = array.data_type().is_numeric();
        let boolean = matches!(array.data_type(), DataType::Boolean);
        columns.push((text_of(&array)?, numeric || boolean, array));
    }
    let mut out = Vec::with_capacity(rows);
    for row in 0..rows {
        let mut object = serde_json::Map::new();
        for pair in columns.chunks(2) {
            let [(keys, _, _), (values, literal, raw)] = pair else {
                continue;
            };
            if keys.is_null(row) {
                return Err(DataFusionError::Execution(
                    "json_build_object: null value not allowed for object key".into(),
                ));
            }
            let value = if raw.is_null(row) {
                serde_json::Value::Null
            } else if *literal {
                let text = values.value(row);
                match raw.as_any().downcast_ref::<BooleanArray>() {
                    Some(b) => serde_json::Value::Bool(b.value(row)),
                    None => serde_json::from_str(text)
                        .unwrap_or_else(|_| serde_json::Value::String(text.to_string())),
                }
            } else {
                serde_json::Value::String(values.value(row).to_string())
            };
            object.insert(keys.value(row).to_string(), value);
        }
        out.push(Some(serde_json::Value::Object(object).to_string()));
    }
    Ok(ColumnarValue::Array(Arc::new(StringArray::from(out))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_parsed_like_postgresql() {
        let v = version_string();
        assert!(v.starts_with("PostgreSQL 16.0 (Sluice "), "{v}");
        assert_eq!(
            current_setting("server_version_num").as_deref(),
            Some("160000")
        );
        assert!(server_version().starts_with("16.0 (Sluice "));
        assert_eq!(current_setting("no_such_setting"), None);
    }

    #[test]
    fn type_names_resolve_to_postgresql_oids() {
        assert_eq!(regtype_oid("bigint"), Some(20));
        assert_eq!(regtype_oid("pg_catalog.int8"), Some(20));
        assert_eq!(regtype_oid("text[]"), Some(1009));
        assert_eq!(regtype_oid("timestamp with time zone"), Some(1184));
        assert_eq!(regtype_oid("hstore"), None);
    }

    #[test]
    fn sizes_are_pretty_like_postgresql() {
        assert_eq!(size_pretty(0), "0 bytes");
        assert_eq!(size_pretty(10_239), "10239 bytes");
        assert_eq!(size_pretty(10_240), "10 kB");
        assert_eq!(size_pretty(1_048_576 * 20), "20 MB");
        assert_eq!(size_pretty(-10_240), "-10 kB");
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<String> = functions().iter().map(|f| f.name().to_string()).collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n);
    }
}
