//! `materialized: ephemeral` — nothing is stored: models that `ref()` it inline its SQL as a CTE. The
//! node still runs so that the model's checks judge its rows, and its view is registered in the session
//! (never in the lake) so that `sluice test` and ad-hoc queries can read it.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;

use super::{Materialization, ModelRun, Published, Staged};
use crate::error::{Result, TransformError};
use crate::relation::staged_relation;
use crate::render::render;

/// An ephemeral model.
pub struct EphemeralMaterialization;

#[async_trait]
impl Materialization for EphemeralMaterialization {
    fn name(&self) -> &'static str {
        "ephemeral"
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
        let sql_err = |e: TransformError| TransformError::Sql {
            path: m.path.clone(),
            model: m.name.clone(),
            message: e.to_string(),
        };
        let relation = staged_relation(&m.name);
        run.engine
            .register_view(&relation, &rendered.sql)
            .await
            .map_err(sql_err)?;
        let df = run
            .engine
            .plan(&format!("SELECT * FROM {relation}"))
            .await?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let rows = df
            .count()
            .await
            .map_err(|e| sql_err(TransformError::Query(e.to_string())))? as u64;
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
        // Nothing is stored; the view lets `sluice test` and ad-hoc queries read it.
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
