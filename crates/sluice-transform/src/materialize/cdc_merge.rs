//! `materialized: merge` — a current-state table from a change stream (CDC bronze).
//!
//! The model's SELECT returns change rows: the table's columns plus `_op` (`r` snapshot, `c` insert,
//! `u` update, `d` delete, `t` truncate), `_lsn` (commit position) and optionally `_seq` (order
//! within a transaction), as `kind: postgres` with `mode: cdc` lands them. Each build takes the changes
//! at or after the newest `_lsn` already applied, keeps the latest change per `unique_key` (by
//! `_lsn`, then `_seq`), deletes the keys whose latest change is a delete, upserts the others, and
//! drops everything before a truncate. Re-applying a change is harmless (the latest change of a key
//! wins again), which is why the boundary `_lsn` is read again on purpose: snapshot rows share one
//! `_lsn` and may land over several commits. The new table is published in one commit (checks see the
//! whole table first); `_op` and `_seq` are not kept, `_lsn` is.

use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, SchemaRef};
use async_trait::async_trait;
use sluice_lake::WriteMode;

use super::{Materialization, ModelRun, Published, Staged, publish_rows};
use crate::error::{Result, TransformError};
use crate::relation::{ident, model_table, staged_relation};
use crate::render::render;

/// The change-stream merge materialization.
pub struct CdcMergeMaterialization;

/// Columns of a change row that the current-state table does not keep.
const CHANGE_ONLY: [&str; 2] = ["_op", "_seq"];

fn sql_error(run: &ModelRun<'_>, e: TransformError) -> TransformError {
    TransformError::Sql {
        path: run.model.path.clone(),
        model: run.model.name.clone(),
        message: match e {
            TransformError::Query(msg) | TransformError::ReadOnly(msg) => msg,
            other => other.to_string(),
        },
    }
}

fn config_error(run: &ModelRun<'_>, field: &str, message: String) -> TransformError {
    TransformError::Config {
        path: run.model.path.clone(),
        field: field.into(),
        message,
    }
}

