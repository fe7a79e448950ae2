//! The SQL engine: a DataFusion session over the lake.
//!
//! Every Delta table of the lake is registered under its layer's schema (`bronze`, `silver`, `gold`,
//! `quarantine`), views are registered from their compiled SQL, and staged model output lives in the
//! `staging` schema while its checks run. User-facing queries go through [`Engine::query`], which refuses
//! DDL, DML, statements and anything that would read files outside the lake.
//!
//! A registered table is pinned to the Delta version it was loaded at. This process re-registers
//! what it writes; [`Engine::sync_lake`] picks up what other processes wrote (new tables, new
//! versions, dropped tables), so that several processes over one lake answer alike.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use sluice_engine::catalog::{
    CatalogProvider, MemTable, MemoryCatalogProvider, MemorySchemaProvider, TableProvider,
};
use sluice_engine::session::{
    lake_config, plan_read_only, replace_table, runtime_env, session_builder,
};
use sluice_engine::{
    DataFrame, EngineOptions, SendableRecordBatchStream, SessionContext, TableReference,
};
use sluice_lake::{Lake, TableId};

use crate::compiled::{CompiledProject, Materialized};
use crate::dialect::Dialect;
use crate::error::{Result, TransformError};
use crate::guard::{SqlLimits, check_sql};
use crate::relation::{CATALOG, STAGING_SCHEMA, sql_name};
use crate::time_travel::{TIME_TRAVEL_SCHEMA, TimeTravel, TimeTravelSchema};

mod distributed;

/// Schemas every session has.
pub const SCHEMAS: [&str; 5] = ["bronze", "silver", "gold", "quarantine", STAGING_SCHEMA];

/// The schema of unqualified table names.
const DEFAULT_SCHEMA: &str = "gold";

/// A DataFusion session over one lake.
#[derive(Clone)]
pub struct Engine {
    ctx: SessionContext,
    lake: Lake,
    /// The project's SQL dialect (crate::dialect).
    dialect: Dialect,
    /// The Delta version each registered lake table is pinned to.
    versions: Arc<Mutex<BTreeMap<TableId, u64>>>,
    /// Earlier versions read with `AS OF` (crate::time_travel).
    time_travel: Arc<TimeTravelSchema>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("lake", &self.lake.root().as_str())
            .finish()
    }
}

impl Engine {
    /// A session with every lake table registered, and the project's views when a project is given.
    pub async fn open(lake: &Lake, project: Option<&CompiledProject>) -> Result<Engine> {
        Self::open_with(lake, project, EngineOptions::default()).await
    }

    /// [`Engine::open`] with memory limits. Every plan of the session runs on the
    /// [`sluice_engine::query_runtime`] (see [`sluice_engine::isolate`]); spills go to the OS temporary
    /// folder.
    pub async fn open_with(
        lake: &Lake,
        project: Option<&CompiledProject>,
        options: EngineOptions,
    ) -> Result<Engine> {
        let runtime = runtime_env(&options).map_err(|e| TransformError::Query(e.to_string()))?;
        let builder = session_builder(
            lake_config(CATALOG, DEFAULT_SCHEMA),
            runtime,
            options.query_memory_limit,
        );
        // A project written for a warehouse gets that warehouse's semantics (crate::dialect).
        let dialect = project.map(|p| p.dialect).unwrap_or_default();
        let state = dialect.build_state(builder);
        let ctx = SessionContext::new_with_state(state);
        // Staged model output is read by file URL: the session must know the lake's store.
        if let Some((url, store)) = lake.root_object_store() {
            ctx.runtime_env().register_object_store(&url, store);
        }
        let catalog = MemoryCatalogProvider::new();
        for s in SCHEMAS {
            catalog
                .register_schema(s, Arc::new(MemorySchemaProvider::new()))
                .map_err(|e| TransformError::Query(e.to_string()))?;
        }
        let time_travel = Arc::new(TimeTravelSchema::new(lake.clone()));
        catalog
            .register_schema(TIME_TRAVEL_SCHEMA, time_travel.clone())
            .map_err(|e| TransformError::Query(e.to_string()))?;
        ctx.register_catalog(CATALOG, Arc::new(catalog));
        let engine = Engine {
            ctx,
            lake: lake.clone(),
            dialect,
            versions: Arc::default(),
            time_travel,
        };
        for id in lake.list_tables().await? {
            engine.refresh_table(&id).await?;
        }
        if let Some(p) = project {
            engine.register_views(p).await;
        }
        Ok(engine)
    }

    /// The lake behind the session.
    pub fn lake(&self) -> &Lake {
        &self.lake
    }

    /// The DataFusion session (for serving adapters).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// This engine planning in `ctx` instead of its own session (a serving adapter's session over
    /// the same lake, such as a principal's filtered catalog); the pinned versions and time travel
    /// are shared.
    pub fn with_session(&self, ctx: SessionContext) -> Engine {
        Engine {
            ctx,
            ..self.clone()
        }
    }

