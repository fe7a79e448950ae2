//! Planning a model's SELECT for a distributed engine (Apache DataFusion Ballista).
//!
//! The SQL is planned here, in a Ballista client session built like the local one (same catalog and
//! schemas, the project's dialect, the same guards before parsing), and executed by the cluster: the
//! returned data frame streams the result back, and the caller stages, checks and commits it as it
//! does for local execution (write, audit, publish do not change).
//!
//! **How executors read the lake.** A Delta table provider cannot be shipped in a plan (Ballista
//! serialises plans with DataFusion's protobuf codec, which knows no Delta scan), and Ballista's
//! stock scheduler and executors know nothing of Delta. So each lake table is registered as a
//! *listing table over the Parquet files of the version this engine pinned* (the file list read
//! from the Delta log: [`sluice_lake::Lake::version_files`]): a plan the default codec carries, which
//! any Ballista executor that can reach the files reads — a local folder on one machine, the same
//! object store on several. The versions are those the local session reads, so both engines see the
//! same snapshot of every input. A partitioned table (whose partition values live in the Delta log,
//! not in its files) becomes a view: one listing table per partition, each with its partition values
//! as constant columns, in a `UNION ALL`. Views of the project are registered over these tables as
//! locally. What cannot run distributed is refused with a clear error: `VERSION AS OF` (time
//! travel), tables that need the Delta log to be read (deletion vectors, column mapping).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use sluice_core::engine_spec::{BallistaSpec, EngineSpec};
use sluice_engine::catalog::{
    CatalogProvider, MemoryCatalogProvider, MemorySchemaProvider, TableProvider,
};
use sluice_engine::distributed::{
    ballista_config, check_reachable, remote_context, table_references,
};
use sluice_engine::expr::{Expr, ScalarValue, cast, ident, lit};
use sluice_engine::extension::tree_node::{TreeNode, TreeNodeRecursion};
use sluice_engine::plan::LogicalPlan;
use sluice_engine::session::{
    lake_config, parquet_files, plan_read_only, replace_table, runtime_env, session_builder,
};
use sluice_engine::{DataFrame, EngineOptions, SessionContext, TableReference};
use sluice_lake::{TableId, VersionFiles};

use super::{DEFAULT_SCHEMA, Engine, SCHEMAS, analyzed, check_no_file_access};
use crate::compiled::{CompiledProject, Materialized};
use crate::error::{Result, TransformError};
use crate::guard::{SqlLimits, check_sql};
use crate::relation::{CATALOG, sql_name};

impl Engine {
    /// Plans read-only `sql` to run on `engine`: [`Engine::plan`] for `local`; for a Ballista
    /// cluster, a data frame whose execution runs there, over the table versions this engine has
    /// pinned and the views of `project` (see the module doc). The scheduler must accept a
    /// connection within the spec's `connect_timeout`, else [`TransformError::EngineUnreachable`].
    pub async fn plan_on(
        &self,
        engine: &EngineSpec,
        sql: &str,
        project: Option<&CompiledProject>,
    ) -> Result<DataFrame> {
        match engine {
            EngineSpec::Local => self.plan(sql).await,
            EngineSpec::Ballista(spec) => self.plan_distributed(spec, sql, project).await,
        }
    }

    async fn plan_distributed(
        &self,
        spec: &BallistaSpec,
        sql: &str,
        project: Option<&CompiledProject>,
    ) -> Result<DataFrame> {
        check_sql(sql, &SqlLimits::default()).map_err(|e| TransformError::Limit(e.to_string()))?;
        check_no_file_access(sql)?;
        if let std::borrow::Cow::Owned(_) = self.time_travel(sql).await? {
            return Err(TransformError::Distributed(
                "`VERSION AS OF` / `TIMESTAMP AS OF` cannot run on a distributed engine; run this \
                 model with `engine: local`"
                    .into(),
            ));
        }
        check_reachable(&spec.host, spec.port, spec.connect_timeout)
            .await
            .map_err(TransformError::EngineUnreachable)?;
        let ctx = self.remote_session(spec, sql, project).await?;
        let df = plan_read_only(&ctx, sql)
            .await
            .map_err(|e| TransformError::Query(e.to_string()))?;
        if !self.dialect.rewrites() {
            return Ok(df);
        }
        let df = analyzed(df)?;
        // A dialect's rewrites call Sluice's own functions, which Ballista's scheduler and
        // executors do not have: refuse here rather than with the scheduler's "no UDF named".
        if let Some(name) = sluice_function(df.logical_plan()) {
            return Err(TransformError::Distributed(format!(
                "the model needs `{name}`, a function of the `{}` dialect's rewrites that Ballista \
                 executors do not have; run it with `engine: local`",
                self.dialect
            )));
        }
        Ok(df)
    }