/// The SQL of the new current state. `changes`: the registered change rows; `this`: the existing
/// table (with its columns) unless this is a first build; `truncated_at`: the last truncate among
/// the changes, as (`_lsn`, `_seq`).
fn current_state_sql(
    changes: &str,
    columns: &[String],
    has_seq: bool,
    keys: &[String],
    this: Option<(&str, &[String])>,
    truncated_at: Option<(i64, i64)>,
) -> String {
    let keys: Vec<String> = keys.iter().map(|k| ident(k)).collect();
    let out: Vec<&String> = columns
        .iter()
        .filter(|c| !CHANGE_ONLY.contains(&c.as_str()))
        .collect();
    let seq = if has_seq { "_seq" } else { "0" };
    let after_truncate = match truncated_at {
        Some((lsn, s)) => format!(" AND (_lsn > {lsn} OR (_lsn = {lsn} AND {seq} > {s}))"),
        None => String::new(),
    };
    let ranked = format!(
        "SELECT *, row_number() OVER (PARTITION BY {} ORDER BY _lsn DESC, {seq} DESC) AS __sluice_rn \
         FROM {changes} WHERE _op <> 't'{after_truncate}",
        keys.join(", ")
    );
    let latest_list = out.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", ");
    let latest = format!("SELECT {latest_list} FROM ranked WHERE __sluice_rn = 1 AND _op <> 'd'");
    let kept = match this {
        Some((this, this_cols)) if truncated_at.is_none() => {
            let list = out
                .iter()
                .map(|c| {
                    if this_cols.contains(c) {
                        format!("t.{}", ident(c))
                    } else {
                        // Added upstream since the last build: older rows read NULL.
                        format!("NULL AS {}", ident(c))
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            let on = keys
                .iter()
                .map(|k| format!("r.{k} = t.{k}"))
                .collect::<Vec<_>>()
                .join(" AND ");
            format!(
                "SELECT {list} FROM {this} t WHERE NOT EXISTS (SELECT 1 FROM ranked r WHERE {on}) \
                 UNION ALL "
            )
        }
        _ => String::new(),
    };
    format!("WITH ranked AS ({ranked}) {kept}{latest}")
}

async fn collect(run: &ModelRun<'_>, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let df = run.engine.plan(sql).await.map_err(|e| sql_error(run, e))?;
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let batches = df
        .collect()
        .await
        .map_err(|e| sql_error(run, TransformError::Query(e.to_string())))?;
    Ok((schema, batches))
}

/// The first value of an Int64 column of the first row, if any.
fn first_i64(batches: &[RecordBatch], column: usize) -> Option<i64> {
    let b = batches.iter().find(|b| b.num_rows() > 0)?;
    let c = b.column(column).as_primitive_opt::<Int64Type>()?;
    (!c.is_null(0)).then(|| c.value(0))
}

#[async_trait]
impl Materialization for CdcMergeMaterialization {
    fn name(&self) -> &'static str {
        "merge"
    }

    async fn stage(&self, run: &ModelRun<'_>) -> Result<Staged> {
        let m = run.model;
        let keys = m.config.unique_key.clone();
        if keys.is_empty() {
            return Err(config_error(
                run,
                "unique_key",
                "`materialized: merge` needs a unique_key (the source table's primary key)".into(),
            ));
        }
        let id = model_table(m.layer, &m.name);
        let exists = run.engine.lake().exists(&id).await? && !run.full_refresh;
        let rendered = render(
            &m.raw_sql,
            &m.path,
            &run.project.scope,
            Some(&m.relation),
            exists,
        )?;
        let this_cols: Vec<String> = if exists {
            let df = run
                .engine
                .plan(&format!("SELECT * FROM {} LIMIT 0", m.relation))
                .await?;
            df.schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect()
        } else {
            Vec::new()
        };
        // Changes at or after the newest applied `_lsn` (see the module docs).
        let applied = if this_cols.iter().any(|c| c == "_lsn") {
            let (_, b) = collect(run, &format!("SELECT max(_lsn) FROM {}", m.relation)).await?;
            first_i64(&b, 0)
        } else {
            None
        };
        let source_sql = match applied {
            Some(lsn) => format!("SELECT * FROM ({}\n) q WHERE _lsn >= {lsn}", rendered.sql),
            None => rendered.sql.clone(),
        };
        let (schema, change_rows) = collect(run, &source_sql).await?;
        let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        for needed in ["_op", "_lsn"]
            .iter()
            .map(|s| s.to_string())
            .chain(keys.clone())
        {
            if !columns.contains(&needed) {
                return Err(config_error(
                    run,
                    "materialized",
                    format!(
                        "`materialized: merge` reads change rows: the model's SELECT must return \
                         `{needed}` (columns: {})",
                        columns.join(", ")
                    ),
                ));
            }
        }
        let change_count: usize = change_rows.iter().map(RecordBatch::num_rows).sum();
        let relation = staged_relation(&m.name);
        if exists && change_count == 0 {
            // Nothing new: the table stays as it is (and checks read it as it is).
            run.engine
                .register_view(&relation, &format!("SELECT * FROM {}", m.relation))
                .await?;
            let (_, n) = collect(run, &format!("SELECT count(*) FROM {}", m.relation)).await?;
            return Ok(Staged {
                relation,
                sql: rendered.sql,
                rows: first_i64(&n, 0).unwrap_or(0).max(0) as u64,
                schema,
                batches: Vec::new(),
                is_incremental: true,
                files: None,
            });
        }
        let changes = format!("{relation}__changes");
        run.engine
            .register_batches(&changes, schema.clone(), change_rows)?;
        let has_seq = columns.iter().any(|c| c == "_seq");
        let result = async {
            let seq = if has_seq { "_seq" } else { "0" };
            let (_, t) = collect(
                run,
                &format!(
                    "SELECT _lsn AS t_lsn, CAST({seq} AS BIGINT) AS t_seq FROM {changes} \
                     WHERE _op = 't' ORDER BY t_lsn DESC, t_seq DESC LIMIT 1"
                ),
            )
            .await?;
            let truncated_at = first_i64(&t, 0).map(|lsn| (lsn, first_i64(&t, 1).unwrap_or(0)));
            let sql = current_state_sql(
                &changes,
                &columns,
                has_seq,
                &keys,
                exists.then_some((m.relation.as_str(), this_cols.as_slice())),
                truncated_at,
            );
            collect(run, &sql).await
        }
        .await;
        run.engine.deregister(&changes);
        let (schema, batches) = result?;
        let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
        run.engine
            .register_batches(&relation, schema.clone(), batches.clone())?;
        Ok(Staged {
            relation,
            sql: rendered.sql,
            rows,
            schema,
            batches,
            is_incremental: false,
            files: None,
        })
    }

    async fn publish(&self, run: &ModelRun<'_>, staged: Staged) -> Result<Published> {
        if staged.is_incremental {
            // No change since the last build: no commit.
            run.engine.deregister(&staged.relation);
            return Ok(Published {
                rows: 0,
                version: None,
            });
        }
        publish_rows(run, staged, WriteMode::Overwrite).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn first_build_keeps_the_latest_non_deleted_change() {
        let sql = current_state_sql(
            "ch",
            &cols(&["id", "v", "_op", "_lsn", "_seq"]),
            true,
            &cols(&["id"]),
            None,
            None,
        );
        assert!(
            sql.contains("PARTITION BY id ORDER BY _lsn DESC, _seq DESC"),
            "{sql}"
        );
        assert!(
            sql.ends_with("SELECT id, v, _lsn FROM ranked WHERE __sluice_rn = 1 AND _op <> 'd'"),
            "{sql}"
        );
        assert!(!sql.contains("UNION ALL"), "{sql}");
    }

    #[test]
    fn later_builds_keep_untouched_rows_and_new_columns_read_null() {
        let this_cols = cols(&["id", "v", "_lsn"]);
        let sql = current_state_sql(
            "ch",
            &cols(&["id", "v", "w", "_op", "_lsn"]),
            false,
            &cols(&["id"]),
            Some(("silver.c", &this_cols)),
            None,
        );
        assert!(sql.contains("SELECT t.id, t.v, NULL AS w, t._lsn FROM silver.c t WHERE NOT EXISTS (SELECT 1 FROM ranked r WHERE r.id = t.id)"), "{sql}");
        assert!(sql.contains("ORDER BY _lsn DESC, 0 DESC"), "{sql}");
        // A truncate drops the old rows and every change before it.
        let sql = current_state_sql(
            "ch",
            &cols(&["id", "_op", "_lsn", "_seq"]),
            true,
            &cols(&["id"]),
            Some(("silver.c", &this_cols)),
            Some((500, 3)),
        );
        assert!(!sql.contains("silver.c"), "{sql}");
        assert!(
            sql.contains("AND (_lsn > 500 OR (_lsn = 500 AND _seq > 3))"),
            "{sql}"
        );
    }
}