    /// (Re-)registers one lake table at its latest version. A registered provider is pinned to the
    /// version it was built from, so this runs after every write.
    pub async fn refresh_table(&self, id: &TableId) -> Result<()> {
        let (schema, table) = sql_name(id);
        let reference = TableReference::partial(schema, table);
        match self.lake.versioned_provider(id).await? {
            Some((version, provider)) => {
                self.replace_table(reference, provider)?;
                self.pinned().insert(id.clone(), version);
            }
            None => {
                let _ = self.ctx.deregister_table(reference);
                self.pinned().remove(id);
            }
        }
        Ok(())
    }

    /// Brings the session up to the lake's latest commits, including those of other processes:
    /// registers new tables, re-registers tables with a newer version, drops tables that are gone,
    /// and (when anything changed and `project` is given) registers the project's views again over
    /// the new versions. Returns how many tables changed. Costs one listing of the layout folders
    /// and one short listing of each table's Delta log.
    pub async fn sync_lake(&self, project: Option<&CompiledProject>) -> Result<usize> {
        let tables = self.lake.list_tables().await?;
        let known = self.pinned().clone();
        let mut changed = 0;
        for id in &tables {
            let have = known.get(id).copied();
            if self.lake.latest_version(id, have).await? != have {
                self.refresh_table(id).await?;
                changed += 1;
            }
        }
        for gone in known.keys().filter(|id| !tables.contains(id)) {
            self.refresh_table(gone).await?;
            changed += 1;
        }
        if changed > 0
            && let Some(p) = project
        {
            self.register_views(p).await;
        }
        Ok(changed)
    }

    fn pinned(&self) -> std::sync::MutexGuard<'_, BTreeMap<TableId, u64>> {
        // The map is only ever replaced entry by entry: a panic elsewhere leaves it usable.
        self.versions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn replace_table(
        &self,
        reference: TableReference,
        provider: Arc<dyn TableProvider>,
    ) -> Result<()> {
        replace_table(&self.ctx, reference, provider)
            .map_err(|e| TransformError::Query(e.to_string()))
    }

    /// Registers every `view` model of the project, upstream first; a view whose inputs do not exist yet
    /// is skipped (it is registered again after its inputs are built).
    pub async fn register_views(&self, project: &CompiledProject) {
        let Ok(order) = project.graph.topological_order() else {
            return;
        };
        for name in order {
            if let Some(m) = project.models.get(&name)
                // Ephemeral models are also readable as views (for `sluice test` and ad-hoc queries).
                && matches!(m.config.materialized, Materialized::View | Materialized::Ephemeral)
                && let Err(e) = self.register_view(&m.relation, &m.sql).await
            {
                tracing::debug!(view = %m.relation, error = %e, "view not registered yet");
            }
        }
    }

    /// Registers `relation` (`schema.name`) as a view over `sql`.
    pub async fn register_view(&self, relation: &str, sql: &str) -> Result<()> {
        let df = plan_read_only(&self.ctx, sql)
            .await
            .map_err(|e| TransformError::Query(e.to_string()))?;
        let view = df.into_view();
        self.replace_table(TableReference::from(relation), view)
    }

    /// Registers in-memory batches as `relation` (used for staged model output).
    pub fn register_batches(
        &self,
        relation: &str,
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    ) -> Result<()> {
        let table = MemTable::try_new(schema, vec![batches])
            .map_err(|e| TransformError::Query(e.to_string()))?;
        self.replace_table(TableReference::from(relation), Arc::new(table))
    }

    /// Registers a table provider as `relation` (used for staged model output read from files).
    pub fn register_provider(
        &self,
        relation: &str,
        provider: Arc<dyn TableProvider>,
    ) -> Result<()> {
        self.replace_table(TableReference::from(relation), provider)
    }

    /// Removes a registered relation (ignored when absent).
    pub fn deregister(&self, relation: &str) {
        let _ = self.ctx.deregister_table(TableReference::from(relation));
    }

    /// Plans read-only SQL (queries only).
    pub async fn plan(&self, sql: &str) -> Result<DataFrame> {
        self.plan_within(sql, &SqlLimits::default()).await
    }

    /// [`Engine::plan`] with explicit bounds on the SQL text (checked before parsing).
    pub async fn plan_within(&self, sql: &str, limits: &SqlLimits) -> Result<DataFrame> {
        check_sql(sql, limits).map_err(|e| TransformError::Limit(e.to_string()))?;
        check_no_file_access(sql)?;
        let sql = self.time_travel(sql).await?;
        let df = plan_read_only(&self.ctx, &sql).await.map_err(|e| {
            let msg = e.to_string();
            if msg.contains("not supported")
                && (msg.contains("DDL") || msg.contains("DML") || msg.contains("Statement"))
            {
                TransformError::ReadOnly(format!(
                    "{msg}; only queries (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN) are allowed"
                ))
            } else {
                TransformError::Query(msg)
            }
        })?;
        if self.dialect.rewrites() {
            analyzed(df)
        } else {
            Ok(df)
        }
    }