    /// A Ballista client session with this engine's catalog: the pinned lake tables `sql` reads
    /// (directly or through views) as Parquet files, and the project's views over them.
    async fn remote_session(
        &self,
        spec: &BallistaSpec,
        sql: &str,
        project: Option<&CompiledProject>,
    ) -> Result<SessionContext> {
        let query = |e: sluice_engine::DataFusionError| TransformError::Query(e.to_string());
        let config = ballista_config(lake_config(CATALOG, DEFAULT_SCHEMA), spec.connect_timeout);
        let runtime = runtime_env(&EngineOptions::default()).map_err(query)?;
        let state = self
            .dialect
            .build_state(session_builder(config, runtime, None));
        let ctx = remote_context(state, &spec.host, spec.port).map_err(query)?;
        // The client reads file footers while planning; an object-store lake needs its store.
        if let Some((url, store)) = self.lake.root_object_store() {
            ctx.runtime_env().register_object_store(&url, store);
        }
        let catalog = MemoryCatalogProvider::new();
        for s in SCHEMAS {
            catalog
                .register_schema(s, Arc::new(MemorySchemaProvider::new()))
                .map_err(query)?;
        }
        ctx.register_catalog(CATALOG, Arc::new(catalog));
        // Only the tables the SQL reads (through the project's views too) are listed and
        // registered: one Delta log read each.
        let pinned: BTreeMap<TableId, u64> = self.pinned().clone();
        let views: BTreeMap<&str, &str> = project
            .map(|p| {
                p.models
                    .values()
                    .filter(|m| {
                        matches!(
                            m.config.materialized,
                            Materialized::View | Materialized::Ephemeral
                        )
                    })
                    .map(|m| (m.relation.as_str(), m.sql.as_str()))
                    .collect()
            })
            .unwrap_or_default();
        let mut pending = vec![sql.to_string()];
        let mut needed: BTreeSet<TableId> = BTreeSet::new();
        let mut seen_views: BTreeSet<String> = BTreeSet::new();
        while let Some(text) = pending.pop() {
            for reference in table_references(&ctx, &text).map_err(query)? {
                let schema = reference.schema().unwrap_or(DEFAULT_SCHEMA).to_string();
                let name = reference.table().to_string();
                let relation = format!("{schema}.{name}");
                if let Some(view_sql) = views.get(relation.as_str()) {
                    if seen_views.insert(relation) {
                        pending.push((*view_sql).to_string());
                    }
                    continue;
                }
                if let Some(id) = pinned
                    .keys()
                    .find(|id| sql_name(id) == (schema.clone(), name.clone()))
                {
                    needed.insert(id.clone());
                }
            }
        }
        for id in needed {
            let version = pinned[&id];
            let files = self.lake.version_files(&id, version).await?;
            let provider = file_table(&ctx, &files).map_err(|e| {
                TransformError::Distributed(format!("cannot scan {id} as files: {e}"))
            })?;
            let (schema, table) = sql_name(&id);
            replace_table(&ctx, TableReference::partial(schema, table), provider).map_err(query)?;
        }
        if let Some(p) = project {
            register_views(&ctx, p).await;
        }
        Ok(ctx)
    }
}

