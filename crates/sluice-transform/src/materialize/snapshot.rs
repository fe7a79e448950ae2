//! `materialized: snapshot` — type-2 slowly changing dimension history of a query, as dbt's snapshots.
//!
//! Each run compares the query's rows with the current versions (`dbt_valid_to IS NULL`) by
//! `unique_key`: a new key inserts a version; a changed row (strategy `timestamp`: `updated_at` is newer;
//! strategy `check`: one of `check_cols` differs) closes the current version (`dbt_valid_to`) and inserts
//! a new one. With `invalidate_hard_deletes: true` (or `hard_deletes: invalidate`) a key that disappeared
//! is closed as well. The whole new history is published in one commit, so a failed check leaves the
//! previous history serving.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use serde_json::Value;
use sluice_lake::WriteMode;

use super::{Materialization, ModelRun, Published, Staged, publish_rows};
use crate::error::{Result, TransformError};
use crate::relation::{ident, model_table, staged_relation};
use crate::render::render;

/// The snapshot materialization.
pub struct SnapshotMaterialization;

/// How changes are detected.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Strategy {
    /// `updated_at` column newer than the current version's.
    Timestamp { updated_at: String },
    /// Any of these columns differs (`None`: every column).
    Check { cols: Option<Vec<String>> },
}

fn config_error(run: &ModelRun<'_>, field: &str, message: String) -> TransformError {
    TransformError::Config {
        path: run.model.path.clone(),
        field: field.into(),
        message,
    }
}

fn strategy(run: &ModelRun<'_>) -> Result<Strategy> {
    let raw = &run.model.config.raw;
    match raw
        .get("strategy")
        .and_then(Value::as_str)
        .unwrap_or("timestamp")
    {
        "timestamp" => {
            let updated_at = raw
                .get("updated_at")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    config_error(
                        run,
                        "updated_at",
                        "strategy `timestamp` needs `updated_at`".into(),
                    )
                })?;
            Ok(Strategy::Timestamp {
                updated_at: updated_at.to_string(),
            })
        }
        "check" => match raw.get("check_cols") {
            Some(Value::String(s)) if s == "all" => Ok(Strategy::Check { cols: None }),
            Some(Value::Array(a)) if !a.is_empty() => Ok(Strategy::Check {
                cols: Some(
                    a.iter()
                        .map(|v| {
                            v.as_str().map(str::to_string).ok_or_else(|| {
                                config_error(
                                    run,
                                    "check_cols",
                                    format!("expected column names, found {v}"),
                                )
                            })
                        })
                        .collect::<Result<_>>()?,
                ),
            }),
            other => Err(config_error(
                run,
                "check_cols",
                format!(
                    "strategy `check` needs `check_cols: all` or a list of columns, found {}",
                    other
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "nothing".into())
                ),
            )),
        },
        other => Err(config_error(
            run,
            "strategy",
            format!("`{other}` is not supported; expected timestamp or check"),
        )),
    }
}

