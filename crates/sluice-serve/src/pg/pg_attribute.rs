//! Faithful column types in `pg_catalog.pg_attribute`.
//!
//! The catalog emulation's `pg_attribute` types a column by a short list (lists other than
//! `integer[]`/`text[]` become `text`) and never sets `atttypmod`, so `format_type(atttypid,
//! atttypmod)` (psql's `\d`, SQLAlchemy's reflection) showed a `bigint[]` column as `text` and a
//! `DECIMAL(12, 2)` as bare `numeric`. [`PgCatalogSchema`] wraps the library's `pg_catalog` and
//! serves its `pg_attribute` with three columns corrected from the lake table's Arrow schema:
//!
//! - `atttypid`: the type the result encoding sends for the column (`bigint[]` is 1016, `_int8`),
//!   so the catalog and the values agree;
//! - `atttypmod`: `numeric(p, s)` as PostgreSQL encodes it (`((p << 16) | s) + 4`), -1 otherwise
//!   (timestamps keep PostgreSQL's default precision, microseconds);
//! - `attndims`: 1 for lists.
//!
//! The table OIDs come from the library's own `pg_class` and `pg_namespace`, read in the same scan,
//! so they match the ones clients join on.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int16Array, Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, SchemaRef};
use async_trait::async_trait;
use datafusion_postgres::arrow_pg::datatypes::into_pg_type;
use sluice_engine::catalog::{
    CatalogProvider, MemTable, SchemaProvider, Session, TableProvider, TableType,
};
use sluice_engine::extension::logical_expr::Expr;
use sluice_engine::plan::{ExecutionPlan, collect};
use sluice_engine::{DataFusionError, DfResult};

use super::catalog::SERVED_SCHEMAS;

/// The library's `pg_catalog` with [`PgAttribute`] in place of its `pg_attribute`.
#[derive(Debug)]
pub struct PgCatalogSchema {
    inner: Arc<dyn SchemaProvider>,
    lake: Arc<dyn CatalogProvider>,
}

impl PgCatalogSchema {
    /// Wraps `inner` (the library's `pg_catalog`); column types are read from `lake`'s schemas.
    pub fn new(inner: Arc<dyn SchemaProvider>, lake: Arc<dyn CatalogProvider>) -> Self {
        Self { inner, lake }
    }
}

#[async_trait]
impl SchemaProvider for PgCatalogSchema {
    fn table_names(&self) -> Vec<String> {
        self.inner.table_names()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let Some(table) = self.inner.table(name).await? else {
            return Ok(None);
        };
        if !name.eq_ignore_ascii_case("pg_attribute") {
            return Ok(Some(table));
        }
        Ok(Some(Arc::new(PgAttribute {
            inner: table,
            catalog: self.inner.clone(),
            lake: self.lake.clone(),
        })))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name)
    }
}

/// `pg_attribute` with types from the lake (see the module doc).
#[derive(Debug)]
struct PgAttribute {
    inner: Arc<dyn TableProvider>,
    catalog: Arc<dyn SchemaProvider>,
    lake: Arc<dyn CatalogProvider>,
}

/// Every row of a catalog table.
async fn rows(
    catalog: &Arc<dyn SchemaProvider>,
    name: &str,
    state: &dyn Session,
) -> DfResult<Vec<RecordBatch>> {
    let table = catalog
        .table(name)
        .await?
        .ok_or_else(|| DataFusionError::Internal(format!("pg_catalog.{name} is missing")))?;
    let plan: Arc<dyn ExecutionPlan> = table.scan(state, None, &[], None).await?;
    collect(plan, state.task_ctx()).await
}

/// Column `name` of `batch` as integers.
fn ints(batch: &RecordBatch, name: &str) -> DfResult<Int32Array> {
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| DataFusionError::Internal(format!("no column {name}")))?;
    let cast = arrow::compute::cast(column, &DataType::Int32)?;
    cast.as_any()
        .downcast_ref::<Int32Array>()
        .cloned()
        .ok_or_else(|| DataFusionError::Internal(format!("{name} is not an integer")))
}

fn texts(batch: &RecordBatch, name: &str) -> DfResult<StringArray> {
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| DataFusionError::Internal(format!("no column {name}")))?;
    let cast = arrow::compute::cast(column, &DataType::Utf8)?;
    cast.as_any()
        .downcast_ref::<StringArray>()
        .cloned()
        .ok_or_else(|| DataFusionError::Internal(format!("{name} is not text")))
}

/// `(atttypid, atttypmod, attndims)` of a lake column of type `t`.
pub fn pg_attribute_type(t: &DataType) -> (i32, i32, i32) {
    let oid = into_pg_type(t)
        .ok()
        .and_then(|t| i32::try_from(t.oid()).ok())
        .unwrap_or(25);
    let typmod = match t {
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) if *s >= 0 => {
            ((i32::from(*p) << 16) | i32::from(*s)) + 4
        }
        _ => -1,
    };
    let dims = match t {
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..) => 1,
        _ => 0,
    };
    (oid, typmod, dims)
}

