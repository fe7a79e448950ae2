//! Reverse ETL into PostgreSQL: upsert an asset into a table on a key.
//!
//! The table is created when missing (`CREATE TABLE IF NOT EXISTS`, types mapped from Arrow, the key
//! as primary key). Each batch is one transaction running
//!
//! ```sql
//! INSERT INTO t (a, b, c) SELECT a, b, c FROM jsonb_populate_recordset(NULL::t, $1::text::jsonb)
//! ON CONFLICT (a) DO UPDATE SET b = EXCLUDED.b, c = EXCLUDED.c
//! WHERE (t.b, t.c) IS DISTINCT FROM (EXCLUDED.b, EXCLUDED.c)
//! ```
//!
//! with the batch as one JSON array parameter: one round trip per batch, values converted by
//! PostgreSQL's own input functions into the target's column types (whatever they are, if the table
//! already existed), and nothing pasted into SQL but quoted identifiers. Running the export again
//! pushes the same result: matched rows are updated only if they changed, none is duplicated.
//! Rows deleted from the asset are not deleted from the target.

use std::error::Error as _;

use arrow::datatypes::{DataType, Schema};
use async_trait::async_trait;
use serde::Deserialize;
use sluice_core::ConfigError;
use sluice_core::ExportDecl;
use sluice_core::source::is_valid_identifier;
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use crate::{ExportReport, Rebatcher, Rows, Sink, SinkContext, SinkError, SinkKind};

/// The registry entry (see [`crate::SINK_KINDS`]).
pub const KIND: SinkKind = SinkKind {
    name: "postgres",
    description: "Upserts the rows into a PostgreSQL table on a key, one transaction per batch.",
    example: "asset: orders\nkind: postgres\nconnection: postgres://localhost/analytics\ntable: analytics.orders\nkey: [id]\n",
    build: |export| {
        Ok(Box::new(PostgresSink {
            target: PostgresTarget::from_decl(export)?,
        }))
    },
};

/// The fields of a `kind: postgres` export file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PostgresFields {
    #[serde(default)]
    connection: Option<String>,
    #[serde(default)]
    table: Option<String>,
    #[serde(default)]
    key: Option<KeyList>,
    #[serde(default)]
    mode: Option<String>,
}

/// `key: id` or `key: [a, b]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum KeyList {
    One(String),
    Many(Vec<String>),
}

/// Where a `kind: postgres` export upserts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresTarget {
    /// Connection string as written; `${ENV}` is expanded when the export runs.
    pub connection: String,
    /// `table` or `schema.table`.
    pub table: String,
    /// Key columns (the conflict target of the upsert, and the primary key of a created table).
    pub key: Vec<String>,
}

impl PostgresTarget {
    /// Reads and checks the export's postgres fields, every problem with file and line.
    pub fn from_decl(export: &ExportDecl) -> Result<PostgresTarget, ConfigError> {
        let f: PostgresFields = export.config()?;
        let mut errors = Vec::new();
        let missing = |field: &str, what: &str| {
            export.invalid(field, format!("`kind: postgres` needs `{field}`: {what}"))
        };
        let connection = f.connection.unwrap_or_default();
        if connection.trim().is_empty() {
            errors.push(missing(
                "connection",
                "a libpq URL or key=value string, e.g. ${ANALYTICS_PG_URL}",
            ));
        }
        let table = f.table.unwrap_or_default();
        if table.is_empty() {
            errors.push(missing(
                "table",
                "the target table, `table` or `schema.table`",
            ));
        } else if !table.split('.').all(is_valid_identifier) || table.split('.').count() > 2 {
            errors.push(export.invalid(
                "table",
                format!("`{table}` is not `table` or `schema.table` (letters, digits, _)"),
            ));
        }
        let key = match f.key {
            None => Vec::new(),
            Some(KeyList::One(k)) => vec![k],
            Some(KeyList::Many(k)) => k,
        };
        if key.is_empty() {
            errors.push(missing(
                "key",
                "the column(s) rows are matched on, e.g. [month]",
            ));
        }
        match f.mode.as_deref().unwrap_or("upsert") {
            "upsert" => {}
            other => errors.push(export.invalid(
                "mode",
                format!("`{other}` is not supported; expected upsert"),
            )),
        }
        if !errors.is_empty() {
            return Err(ConfigError::many(errors));
        }
        Ok(PostgresTarget {
            connection,
            table,
            key,
        })
    }
}

/// `kind: postgres`: upserts into a table (created if missing) on the export's key.
#[derive(Debug, Clone)]
pub struct PostgresSink {
    target: PostgresTarget,
}

#[async_trait]
impl Sink for PostgresSink {
    fn kind(&self) -> &'static str {
        KIND.name
    }

    async fn write(&self, rows: Rows, cx: &SinkContext<'_>) -> Result<ExportReport, SinkError> {
        push(cx.export, &self.target, rows).await
    }
}