    /// `sql` with its versioned tables (`FROM gold.x VERSION AS OF 3`, `TIMESTAMP AS OF '...'`)
    /// replaced by tables of the `_time_travel` schema at those versions; unchanged when it has none.
    /// [`Engine::plan`] calls it; a serving adapter that plans in a session of its own (the
    /// PostgreSQL wire) calls it before handing the SQL on. See [`crate::time_travel`].
    pub async fn time_travel<'s>(&self, sql: &'s str) -> Result<Cow<'s, str>> {
        let resolve = |schema: &str, table: &str| {
            self.pinned()
                .keys()
                .find(|id| {
                    let (s, t) = sql_name(id);
                    s == schema && t == table
                })
                .cloned()
        };
        TimeTravel {
            schema: &self.time_travel,
            resolve: &resolve,
            default_schema: DEFAULT_SCHEMA,
        }
        .rewrite(sql)
        .await
    }

    /// Runs read-only SQL and collects the result.
    pub async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        self.plan(sql)
            .await?
            .collect()
            .await
            .map_err(|e| TransformError::Query(e.to_string()))
    }

    /// Runs read-only SQL as a stream of batches (bounded memory for large results).
    pub async fn query_stream(&self, sql: &str) -> Result<SendableRecordBatchStream> {
        self.plan(sql)
            .await?
            .execute_stream()
            .await
            .map_err(|e| TransformError::Query(e.to_string()))
    }
}

/// `df` with its plan analyzed, so that its schema has the types the dialect's rewrites give (an
/// integer division that is a `DOUBLE` here): materializations take the output schema from the
/// DataFrame, and the batches it produces must match it. Analyzing again at execution changes no
/// value (every rewrite is idempotent).
fn analyzed(df: DataFrame) -> Result<DataFrame> {
    let (state, plan) = df.into_parts();
    let plan = state
        .analyzer()
        .execute_and_check(plan, state.config_options(), |_, _| {})
        .map_err(|e| TransformError::Query(e.to_string()))?;
    Ok(DataFrame::new(state, plan))
}

/// DataFusion can read a file named in a FROM clause when URL tables are enabled (they are not here), and
/// a few table functions read files. Both are refused before planning, so the API cannot be used to read
/// the server's file system.
fn check_no_file_access(sql: &str) -> Result<()> {
    let lower = sql.to_ascii_lowercase();
    for f in [
        "read_csv",
        "read_parquet",
        "read_json",
        "read_avro",
        "read_arrow",
    ] {
        if lower.contains(&format!("{f}(")) || lower.contains(&format!("{f} (")) {
            return Err(TransformError::ReadOnly(format!(
                "function `{f}` reads files and is not allowed; query lake tables instead"
            )));
        }
    }
    Ok(())
}

/// Formats batches as a text table (for the CLI and error samples).
pub fn pretty(batches: &[RecordBatch]) -> String {
    arrow::util::pretty::pretty_format_batches(batches)
        .map(|d| d.to_string())
        .unwrap_or_else(|e| format!("<cannot format: {e}>"))
}

#[cfg(test)]
mod sync_tests {
    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};
    use sluice_lake::WriteSpec;

    use super::*;

    async fn append(lake: &Lake, id: &TableId, values: Vec<i64>) {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(values))]).unwrap();
        lake.write(id, vec![batch], &WriteSpec::append())
            .await
            .unwrap();
    }

    async fn count(engine: &Engine, sql: &str) -> std::result::Result<usize, TransformError> {
        let batches = engine.query(sql).await?;
        Ok(batches.iter().map(RecordBatch::num_rows).sum())
    }

    /// Two sessions over one lake, as two processes have: what one writes, the other reads after
    /// a sync, and a sync with nothing new changes nothing.
    #[tokio::test]
    async fn sync_picks_up_another_writers_commits() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let reader = Engine::open(&lake, None).await.unwrap();
        let id = TableId::silver("events");

        append(&lake, &id, vec![1, 2]).await;
        assert!(count(&reader, "select * from silver.events").await.is_err());
        assert_eq!(reader.sync_lake(None).await.unwrap(), 1);
        assert_eq!(
            count(&reader, "select * from silver.events").await.unwrap(),
            2
        );
        assert_eq!(reader.sync_lake(None).await.unwrap(), 0);

        append(&lake, &id, vec![3]).await;
        assert_eq!(
            count(&reader, "select * from silver.events").await.unwrap(),
            2
        );
        assert_eq!(reader.sync_lake(None).await.unwrap(), 1);
        assert_eq!(
            count(&reader, "select * from silver.events").await.unwrap(),
            3
        );

        std::fs::remove_dir_all(dir.path().join("silver/events")).unwrap();
        assert_eq!(reader.sync_lake(None).await.unwrap(), 1);
        assert!(count(&reader, "select * from silver.events").await.is_err());
    }
}
