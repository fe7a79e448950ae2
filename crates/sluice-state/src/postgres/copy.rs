//! Copying a SQLite state database into PostgreSQL (`sluice state migrate --to postgres://…`).
//!
//! Every table of the SQLite file (read from `sqlite_master`, so a table added by a later migration
//! is copied without a change here) is copied into the table of the same name, column by column, in
//! one transaction on the target: either everything arrives or nothing does. The source is read
//! in one read transaction, a consistent snapshot even while a scheduler writes to it.
//!
//! Rows are inserted in the source's `rowid` order, so the target's `seq` identity columns (which
//! its queries order by where SQLite orders by `rowid`) keep the same order. Ids that are copied
//! (`alert_incidents.id`) keep their values, and their sequences are moved past the largest one, so
//! the next incident does not collide.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::types::Value;
use tokio_postgres::types::ToSql;

use super::{PostgresStore, Worker};
use crate::StateError;

/// Rows per `INSERT` statement are bounded by this many parameters (PostgreSQL allows 65,535).
const PARAMS_PER_INSERT: usize = 10_000;

/// What was copied: rows per table, in the order copied (by table name).
pub type CopyReport = Vec<(String, u64)>;

/// How one target column takes a value.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Int,
    Text,
}

type Param = Box<dyn ToSql + Sync + Send>;

/// Copies every table of the SQLite state database at `from` into `to` (already migrated to the
/// same schema version: [`PostgresStore::connect`] does it). A target that holds rows is refused,
/// unless `replace`, which empties its state tables first (in the same transaction).
pub fn copy_sqlite(
    from: &Path,
    to: &PostgresStore,
    replace: bool,
) -> Result<CopyReport, StateError> {
    let source = from.display().to_string();
    if !from.is_file() {
        return Err(copy_error(&source, "no such SQLite state database".into()));
    }
    // Opening migrates the source to this binary's schema, the version the target was brought to.
    let conn = crate::sqlite::open(from)?;
    let sqlite = |e: rusqlite::Error| StateError::Sqlite {
        path: source.clone(),
        source: e,
    };
    let snapshot = conn.unchecked_transaction().map_err(sqlite)?;
    let tables: Vec<String> = {
        let mut stmt = snapshot
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE 'sqlite_%' ORDER BY name",
            )
            .map_err(sqlite)?;
        stmt.query_map([], |r| r.get(0))
            .map_err(sqlite)?
            .collect::<Result<_, _>>()
            .map_err(sqlite)?
    };
    let worker = to.worker();
    let target = target_columns(worker)?;
    for t in &tables {
        if !target.contains_key(t) {
            return Err(copy_error(
                worker.location(),
                format!("has no table `{t}` (is it at the same schema version?)"),
            ));
        }
    }

    exec(worker, "BEGIN".to_string())?;
    let copied = (|| {
        let counts = row_counts(worker, &tables)?;
        let filled: Vec<String> = counts
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(t, n)| format!("{t} ({n})"))
            .collect();
        if !filled.is_empty() && !replace {
            return Err(copy_error(
                worker.location(),
                format!(
                    "already holds state rows in {}: pass --replace to empty it first",
                    filled.join(", ")
                ),
            ));
        }
        if replace {
            let list = tables.iter().map(|t| quote(t)).collect::<Vec<_>>();
            exec(
                worker,
                format!("TRUNCATE {} RESTART IDENTITY", list.join(", ")),
            )?;
        }
        let mut report = Vec::new();
        for t in &tables {
            let n = copy_table(&snapshot, &source, worker, t, &target[t])?;
            report.push((t.clone(), n));
        }
        reset_identities(worker, &tables)?;
        Ok(report)
    })();
    match copied {
        Ok(report) => {
            exec(worker, "COMMIT".to_string())?;
            Ok(report)
        }
        Err(e) => {
            // Best effort: the error that stopped the copy is the one to report.
            let _ = exec(worker, "ROLLBACK".to_string());
            Err(e)
        }
    }
}