/// Pushes `stream` into the export's PostgreSQL table.
pub async fn push(
    export: &ExportDecl,
    target: &PostgresTarget,
    mut stream: Rows,
) -> Result<ExportReport, SinkError> {
    let schema = stream.schema();
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    for k in &target.key {
        if !names.contains(k) {
            return Err(SinkError::UnknownColumn {
                column: k.clone(),
                role: "key",
                available: names,
            });
        }
    }
    let create = create_table_sql(&schema, &target.table, &target.key)?;
    let upsert = upsert_sql(&names, &target.table, &target.key);
    let connection = sluice_core::env::expand_env(&target.connection, &export.path)?;
    let (mut client, conn) = tokio_postgres::connect(&connection, NoTls)
        .await
        .map_err(|e| pg_error("connect", &e))?;
    let conn_task = tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::warn!(error = %e, "export connection to postgres ended with an error");
        }
    });
    if let Some((schema_name, _)) = target.table.split_once('.') {
        client
            .batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {}",
                quote_ident(schema_name)
            ))
            .await
            .map_err(|e| pg_error("create schema", &e))?;
    }
    client
        .batch_execute(&create)
        .await
        .map_err(|e| pg_error("create table", &e))?;
    let statement = client
        .prepare(&upsert)
        .await
        .map_err(|e| pg_error("prepare the upsert", &e))?;

    let mut report = ExportReport::default();
    let mut rebatcher = Rebatcher::new(schema.clone(), export.batch_size);
    let engine_error = |e: arrow::error::ArrowError| SinkError::Engine(e.to_string());
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        report.rows_read += batch.num_rows() as u64;
        for ready in rebatcher.push(batch).map_err(engine_error)? {
            upsert_batch(&mut client, &statement, &ready, &mut report).await?;
        }
    }
    if let Some(last) = rebatcher.finish().map_err(engine_error)? {
        upsert_batch(&mut client, &statement, &last, &mut report).await?;
    }
    drop(client);
    let _ = conn_task.await;
    Ok(report)
}

/// Upserts one batch in its own transaction.
async fn upsert_batch(
    client: &mut tokio_postgres::Client,
    statement: &tokio_postgres::Statement,
    batch: &arrow::array::RecordBatch,
    report: &mut ExportReport,
) -> Result<(), SinkError> {
    report.batches += 1;
    let doing = format!("upsert batch {}", report.batches);
    let json = rows_json(batch)?;
    let tx = client
        .transaction()
        .await
        .map_err(|e| pg_error(&doing, &e))?;
    tx.execute(statement, &[&json])
        .await
        .map_err(|e| pg_error(&doing, &e))?;
    tx.commit().await.map_err(|e| pg_error(&doing, &e))?;
    report.rows_written += batch.num_rows() as u64;
    Ok(())
}

/// The batch as one JSON array of row objects (nulls explicit).
fn rows_json(batch: &arrow::array::RecordBatch) -> Result<String, SinkError> {
    let out = crate::json::json_array(batch)?;
    // The JSON writer only emits UTF-8.
    String::from_utf8(out).map_err(|e| SinkError::Engine(e.to_string()))
}

/// `"name"`, with embedded quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `schema.table` or `table`, quoted.
fn quote_table(table: &str) -> String {
    table
        .split('.')
        .map(quote_ident)
        .collect::<Vec<_>>()
        .join(".")
}

