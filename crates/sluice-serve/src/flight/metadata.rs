//! The catalog listings Flight SQL clients browse with (ADBC's `adbc_get_objects`, JDBC's
//! `DatabaseMetaData`, DBeaver's navigator): one catalog `sluice`, the lake's published schemas
//! (`bronze`, `silver`, `gold`, `quarantine`) and their tables and views, read from the same
//! session the queries run in, so a table a run just wrote is listed at once.
//!
//! `pg_catalog` and `information_schema` stay queryable (they are the PostgreSQL wire's) but are not
//! listed: Flight SQL clients take the listings from these commands, not from catalog tables.

use std::sync::{Arc, LazyLock};

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::{
    CommandGetCatalogs, CommandGetDbSchemas, CommandGetTableTypes, CommandGetTables, SqlInfo,
    SqlSupportedTransaction,
};
use sluice_engine::SessionContext;
use sluice_engine::catalog::{SchemaProvider, TableType};
use sluice_transform::relation::CATALOG;
use tonic::Status;

use crate::pg::catalog::SERVED_SCHEMAS;

/// The table types tables are listed with.
pub const TABLE_TYPES: [&str; 2] = ["TABLE", "VIEW"];

/// What `GetSqlInfo` answers: the server's name and version, read-only, SQL (no Substrait, no
/// transactions, no cancel action: cancel through `DELETE /api/queries/{id}`).
pub fn sql_info() -> Result<&'static SqlInfoData, Status> {
    static INFO: LazyLock<Result<SqlInfoData, String>> = LazyLock::new(|| {
        let mut b = SqlInfoDataBuilder::new();
        b.append(SqlInfo::FlightSqlServerName, "Sluice");
        b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
        // The Arrow format version (Schema.fbs' MetadataVersion V5 is format 1.5).
        b.append(SqlInfo::FlightSqlServerArrowVersion, "1.5");
        b.append(SqlInfo::FlightSqlServerReadOnly, true);
        b.append(SqlInfo::FlightSqlServerSql, true);
        b.append(SqlInfo::FlightSqlServerSubstrait, false);
        b.append(
            SqlInfo::FlightSqlServerTransaction,
            SqlSupportedTransaction::None as i32,
        );
        b.append(SqlInfo::FlightSqlServerCancel, false);
        b.append(SqlInfo::SqlDdlCatalog, false);
        b.append(SqlInfo::SqlDdlSchema, false);
        b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
        b.append(SqlInfo::SqlAllTablesAreSelectable, true);
        b.build().map_err(|e| e.to_string())
    });
    INFO.as_ref()
        .map_err(|e| Status::internal(format!("cannot build the server information: {e}")))
}

/// `GetCatalogs`: the one catalog.
pub fn catalogs(query: CommandGetCatalogs) -> Result<RecordBatch, Status> {
    let mut b = query.into_builder();
    b.append(CATALOG);
    b.build().map_err(arrow_status)
}

/// `GetDbSchemas`: the lake's published schemas (the command's filters applied).
pub fn db_schemas(ctx: &SessionContext, query: CommandGetDbSchemas) -> Result<RecordBatch, Status> {
    let mut b = query.into_builder();
    for (name, _) in served_schemas(ctx) {
        b.append(CATALOG, name);
    }
    b.build().map_err(arrow_status)
}

/// `GetTables`: tables and views of the published schemas, with their Arrow schemas when the
/// client asks (`include_schema`).
pub async fn tables(ctx: &SessionContext, query: CommandGetTables) -> Result<RecordBatch, Status> {
    let include_schema = query.include_schema;
    let mut b = query.into_builder();
    let empty = Schema::empty();
    for (schema_name, schema) in served_schemas(ctx) {
        for table in schema.table_names() {
            let kind = match schema.table_type(&table).await {
                Ok(Some(TableType::View)) => "VIEW",
                Ok(Some(_)) => "TABLE",
                // Dropped between listing and reading: not listed.
                Ok(None) => continue,
                Err(e) => return Err(super::error::query_failed(&e)),
            };
            let table_schema = if include_schema {
                match schema.table(&table).await {
                    Ok(Some(provider)) => super::query::classic_schema(&provider.schema()),
                    Ok(None) => continue,
                    Err(e) => return Err(super::error::query_failed(&e)),
                }
            } else {
                Arc::new(empty.clone())
            };
            b.append(CATALOG, schema_name, table, kind, &table_schema)
                .map_err(arrow_status)?;
        }
    }
    b.build().map_err(arrow_status)
}

/// `GetTableTypes`.
pub fn table_types() -> Result<RecordBatch, Status> {
    let mut b = CommandGetTableTypes {}.into_builder();
    for t in TABLE_TYPES {
        b.append(t);
    }
    b.build().map_err(arrow_status)
}

/// The published schemas the session has, in the order clients list them.
fn served_schemas(ctx: &SessionContext) -> Vec<(&'static str, Arc<dyn SchemaProvider>)> {
    let Some(catalog) = ctx.catalog(CATALOG) else {
        return Vec::new();
    };
    SERVED_SCHEMAS
        .iter()
        .filter_map(|name| catalog.schema(name).map(|s| (*name, s)))
        .collect()
}

fn arrow_status(e: impl std::fmt::Display) -> Status {
    Status::internal(format!("cannot build the listing: {e}"))
}
