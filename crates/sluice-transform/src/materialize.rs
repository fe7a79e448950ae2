//! Materializations: how a model's SELECT becomes a published asset.
//!
//! Every materialization works in two steps so that checks can run between them (write, audit, publish):
//! [`Materialization::stage`] computes the new data and registers it as `staging.<model>`, where checks
//! read it; [`Materialization::publish`] makes it visible in one atomic Delta commit. A model whose error
//! checks fail is never published, so its readers keep the previous version.
//!
//! Tables and incremental models stage in bounded memory: the output streams into Parquet files of
//! the model's table that no commit names yet ([`sluice_lake::stage`]), the checks read those files,
//! and publishing commits them (or merges them); [`discard`] deletes them when checks fail. Seeds,
//! snapshots, CDC merges, time-partitioned windows and models with `partition_by` still collect
//! their output in memory.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use sluice_lake::{StagedFiles, WriteMode, WriteOutcome, WriteSpec};

use crate::compiled::{CompiledModel, CompiledProject, IncrementalStrategy, Materialized};
use crate::engine::Engine;
use crate::error::{Result, TransformError};
use crate::relation::{model_table, staged_relation};
use crate::render::render;

/// Everything a materialization needs for one model build.
pub struct ModelRun<'a> {
    /// The session over the lake.
    pub engine: &'a Engine,
    /// The project.
    pub project: &'a CompiledProject,
    /// The model.
    pub model: &'a CompiledModel,
    /// Run id, recorded in the commit metadata.
    pub run_id: &'a str,
    /// Idempotency token: the same (model, version) never commits twice, so a retried publish is safe.
    pub txn_version: i64,
    /// Rebuild incremental models from scratch.
    pub full_refresh: bool,
}

/// Model output computed but not yet visible.
pub struct Staged {
    /// Where checks can read it (`staging.<model>`).
    pub relation: String,
    /// The rendered SQL that produced it.
    pub sql: String,
    /// Row count of the staged output.
    pub rows: u64,
    /// Output schema.
    pub schema: SchemaRef,
    /// The rows, when collected in memory (empty for views and for output staged as files).
    pub batches: Vec<RecordBatch>,
    /// Whether this build adds to an existing table (incremental) rather than replacing it.
    pub is_incremental: bool,
    /// The output as uncommitted Parquet files of the model's table, when it was streamed there.
    pub files: Option<StagedFiles>,
}

/// The result of publishing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// Rows written (for a view: rows it returns now).
    pub rows: u64,
    /// Delta version committed, when one was.
    pub version: Option<i64>,
}