/// The PostgreSQL type for an Arrow type.
pub fn pg_type(column: &str, data_type: &DataType) -> Result<String, SinkError> {
    let unsupported = |hint| SinkError::UnsupportedType {
        column: column.to_string(),
        data_type: data_type.clone(),
        target: "postgres",
        hint,
    };
    let t = match data_type {
        DataType::Boolean => "boolean".to_string(),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => "smallint".into(),
        DataType::Int32 | DataType::UInt16 => "integer".into(),
        DataType::Int64 | DataType::UInt32 => "bigint".into(),
        DataType::UInt64 => "numeric(20, 0)".into(),
        DataType::Float16 | DataType::Float32 => "real".into(),
        DataType::Float64 => "double precision".into(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("numeric({p}, {s})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Timestamp(_, None) => "timestamp".into(),
        DataType::Timestamp(_, Some(_)) => "timestamptz".into(),
        DataType::Time32(_) | DataType::Time64(_) => "time".into(),
        DataType::List(_)
        | DataType::LargeList(_)
        | DataType::ListView(_)
        | DataType::FixedSizeList(..)
        | DataType::Struct(_)
        | DataType::Map(..) => "jsonb".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
            return Err(unsupported(
                "; encode it in the model (e.g. `encode(col, 'hex')`)",
            ));
        }
        _ => return Err(unsupported("; cast it in the model")),
    };
    Ok(t)
}

/// `CREATE TABLE IF NOT EXISTS` with mapped types and the key as primary key.
pub fn create_table_sql(schema: &Schema, table: &str, key: &[String]) -> Result<String, SinkError> {
    let mut cols = Vec::new();
    for f in schema.fields() {
        let not_null = if key.contains(f.name()) {
            " NOT NULL"
        } else {
            ""
        };
        cols.push(format!(
            "{} {}{not_null}",
            quote_ident(f.name()),
            pg_type(f.name(), f.data_type())?
        ));
    }
    let key_list = key
        .iter()
        .map(|k| quote_ident(k))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(format!(
        "CREATE TABLE IF NOT EXISTS {} ({}, PRIMARY KEY ({key_list}))",
        quote_table(table),
        cols.join(", ")
    ))
}

/// The upsert of one JSON array parameter; updates a matched row only if a value changed.
pub fn upsert_sql(columns: &[String], table: &str, key: &[String]) -> String {
    let t = quote_table(table);
    let list = columns
        .iter()
        .map(|c| quote_ident(c))
        .collect::<Vec<_>>()
        .join(", ");
    let key_list = key
        .iter()
        .map(|k| quote_ident(k))
        .collect::<Vec<_>>()
        .join(", ");
    let rest: Vec<&String> = columns.iter().filter(|c| !key.contains(c)).collect();
    let action = if rest.is_empty() {
        "DO NOTHING".to_string()
    } else {
        let set = rest
            .iter()
            .map(|c| format!("{q} = EXCLUDED.{q}", q = quote_ident(c)))
            .collect::<Vec<_>>()
            .join(", ");
        let mine = rest
            .iter()
            .map(|c| format!("{t}.{}", quote_ident(c)))
            .collect::<Vec<_>>()
            .join(", ");
        let theirs = rest
            .iter()
            .map(|c| format!("EXCLUDED.{}", quote_ident(c)))
            .collect::<Vec<_>>()
            .join(", ");
        format!("DO UPDATE SET {set} WHERE ROW({mine}) IS DISTINCT FROM ROW({theirs})")
    };
    format!(
        "INSERT INTO {t} ({list}) SELECT {list} FROM jsonb_populate_recordset(NULL::{t}, $1::text::jsonb) \
         ON CONFLICT ({key_list}) {action}"
    )
}

/// A PostgreSQL failure with the server's message and whether running again may help.
fn pg_error(doing: &str, e: &tokio_postgres::Error) -> SinkError {
    if let Some(db) = e.as_db_error() {
        let mut message = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
        if let Some(detail) = db.detail() {
            message.push_str(&format!(" ({detail})"));
        }
        if let Some(hint) = db.hint() {
            message.push_str(&format!("; hint: {hint}"));
        }
        if *db.code() == SqlState::INVALID_COLUMN_REFERENCE {
            message.push_str(
                "; the target table needs a primary key or unique index on the export's key",
            );
        }
        let code = db.code().code();
        let transient = code.starts_with("08")
            || code.starts_with("53")
            || *db.code() == SqlState::T_R_SERIALIZATION_FAILURE
            || *db.code() == SqlState::T_R_DEADLOCK_DETECTED
            || *db.code() == SqlState::ADMIN_SHUTDOWN
            || *db.code() == SqlState::CANNOT_CONNECT_NOW;
        return SinkError::Postgres {
            doing: doing.to_string(),
            message,
            transient,
        };
    }
    let mut message = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        message.push_str(&format!(": {c}"));
        cause = c.source();
    }
    let config = message.starts_with("invalid connection string")
        || message.starts_with("invalid configuration");
    SinkError::Postgres {
        doing: doing.to_string(),
        message,
        transient: !config,
    }
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::Field;

    use super::*;

    #[test]
    fn tables_and_upserts_quote_every_identifier() {
        let schema = Schema::new(vec![
            Field::new("month", DataType::Date32, false),
            Field::new("net \"rev\"", DataType::Decimal128(12, 2), true),
            Field::new("tags", DataType::new_list(DataType::Utf8, true), true),
        ]);
        let key = vec!["month".to_string()];
        assert_eq!(
            create_table_sql(&schema, "analytics.revenue", &key).unwrap(),
            "CREATE TABLE IF NOT EXISTS \"analytics\".\"revenue\" (\"month\" date NOT NULL, \
             \"net \"\"rev\"\"\" numeric(12, 2), \"tags\" jsonb, PRIMARY KEY (\"month\"))"
        );
        let cols: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let sql = upsert_sql(&cols, "revenue", &key);
        assert!(
            sql.contains("ON CONFLICT (\"month\") DO UPDATE SET \"net \"\"rev\"\"\" = EXCLUDED"),
            "{sql}"
        );
        assert!(sql.contains("IS DISTINCT FROM"), "{sql}");
        assert!(upsert_sql(&key, "revenue", &key).ends_with("DO NOTHING"));
    }

    #[test]
    fn binary_columns_are_refused_with_the_column_named() {
        let e = pg_type("blob", &DataType::Binary).unwrap_err().to_string();
        assert!(e.contains("column `blob` has type Binary"), "{e}");
    }
}