fn copy_error(location: &str, message: String) -> StateError {
    StateError::Postgres {
        location: location.to_string(),
        source: message.into(),
    }
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

fn exec(worker: &Worker, sql: String) -> Result<(), StateError> {
    let location = worker.location().to_string();
    worker.call(move |c, rt| {
        rt.block_on(c.batch_execute(&sql))
            .map_err(|e| StateError::Postgres {
                location,
                source: Box::new(e),
            })
    })
}

/// Every table of the target's current schema, with its columns that take a copied value (not
/// the `GENERATED ALWAYS` ones) and their kind.
fn target_columns(worker: &Worker) -> Result<BTreeMap<String, BTreeMap<String, Kind>>, StateError> {
    let location = worker.location().to_string();
    let rows = worker.call(move |c, rt| {
        rt.block_on(c.query(
            "SELECT table_name::text, column_name::text, data_type::text \
             FROM information_schema.columns \
             WHERE table_schema = current_schema() \
               AND coalesce(identity_generation, '') <> 'ALWAYS'",
            &[],
        ))
        .map_err(|e| StateError::Postgres {
            location,
            source: Box::new(e),
        })
    })?;
    let mut out: BTreeMap<String, BTreeMap<String, Kind>> = BTreeMap::new();
    for r in rows {
        let (table, column, ty): (String, String, String) = (r.get(0), r.get(1), r.get(2));
        let kind = match ty.as_str() {
            "bigint" | "integer" | "smallint" => Kind::Int,
            _ => Kind::Text,
        };
        out.entry(table).or_default().insert(column, kind);
    }
    Ok(out)
}

fn row_counts(worker: &Worker, tables: &[String]) -> Result<Vec<(String, i64)>, StateError> {
    let sql = tables
        .iter()
        .map(|t| format!("SELECT '{t}', count(*) FROM {}", quote(t)))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let location = worker.location().to_string();
    worker.call(move |c, rt| {
        rt.block_on(c.query(&sql, &[]))
            .map(|rows| rows.iter().map(|r| (r.get(0), r.get(1))).collect())
            .map_err(|e| StateError::Postgres {
                location,
                source: Box::new(e),
            })
    })
}

/// Copies one table in `rowid` order, a chunk of rows per `INSERT`.
fn copy_table(
    snapshot: &rusqlite::Connection,
    source: &str,
    worker: &Worker,
    table: &str,
    target: &BTreeMap<String, Kind>,
) -> Result<u64, StateError> {
    let sqlite = |e: rusqlite::Error| StateError::Sqlite {
        path: source.to_string(),
        source: e,
    };
    let columns: Vec<String> = {
        let mut stmt = snapshot
            .prepare(&format!("PRAGMA table_info({})", quote(table)))
            .map_err(sqlite)?;
        stmt.query_map([], |r| r.get(1))
            .map_err(sqlite)?
            .collect::<Result<_, _>>()
            .map_err(sqlite)?
    };
    let mut kinds = Vec::with_capacity(columns.len());
    for c in &columns {
        let Some(kind) = target.get(c) else {
            return Err(copy_error(
                worker.location(),
                format!("table `{table}` has no column `{c}`"),
            ));
        };
        kinds.push(*kind);
    }
    let list = columns
        .iter()
        .map(|c| quote(c))
        .collect::<Vec<_>>()
        .join(", ");
    let per_insert = (PARAMS_PER_INSERT / columns.len().max(1)).max(1);
    let mut stmt = snapshot
        .prepare(&format!(
            "SELECT rowid, {list} FROM {} WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
            quote(table)
        ))
        .map_err(sqlite)?;
    let (mut last, mut copied) = (i64::MIN, 0u64);
    loop {
        let mut params: Vec<Param> = Vec::new();
        let mut rows = 0usize;
        let mut q = stmt
            .query(rusqlite::params![last, per_insert as i64])
            .map_err(sqlite)?;
        while let Some(r) = q.next().map_err(sqlite)? {
            last = r.get(0).map_err(sqlite)?;
            for (i, kind) in kinds.iter().enumerate() {
                let v: Value = r.get(i + 1).map_err(sqlite)?;
                params.push(
                    convert(v, *kind)
                        .map_err(|m| copy_error(source, format!("{table}.{}: {m}", columns[i])))?,
                );
            }
            rows += 1;
        }
        if rows == 0 {
            return Ok(copied);
        }
        let n = columns.len();
        let values = (0..rows)
            .map(|r| {
                let cells = (1..=n).map(|c| format!("${}", r * n + c));
                format!("({})", cells.collect::<Vec<_>>().join(", "))
            })
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("INSERT INTO {} ({list}) VALUES {values}", quote(table));
        let location = worker.location().to_string();
        worker.call(move |c, rt| {
            let refs: Vec<&(dyn ToSql + Sync)> = params
                .iter()
                .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                .collect();
            rt.block_on(c.execute(&sql, &refs))
                .map_err(|e| StateError::Postgres {
                    location,
                    source: Box::new(e),
                })
        })?;
        copied += rows as u64;
    }
}

/// A SQLite value as the target column takes it (SQLite's columns are loosely typed: a number
/// may sit in a TEXT column and the reverse).
fn convert(v: Value, kind: Kind) -> Result<Param, String> {
    Ok(match (v, kind) {
        (Value::Null, Kind::Int) => Box::new(None::<i64>),
        (Value::Null, Kind::Text) => Box::new(None::<String>),
        (Value::Integer(i), Kind::Int) => Box::new(Some(i)),
        (Value::Integer(i), Kind::Text) => Box::new(Some(i.to_string())),
        (Value::Real(f), Kind::Int) if f.fract() == 0.0 && f.abs() < 9.0e18 => {
            Box::new(Some(f as i64))
        }
        (Value::Real(f), Kind::Text) => Box::new(Some(f.to_string())),
        (Value::Text(s), Kind::Text) => Box::new(Some(s)),
        (Value::Text(s), Kind::Int) => Box::new(Some(
            s.trim()
                .parse::<i64>()
                .map_err(|_| format!("`{s}` is not an integer"))?,
        )),
        (Value::Blob(b), Kind::Text) => Box::new(Some(
            String::from_utf8(b).map_err(|_| "a binary value that is not UTF-8".to_string())?,
        )),
        (other, Kind::Int) => return Err(format!("{other:?} is not an integer")),
    })
}

/// Moves every copied identity column's sequence past its largest value.
fn reset_identities(worker: &Worker, tables: &[String]) -> Result<(), StateError> {
    let location = worker.location().to_string();
    let tables = tables.to_vec();
    worker.call(move |c, rt| {
        rt.block_on(async {
            let rows = c
                .query(
                    "SELECT table_name::text, column_name::text FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND identity_generation = 'BY DEFAULT'",
                    &[],
                )
                .await?;
            for r in rows {
                let (table, column): (String, String) = (r.get(0), r.get(1));
                if !tables.contains(&table) {
                    continue;
                }
                let sql = format!(
                    "SELECT setval(pg_get_serial_sequence($1, $2), \
                     coalesce(max({col}), 1), max({col}) IS NOT NULL) FROM {tab}",
                    col = quote(&column),
                    tab = quote(&table)
                );
                c.query_one(&sql, &[&table, &column]).await?;
            }
            Ok(())
        })
        .map_err(|e: tokio_postgres::Error| StateError::Postgres {
            location,
            source: Box::new(e),
        })
    })
}