/// The first of Sluice's own functions (`sluice_…`, the dialect rewrites) that `plan` calls.
fn sluice_function(plan: &LogicalPlan) -> Option<String> {
    let mut found = None;
    let mut visit = |e: &Expr| {
        let name = match e {
            Expr::ScalarFunction(f) => Some(f.func.name()),
            Expr::AggregateFunction(f) => Some(f.func.name()),
            Expr::WindowFunction(w) => Some(w.fun.name()),
            _ => None,
        };
        if let Some(name) = name.filter(|n| n.starts_with("sluice_")) {
            found = Some(name.to_string());
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    };
    // Walking a plan in memory cannot fail: the closure never returns an error.
    let _ = plan.apply_with_subqueries(|node| node.apply_expressions(|e| e.apply(&mut visit)));
    found
}

/// A table over the files of one version: a listing table, or (partitioned) a `UNION ALL` of one
/// listing table per partition with the partition values as constant columns.
fn file_table(
    ctx: &SessionContext,
    files: &VersionFiles,
) -> sluice_engine::DfResult<Arc<dyn TableProvider>> {
    let urls = |group: &[&sluice_lake::DataFile]| -> Vec<String> {
        group.iter().map(|f| f.url.clone()).collect()
    };
    if files.partition_columns.is_empty() {
        let all: Vec<&sluice_lake::DataFile> = files.files.iter().collect();
        return parquet_files(files.schema.clone(), &urls(&all));
    }
    // The files hold every column but the partition columns.
    let data_schema: SchemaRef = Arc::new(Schema::new(
        files
            .schema
            .fields()
            .iter()
            .filter(|f| !files.partition_columns.contains(f.name()))
            .cloned()
            .collect::<Vec<_>>(),
    ));
    let mut groups: BTreeMap<Vec<Option<String>>, Vec<&sluice_lake::DataFile>> = BTreeMap::new();
    for f in &files.files {
        let key = files
            .partition_columns
            .iter()
            .map(|c| f.partition_values.get(c).cloned().flatten())
            .collect();
        groups.entry(key).or_default().push(f);
    }
    let mut union: Option<DataFrame> = None;
    for (values, group) in &groups {
        let part = ctx.read_table(parquet_files(data_schema.clone(), &urls(group))?)?;
        let columns: Vec<Expr> = files
            .schema
            .fields()
            .iter()
            .map(|field| {
                match files
                    .partition_columns
                    .iter()
                    .position(|c| c == field.name())
                {
                    Some(i) => {
                        let value = match &values[i] {
                            Some(text) => lit(text.clone()),
                            None => lit(ScalarValue::Null),
                        };
                        cast(value, field.data_type().clone()).alias(field.name())
                    }
                    None => ident(field.name()),
                }
            })
            .collect();
        let part = part.select(columns)?;
        union = Some(match union {
            Some(u) => u.union(part)?,
            None => part,
        });
    }
    match union {
        Some(df) => Ok(df.into_view()),
        // A partitioned table with no file: an empty table of its schema.
        None => parquet_files(files.schema.clone(), &[]),
    }
}

/// Registers every view (and ephemeral) model of `project` in `ctx`, upstream first; one whose
/// inputs are missing is skipped, as in the local session.
async fn register_views(ctx: &SessionContext, project: &CompiledProject) {
    let Ok(order) = project.graph.topological_order() else {
        return;
    };
    for name in order {
        let Some(m) = project.models.get(&name) else {
            continue;
        };
        if !matches!(
            m.config.materialized,
            Materialized::View | Materialized::Ephemeral
        ) {
            continue;
        }
        let registered = match plan_read_only(ctx, &m.sql).await {
            Ok(df) => replace_table(
                ctx,
                TableReference::from(m.relation.as_str()),
                df.into_view(),
            ),
            Err(e) => Err(e),
        };
        if let Err(e) = registered {
            tracing::debug!(view = %m.relation, error = %e, "view not registered on the distributed session");
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field};
    use sluice_lake::{Lake, WriteSpec};

    use super::*;

    #[tokio::test]
    async fn an_unreachable_scheduler_fails_the_plan_quickly() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let engine = Engine::open(&lake, None).await.unwrap();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let spec = EngineSpec::from_value(&serde_json::json!({
            "kind": "ballista", "url": format!("df://127.0.0.1:{port}"), "connect_timeout": "2s"
        }))
        .unwrap();
        let e = engine.plan_on(&spec, "SELECT 1", None).await.unwrap_err();
        assert!(matches!(e, TransformError::EngineUnreachable(_)), "{e}");
        assert!(e.is_transient());
        assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    }

    /// A dialect rewrite that calls one of Sluice's functions is refused before the plan is sent
    /// (the scheduler only needs to accept a connection).
    #[tokio::test]
    async fn a_dialect_function_is_refused_before_the_plan_is_sent() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let spec = EngineSpec::from_value(&serde_json::json!({
            "kind": "ballista", "url": format!("df://127.0.0.1:{port}")
        }))
        .unwrap();
        let sql = "SELECT a / b AS q, a + b AS s FROM (VALUES (7, 2)) t(a, b)";
        let mut refused = Vec::new();
        for dialect in [
            crate::Dialect::BigQuery,
            crate::Dialect::Databricks,
            crate::Dialect::Snowflake,
        ] {
            let mut engine = Engine::open(&lake, None).await.unwrap();
            engine.dialect = dialect;
            if let Err(e) = engine.plan_on(&spec, sql, None).await {
                assert!(matches!(e, TransformError::Distributed(_)), "{e}");
                assert!(e.to_string().contains("`sluice_"), "{e}");
                refused.push(dialect);
            }
        }
        assert!(!refused.is_empty());
        // Without a dialect, the same SQL plans (it would run on the cluster).
        let engine = Engine::open(&lake, None).await.unwrap();
        engine.plan_on(&spec, sql, None).await.unwrap();
    }

    /// A partitioned table read through its files (as executors read it) has the rows, the
    /// partition values and the types the Delta provider gives.
    #[tokio::test]
    async fn a_partitioned_table_reads_the_same_through_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("day", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3])),
                Arc::new(StringArray::from(vec![Some("a"), Some("b"), None])),
            ],
        )
        .unwrap();
        let id = TableId::gold("by_day");
        let spec = WriteSpec {
            partition_by: vec!["day".into()],
            ..WriteSpec::append()
        };
        lake.write(&id, vec![batch], &spec).await.unwrap();
        let engine = Engine::open(&lake, None).await.unwrap();
        let files = lake.version_files(&id, 0).await.unwrap();
        let ctx = SessionContext::new();
        ctx.register_table("t", file_table(&ctx, &files).unwrap())
            .unwrap();
        let sql = |table: &str| format!("SELECT id, day FROM {table} ORDER BY id");
        let via_files = ctx.sql(&sql("t")).await.unwrap().collect().await.unwrap();
        let via_delta = engine.query(&sql("gold.by_day")).await.unwrap();
        assert_eq!(crate::pretty(&via_files), crate::pretty(&via_delta));
        assert!(
            crate::pretty(&via_files).contains("| 2  | b   |"),
            "{}",
            crate::pretty(&via_files)
        );
    }
}
