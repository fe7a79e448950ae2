//! Building sessions: the one place where a DataFusion session gets Sluice's configuration.
//!
//! Every session that runs user SQL or model builds — the transform engine's, the PostgreSQL wire
//! endpoint's — is made by [`session_builder`], so each has the same guards: plans run on the
//! [`query_runtime`](crate::isolate::query_runtime) within their memory share
//! ([`IsolatingPlanner`]), and calls that would build one enormous value are refused
//! ([`ValueSizeRule`]). What a caller adds on top (a dialect's analyzer rules, its catalogs) goes on
//! the returned builder.

use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::Result as DfResult;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};
use futures::Stream;

use crate::isolate::{EngineOptions, IsolatingPlanner, ValueSizeRule};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;

/// The settings of a session over the lake: `catalog` is the default catalog (not created by
/// DataFusion: the caller registers its own), `schema` the default schema, and `information_schema`
/// is on (clients list tables through it).
pub fn lake_config(catalog: &str, schema: &str) -> SessionConfig {
    SessionConfig::new()
        .with_default_catalog_and_schema(catalog, schema)
        .with_create_default_catalog_and_schema(false)
        .with_information_schema(true)
}

/// The runtime environment of an engine: a memory pool of `options.memory_limit` bytes shared by
/// every query and build of the process (fair shares among spilling operators, so one big sort
/// cannot starve the others); spills go to the OS temporary folder.
pub fn runtime_env(options: &EngineOptions) -> DfResult<Arc<RuntimeEnv>> {
    let mut runtime = RuntimeEnvBuilder::new();
    if let Some(limit) = options.memory_limit {
        runtime = runtime.with_memory_pool(Arc::new(FairSpillPool::new(limit)));
    }
    runtime.build_arc()
}

/// A session builder with `config`, `runtime`, DataFusion's default functions and Sluice's guards
/// (see the module doc); each query may hold `query_memory_limit` bytes of the runtime's pool.
pub fn session_builder(
    config: SessionConfig,
    runtime: Arc<RuntimeEnv>,
    query_memory_limit: Option<usize>,
) -> SessionStateBuilder {
    SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .with_analyzer_rule(Arc::new(ValueSizeRule))
        .with_query_planner(Arc::new(IsolatingPlanner::new(query_memory_limit)))
}

/// SQL options that accept queries only: no DDL, no DML, no statements such as `SET`.
pub fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// Plans `sql` in `ctx` as a query: DDL, DML and statements are refused ([`read_only`]). The data
/// frame runs with `collect` or, in bounded memory, `execute_stream`.
pub async fn plan_read_only(ctx: &SessionContext, sql: &str) -> DfResult<DataFrame> {
    ctx.sql_with_options(sql, read_only()).await
}

/// Registers `provider` as `reference` in `ctx`, replacing a table of that name. A Delta table's
/// provider is pinned to the version it was built from, so a table is registered again after every
/// write.
pub fn replace_table(
    ctx: &SessionContext,
    reference: TableReference,
    provider: Arc<dyn TableProvider>,
) -> DfResult<()> {
    // Absent is fine (the first registration replaces nothing); a schema that does not exist fails
    // at the registration below.
    let _ = ctx.deregister_table(reference.clone());
    ctx.register_table(reference, provider)?;
    Ok(())
}

/// A table over the Parquet files at `urls` (file URLs), read as `schema`: how staged model output
/// that is in no Delta commit yet is read by its checks. No file: an empty table of `schema`.
pub fn parquet_files(schema: SchemaRef, urls: &[String]) -> DfResult<Arc<dyn TableProvider>> {
    if urls.is_empty() {
        return Ok(Arc::new(MemTable::try_new(schema, vec![Vec::new()])?));
    }
    let paths = urls
        .iter()
        .map(ListingTableUrl::parse)
        .collect::<DfResult<Vec<_>>>()?;
    let options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(paths)
        .with_listing_options(options)
        .with_schema(schema);
    Ok(Arc::new(ListingTable::try_new(config)?))
}

/// A record batch stream over `batches`, every batch of `schema` (the form the lake's streamed writes
/// and the serving formats take).
pub fn batch_stream<S>(schema: SchemaRef, batches: S) -> SendableRecordBatchStream
where
    S: Stream<Item = DfResult<RecordBatch>> + Send + 'static,
{
    Box::pin(RecordBatchStreamAdapter::new(schema, batches))
}

#[cfg(test)]
mod tests {
    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::prelude::SessionContext;
    use futures::TryStreamExt;

    use super::*;

    #[tokio::test]
    async fn a_built_session_runs_sql_and_refuses_huge_values() {
        let options = EngineOptions {
            memory_limit: Some(64 << 20),
            query_memory_limit: Some(32 << 20),
        };
        let state = session_builder(
            SessionConfig::new(),
            runtime_env(&options).unwrap(),
            options.query_memory_limit,
        )
        .build();
        let ctx = SessionContext::new_with_state(state);
        let batches = ctx
            .sql("SELECT 1 + 1 AS two")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let two = batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(two.value(0), 2);
        let plan = ctx
            .sql("SELECT 1")
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        assert_eq!(plan.name(), "IsolatedExec");
        let e = ctx
            .sql("SELECT repeat('x', 2000000000)")
            .await
            .and_then(|df| df.into_optimized_plan())
            .unwrap_err()
            .to_string();
        assert!(e.contains("at most"), "{e}");
    }

    #[tokio::test]
    async fn read_only_refuses_ddl() {
        let ctx = SessionContext::new();
        let e = plan_read_only(&ctx, "CREATE TABLE t (a INT)")
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("not supported"), "{e}");
    }

    #[tokio::test]
    async fn a_replaced_table_serves_its_new_rows() {
        use datafusion::datasource::MemTable;
        let ctx = SessionContext::new();
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, false)]));
        for rows in [vec![1], vec![1, 2, 3]] {
            let batch =
                RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(rows))])
                    .unwrap();
            let table = MemTable::try_new(schema.clone(), vec![vec![batch]]).unwrap();
            replace_table(&ctx, TableReference::bare("t"), Arc::new(table)).unwrap();
        }
        let batches = plan_read_only(&ctx, "SELECT count(*) FROM t")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let n = batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(n.value(0), 3);
    }

    #[tokio::test]
    async fn a_batch_stream_yields_its_batches() {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, false)]));
        let batch =
            RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![1, 2]))])
                .unwrap();
        let stream = batch_stream(schema, futures::stream::iter(vec![Ok(batch)]));
        let got: Vec<RecordBatch> = stream.try_collect().await.unwrap();
        assert_eq!(got[0].num_rows(), 2);
    }
}