/// One way of materializing a model.
#[async_trait]
pub trait Materialization: Send + Sync {
    /// The config value that selects it.
    fn name(&self) -> &'static str;
    /// Computes the new data and registers it at [`Staged::relation`].
    async fn stage(&self, run: &ModelRun<'_>) -> Result<Staged>;
    /// Makes staged data visible atomically.
    async fn publish(&self, run: &ModelRun<'_>, staged: Staged) -> Result<Published>;
}

mod cdc_merge;
mod ephemeral;
pub mod partition;
mod seed;
mod snapshot;

pub use cdc_merge::CdcMergeMaterialization;
pub use ephemeral::EphemeralMaterialization;
pub use seed::{SeedMaterialization, sql_type};
pub use snapshot::SnapshotMaterialization;

mod registry;
mod streamed;

pub use streamed::discard;

pub use registry::{MATERIALIZATIONS, MaterializationKind, dbt_accepts};

/// The behaviour of a materialization (from its registry entry).
pub fn materialization_for(m: Materialized) -> &'static dyn Materialization {
    MATERIALIZATIONS[m as usize].behaviour
}

/// Renders the model for this run and collects its output.
async fn stage_rows(run: &ModelRun<'_>, is_incremental: bool) -> Result<Staged> {
    let m = run.model;
    let rendered = render(
        &m.raw_sql,
        &m.path,
        &run.project.scope,
        Some(&m.relation),
        is_incremental,
    )?;
    let sql_err = |e: TransformError| TransformError::Sql {
        path: m.path.clone(),
        model: m.name.clone(),
        message: match e {
            TransformError::Query(msg) | TransformError::ReadOnly(msg) => msg,
            other => other.to_string(),
        },
    };
    let engine = run.project.engine_of(m);
    if let sluice_core::engine_spec::EngineSpec::Ballista(b) = engine {
        tracing::info!(model = %m.name, scheduler = %b.url, "running the model's SQL on Ballista");
    }
    let df = run
        .engine
        .plan_on(engine, &rendered.sql, Some(run.project))
        .await
        .map_err(|e| match e {
            // Kept as they are: an unreachable engine is worth a retry, and its limits are not the
            // model's SQL errors.
            TransformError::EngineUnreachable(_)
            | TransformError::Distributed(_)
            | TransformError::Lake(_) => e,
            other => sql_err(other),
        })?;
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    if m.config.partition_by.is_empty() {
        return streamed::stage_files(run, df, schema, rendered.sql, is_incremental).await;
    }
    let batches = df
        .collect()
        .await
        .map_err(|e| sql_err(TransformError::Query(e.to_string())))?;
    let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
    let relation = staged_relation(&m.name);
    run.engine
        .register_batches(&relation, schema.clone(), batches.clone())?;
    Ok(Staged {
        relation,
        sql: rendered.sql,
        rows,
        schema,
        batches,
        is_incremental,
        files: None,
    })
}

fn write_spec(run: &ModelRun<'_>, mode: WriteMode) -> WriteSpec {
    let mut metadata = serde_json::Map::new();
    metadata.insert("sluice.run_id".into(), run.run_id.into());
    metadata.insert("sluice.model".into(), run.model.name.clone().into());
    WriteSpec {
        mode,
        partition_by: run.model.config.partition_by.clone(),
        txn: Some((format!("sluice:model:{}", run.model.name), run.txn_version)),
        metadata,
        merge_schema: false,
    }
}

async fn publish_rows(run: &ModelRun<'_>, staged: Staged, mode: WriteMode) -> Result<Published> {
    if staged.files.is_some() {
        return streamed::publish_files(run, staged, mode).await;
    }
    let id = model_table(run.model.layer, &run.model.name);
    let batches = if staged.batches.is_empty() {
        // An empty result still publishes an empty table with the model's columns.
        vec![RecordBatch::new_empty(staged.schema.clone())]
    } else {
        staged.batches
    };
    let outcome = run
        .engine
        .lake()
        .write(&id, batches, &write_spec(run, mode))
        .await?;
    run.engine.deregister(&staged.relation);
    run.engine.refresh_table(&id).await?;
    Ok(match outcome {
        WriteOutcome::Committed { version, rows } => Published {
            rows,
            version: Some(version),
        },
        WriteOutcome::AlreadyCommitted { version } => Published {
            rows: staged.rows,
            version,
        },
        WriteOutcome::Empty => Published {
            rows: 0,
            version: None,
        },
    })
}

/// `materialized: view` — nothing stored; the query runs when read.
pub struct ViewMaterialization;

#[async_trait]
impl Materialization for ViewMaterialization {
    fn name(&self) -> &'static str {
        "view"
    }

    async fn stage(&self, run: &ModelRun<'_>) -> Result<Staged> {
        let m = run.model;
        let rendered = render(
            &m.raw_sql,
            &m.path,
            &run.project.scope,
            Some(&m.relation),
            false,
        )?;
        let relation = staged_relation(&m.name);
        run.engine
            .register_view(&relation, &rendered.sql)
            .await
            .map_err(|e| TransformError::Sql {
                path: m.path.clone(),
                model: m.name.clone(),
                message: e.to_string(),
            })?;
        let df = run
            .engine
            .plan(&format!("SELECT * FROM {relation}"))
            .await?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let rows = df.count().await.map_err(|e| TransformError::Sql {
            path: m.path.clone(),
            model: m.name.clone(),
            message: e.to_string(),
        })? as u64;
        Ok(Staged {
            relation,
            sql: rendered.sql,
            rows,
            schema,
            batches: Vec::new(),
            is_incremental: false,
            files: None,
        })
    }

    async fn publish(&self, run: &ModelRun<'_>, staged: Staged) -> Result<Published> {
        run.engine
            .register_view(&run.model.relation, &staged.sql)
            .await?;
        run.engine.deregister(&staged.relation);
        Ok(Published {
            rows: staged.rows,
            version: None,
        })
    }
}

/// `materialized: table` — the table is replaced atomically: readers see the old or the new version.
pub struct TableMaterialization;