impl PgAttribute {
    /// The table OID → (schema, table) of every served relation.
    async fn relations(&self, state: &dyn Session) -> DfResult<HashMap<i32, (String, String)>> {
        let mut schemas = HashMap::new();
        for batch in rows(&self.catalog, "pg_namespace", state).await? {
            let (oid, name) = (ints(&batch, "oid")?, texts(&batch, "nspname")?);
            for i in 0..batch.num_rows() {
                if !oid.is_null(i) && !name.is_null(i) && SERVED_SCHEMAS.contains(&name.value(i)) {
                    schemas.insert(oid.value(i), name.value(i).to_string());
                }
            }
        }
        let mut out = HashMap::new();
        for batch in rows(&self.catalog, "pg_class", state).await? {
            let oid = ints(&batch, "oid")?;
            let namespace = ints(&batch, "relnamespace")?;
            let name = texts(&batch, "relname")?;
            for i in 0..batch.num_rows() {
                if oid.is_null(i) || namespace.is_null(i) || name.is_null(i) {
                    continue;
                }
                if let Some(schema) = schemas.get(&namespace.value(i)) {
                    out.insert(oid.value(i), (schema.clone(), name.value(i).to_string()));
                }
            }
        }
        Ok(out)
    }

    /// The library's rows with the lake's types.
    async fn corrected(&self, state: &dyn Session) -> DfResult<Vec<RecordBatch>> {
        let relations = self.relations(state).await?;
        let mut types: HashMap<i32, SchemaRef> = HashMap::new();
        for (oid, (schema, table)) in &relations {
            let Some(provider) = self.lake.schema(schema) else {
                continue;
            };
            if let Some(t) = provider.table(table).await? {
                types.insert(*oid, t.schema());
            }
        }
        let mut out = Vec::new();
        for batch in rows(&self.catalog, "pg_attribute", state).await? {
            let relid = ints(&batch, "attrelid")?;
            let attnum = batch
                .column_by_name("attnum")
                .and_then(|c| c.as_any().downcast_ref::<Int16Array>().cloned())
                .ok_or_else(|| DataFusionError::Internal("attnum is not int2".into()))?;
            // The lake's (atttypid, atttypmod, attndims) of each row, where it knows the column.
            let fixes: Vec<Option<(i32, i32, i32)>> = (0..batch.num_rows())
                .map(|i| {
                    if relid.is_null(i) || attnum.is_null(i) {
                        return None;
                    }
                    let schema = types.get(&relid.value(i))?;
                    let index = usize::try_from(attnum.value(i)).ok()?.checked_sub(1)?;
                    let field = schema.fields().get(index)?;
                    Some(pg_attribute_type(field.data_type()))
                })
                .collect();
            let fixed =
                |name: &str, pick: fn((i32, i32, i32)) -> i32| -> DfResult<Vec<Option<i32>>> {
                    Ok(ints(&batch, name)?
                        .iter()
                        .zip(&fixes)
                        .map(|(old, fix)| fix.map(pick).or(old))
                        .collect())
                };
            let typid = fixed("atttypid", |t| t.0)?;
            let typmod = fixed("atttypmod", |t| t.1)?;
            let ndims = fixed("attndims", |t| t.2)?;
            let schema = batch.schema();
            let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
            for (name, values) in [
                ("atttypid", typid),
                ("atttypmod", typmod),
                ("attndims", ndims),
            ] {
                let (index, field) = schema
                    .column_with_name(name)
                    .ok_or_else(|| DataFusionError::Internal(format!("no column {name}")))?;
                let array: ArrayRef = Arc::new(Int32Array::from(values));
                columns[index] = arrow::compute::cast(&array, field.data_type())?;
            }
            out.push(RecordBatch::try_new(schema, columns)?);
        }
        Ok(out)
    }
}

#[async_trait]
impl TableProvider for PgAttribute {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let batches = self.corrected(state).await?;
        let table = MemTable::try_new(self.schema(), vec![batches])?;
        table.scan(state, projection, filters, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{Field, TimeUnit};

    #[test]
    fn lake_types_map_to_postgresql_attributes() {
        let list = DataType::List(Arc::new(Field::new("item", DataType::Int64, true)));
        assert_eq!(pg_attribute_type(&list), (1016, -1, 1));
        assert_eq!(
            pg_attribute_type(&DataType::Decimal128(12, 2)),
            (1700, (12 << 16 | 2) + 4, 0)
        );
        let tz = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        assert_eq!(pg_attribute_type(&tz), (1184, -1, 0));
        let naive = DataType::Timestamp(TimeUnit::Microsecond, None);
        assert_eq!(pg_attribute_type(&naive).0, 1114);
        assert_eq!(pg_attribute_type(&DataType::Utf8View).0, 25);
    }
}