/// The SQL computing the full new history.
fn history_sql(
    source: &str,
    this: Option<&str>,
    columns: &[String],
    keys: &[String],
    strategy: &Strategy,
    hard_deletes: bool,
    now: &str,
) -> String {
    let cols: Vec<String> = columns.iter().map(|c| ident(c)).collect();
    let list = |alias: &str| {
        cols.iter()
            .map(|c| format!("{alias}.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let keys: Vec<String> = keys.iter().map(|k| ident(k)).collect();
    let on = |a: &str, b: &str| {
        keys.iter()
            .map(|k| format!("{a}.{k} = {b}.{k}"))
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    let key_text = |alias: &str| {
        keys.iter()
            .map(|k| format!("CAST({alias}.{k} AS VARCHAR)"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let now_ts = format!("CAST('{now}' AS TIMESTAMP)");
    let valid_from = |alias: &str| match strategy {
        Strategy::Timestamp { updated_at } => {
            format!("CAST({alias}.{} AS TIMESTAMP)", ident(updated_at))
        }
        Strategy::Check { .. } => now_ts.clone(),
    };
    let scd_id = |alias: &str| {
        format!(
            "md5(concat_ws('|', {}, CAST({} AS VARCHAR)))",
            key_text(alias),
            valid_from(alias)
        )
    };
    let new_version = |alias: &str| {
        format!(
            "SELECT {}, {} AS dbt_scd_id, {vf} AS dbt_updated_at, {vf} AS dbt_valid_from, \
             CAST(NULL AS TIMESTAMP) AS dbt_valid_to",
            list(alias),
            scd_id(alias),
            vf = valid_from(alias)
        )
    };
    let Some(this) = this else {
        return format!("{} FROM {source} s", new_version("s"));
    };
    let changed = match strategy {
        Strategy::Timestamp { .. } => format!("{} > c.dbt_updated_at", valid_from("s")),
        Strategy::Check { cols: check } => {
            let check: Vec<String> = match check {
                Some(c) => c.iter().map(|c| ident(c)).collect(),
                None => cols.iter().filter(|c| !keys.contains(c)).cloned().collect(),
            };
            if check.is_empty() {
                "false".to_string()
            } else {
                check
                    .iter()
                    .map(|c| format!("s.{c} IS DISTINCT FROM c.{c}"))
                    .collect::<Vec<_>>()
                    .join(" OR ")
            }
        }
    };
    let first_key = &keys[0];
    let closed_by_delete = if hard_deletes {
        format!(
            " WHEN NOT EXISTS (SELECT 1 FROM {source} s WHERE {}) THEN {now_ts}",
            on("s", "t")
        )
    } else {
        String::new()
    };
    format!(
        "WITH cur AS (SELECT * FROM {this} WHERE dbt_valid_to IS NULL), \
         changes AS (SELECT s.* FROM {source} s LEFT JOIN cur c ON {on_sc} \
                     WHERE c.{first_key} IS NULL OR ({changed})) \
         SELECT {t_list}, t.dbt_scd_id, CAST(t.dbt_updated_at AS TIMESTAMP) AS dbt_updated_at, \
                CAST(t.dbt_valid_from AS TIMESTAMP) AS dbt_valid_from, \
                CAST(t.dbt_valid_to AS TIMESTAMP) AS dbt_valid_to \
           FROM {this} t WHERE t.dbt_valid_to IS NOT NULL \
         UNION ALL \
         SELECT {t_list}, t.dbt_scd_id, CAST(t.dbt_updated_at AS TIMESTAMP), \
                CAST(t.dbt_valid_from AS TIMESTAMP), \
                CASE WHEN ch.{first_key} IS NOT NULL THEN {ch_vf}{closed_by_delete} \
                     ELSE CAST(NULL AS TIMESTAMP) END \
           FROM cur t LEFT JOIN changes ch ON {on_cht} \
         UNION ALL \
         {new} FROM changes ch",
        on_sc = on("s", "c"),
        on_cht = on("ch", "t"),
        t_list = list("t"),
        ch_vf = valid_from("ch"),
        new = new_version("ch"),
    )
}

#[async_trait]
impl Materialization for SnapshotMaterialization {
    fn name(&self) -> &'static str {
        "snapshot"
    }

    async fn stage(&self, run: &ModelRun<'_>) -> Result<Staged> {
        let m = run.model;
        let strategy = strategy(run)?;
        let keys = m.config.unique_key.clone();
        if keys.is_empty() {
            return Err(config_error(
                run,
                "unique_key",
                "a snapshot needs a unique_key".into(),
            ));
        }
        let raw = &m.config.raw;
        let hard_deletes = raw
            .get("invalidate_hard_deletes")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            || raw.get("hard_deletes").and_then(Value::as_str) == Some("invalidate");
        let sql_err = |e: TransformError| TransformError::Sql {
            path: m.path.clone(),
            model: m.name.clone(),
            message: match e {
                TransformError::Query(msg) => msg,
                other => other.to_string(),
            },
        };
        let rendered = render(
            &m.raw_sql,
            &m.path,
            &run.project.scope,
            Some(&m.relation),
            false,
        )?;
        let df = run.engine.plan(&rendered.sql).await.map_err(sql_err)?;
        let src_schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let src_rows = df
            .collect()
            .await
            .map_err(|e| sql_err(TransformError::Query(e.to_string())))?;
        let columns: Vec<String> = src_schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        for k in &keys {
            if !columns.contains(k) {
                return Err(config_error(
                    run,
                    "unique_key",
                    format!("`{k}` is not a column of the snapshot's query"),
                ));
            }
        }
        if let Strategy::Timestamp { updated_at } = &strategy
            && !columns.contains(updated_at)
        {
            return Err(config_error(
                run,
                "updated_at",
                format!("`{updated_at}` is not a column of the snapshot's query"),
            ));
        }
        let source = format!("{}__source", staged_relation(&m.name));
        run.engine.register_batches(&source, src_schema, src_rows)?;
        let exists = run
            .engine
            .lake()
            .exists(&model_table(m.layer, &m.name))
            .await?;
        // The build's own time (not the process start): a long-running `sluice serve` snapshots many
        // times, and each check-strategy version needs its own time.
        let now = chrono::Utc::now()
            .format("%Y-%m-%d %H:%M:%S%.6f")
            .to_string();
        let sql = history_sql(
            &source,
            exists.then_some(m.relation.as_str()),
            &columns,
            &keys,
            &strategy,
            hard_deletes,
            &now,
        );
        let result = async {
            let df = run.engine.plan(&sql).await?;
            let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
            let batches = df
                .collect()
                .await
                .map_err(|e| TransformError::Query(e.to_string()))?;
            Ok::<_, TransformError>((schema, batches))
        }
        .await;
        run.engine.deregister(&source);
        let (schema, batches) = result.map_err(sql_err)?;
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
            is_incremental: false,
            files: None,
        })
    }

    async fn publish(&self, run: &ModelRun<'_>, staged: Staged) -> Result<Published> {
        publish_rows(run, staged, WriteMode::Overwrite).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_run_inserts_every_row_as_current() {
        let sql = history_sql(
            "staging.s__source",
            None,
            &["id".into(), "v".into(), "updated_at".into()],
            &["id".into()],
            &Strategy::Timestamp {
                updated_at: "updated_at".into(),
            },
            false,
            "2026-01-01 00:00:00",
        );
        assert!(
            sql.contains("CAST(NULL AS TIMESTAMP) AS dbt_valid_to"),
            "{sql}"
        );
        assert!(sql.ends_with("FROM staging.s__source s"), "{sql}");
    }

    #[test]
    fn check_strategy_compares_non_key_columns() {
        let sql = history_sql(
            "src",
            Some("silver.snap"),
            &["id".into(), "v".into()],
            &["id".into()],
            &Strategy::Check { cols: None },
            true,
            "2026-01-01 00:00:00",
        );
        assert!(sql.contains("s.v IS DISTINCT FROM c.v"), "{sql}");
        assert!(!sql.contains("s.id IS DISTINCT FROM"), "{sql}");
        assert!(
            sql.contains("WHEN NOT EXISTS (SELECT 1 FROM src s WHERE s.id = t.id)"),
            "{sql}"
        );
    }
}