#[async_trait]
impl Materialization for TableMaterialization {
    fn name(&self) -> &'static str {
        "table"
    }

    async fn stage(&self, run: &ModelRun<'_>) -> Result<Staged> {
        stage_rows(run, false).await
    }

    async fn publish(&self, run: &ModelRun<'_>, staged: Staged) -> Result<Published> {
        publish_rows(run, staged, WriteMode::Overwrite).await
    }
}

/// `materialized: incremental` — only new rows are computed (`is_incremental()` is true once the table
/// exists); they are appended, or merged on `unique_key`.
pub struct IncrementalMaterialization;

#[async_trait]
impl Materialization for IncrementalMaterialization {
    fn name(&self) -> &'static str {
        "incremental"
    }

    async fn stage(&self, run: &ModelRun<'_>) -> Result<Staged> {
        let id = model_table(run.model.layer, &run.model.name);
        let exists = run.engine.lake().exists(&id).await?;
        let staged = stage_rows(run, exists && !run.full_refresh).await?;
        if staged.is_incremental {
            // Checks judge the table as it will be after publishing (existing rows merged with the
            // new ones), not the new rows alone: `unique` must hold across the whole table, and a
            // run that brings no new rows must not fail `row_count`.
            let new_rel = format!("{}__new", staged.relation);
            match &staged.files {
                Some(files) => {
                    let provider = run.engine.lake().staged_provider(files)?;
                    run.engine.register_provider(&new_rel, provider)?;
                }
                None => run.engine.register_batches(
                    &new_rel,
                    staged.schema.clone(),
                    staged.batches.clone(),
                )?,
            }
            let cols: Vec<String> = staged
                .schema
                .fields()
                .iter()
                .map(|f| crate::relation::ident(f.name()))
                .collect();
            let list = cols.join(", ");
            let this = &run.model.relation;
            let kept = match run.model.config.incremental_strategy {
                IncrementalStrategy::Append => format!("SELECT {list} FROM {this}"),
                // delete+insert: the rows whose key comes again are replaced by the new ones.
                IncrementalStrategy::Merge | IncrementalStrategy::DeleteInsert => {
                    let on: Vec<String> = run
                        .model
                        .config
                        .unique_key
                        .iter()
                        .map(|k| {
                            let k = crate::relation::ident(k);
                            format!("n.{k} = t.{k}")
                        })
                        .collect();
                    let t_list = cols
                        .iter()
                        .map(|c| format!("t.{c}"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    format!(
                        "SELECT {t_list} FROM {this} t WHERE NOT EXISTS (SELECT 1 FROM {new_rel} n WHERE {})",
                        on.join(" AND ")
                    )
                }
            };
            let sql = format!("{kept} UNION ALL SELECT {list} FROM {new_rel}");
            run.engine
                .register_view(&staged.relation, &sql)
                .await
                .map_err(|e| TransformError::Sql {
                    path: run.model.path.clone(),
                    model: run.model.name.clone(),
                    message: format!("the new rows do not fit the existing table: {e}"),
                })?;
        }
        Ok(staged)
    }

    async fn publish(&self, run: &ModelRun<'_>, mut staged: Staged) -> Result<Published> {
        if staged.files.is_some() {
            return streamed::publish_incremental(run, staged).await;
        }
        if staged.is_incremental
            && staged.rows > 0
            && run.model.config.incremental_strategy == IncrementalStrategy::DeleteInsert
        {
            // The staged view is the table after the delete and the insert: publish it whole, in
            // one commit (a key may map to several rows, which a merge cannot express).
            staged.batches = run
                .engine
                .query(&format!("SELECT * FROM {}", staged.relation))
                .await
                .map_err(|e| TransformError::Sql {
                    path: run.model.path.clone(),
                    model: run.model.name.clone(),
                    message: e.to_string(),
                })?;
            staged.is_incremental = false;
        }
        let mode = if !staged.is_incremental {
            WriteMode::Overwrite
        } else {
            match run.model.config.incremental_strategy {
                IncrementalStrategy::Append => WriteMode::Append,
                IncrementalStrategy::Merge => WriteMode::Merge {
                    keys: run.model.config.unique_key.clone(),
                },
                IncrementalStrategy::DeleteInsert => WriteMode::Overwrite,
            }
        };
        run.engine.deregister(&format!("{}__new", staged.relation));
        if staged.is_incremental && staged.rows == 0 {
            run.engine.deregister(&staged.relation);
            return Ok(Published {
                rows: 0,
                version: None,
            });
        }
        publish_rows(run, staged, mode).await
    }
}
