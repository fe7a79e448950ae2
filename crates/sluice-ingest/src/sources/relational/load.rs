//! One load of one relational table: position, plan, read, land.

use serde_json::Value;

use super::{
    Driver, LoadMode, ReadRequest, RelationalConfig, TableConfig, TableOf, read_error, relation_sql,
};
use crate::error::IngestError;
use crate::source::{IngestContext, IngestReport, find_table};
use crate::sources::table_load::{Mode, Target, land_chunks, position};

/// The names of the tables a driver lands.
pub(crate) fn table_names<D: Driver>(driver: &D) -> Vec<String> {
    driver
        .config()
        .tables()
        .iter()
        .map(|t| t.name().to_string())
        .collect()
}

/// Lands what is new in `table` (a table whose mode is a batch read).
pub(crate) async fn ingest<D: Driver>(
    driver: &D,
    table: &str,
    cx: &IngestContext,
) -> Result<IngestReport, IngestError> {
    let t = find_table(driver.source_name(), driver.config().tables(), table, |t| {
        t.name()
    })?;
    match t.mode().load_mode() {
        Some(mode) => load(driver, t, mode, cx).await,
        None => Err(read_error(
            driver.source_name(),
            t.name(),
            "this table's mode is not a batch read",
        )),
    }
}

/// Lands what is new in `t`: reads the position the last load committed, reads the rows after it
/// in chunks and lands each chunk with its watermark (see [`crate::sources::table_load`]).
pub(crate) async fn load<D: Driver>(
    driver: &D,
    t: &TableOf<D>,
    mode: Mode,
    cx: &IngestContext,
) -> Result<IngestReport, IngestError> {
    let source = driver.source_name();
    let start = position(cx, source, t.name(), mode).await?;
    let watermark = start.watermark.clone();
    let conn = driver.connect(t).await?;
    let (conn, request) = plan(driver, t, mode, conn, watermark.clone()).await?;
    tracing::debug!(
        source = %source,
        table = %t.name(),
        watermark = ?watermark,
        "reading {} table",
        D::KIND
    );
    // A channel of one gives backpressure: the reader waits while a chunk is being committed.
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let reader = driver.read(conn, t, mode, request, tx).await?;
    let origin = driver.origin(t);
    let target = Target {
        source,
        table: t.name(),
        mode,
        pii: t.pii(),
        origin: &origin,
    };
    land_chunks(cx, target, start, rx, reader).await
}

/// Describes the relation, checks the cursor and writes the statement: the whole relation for a
/// full load (a chunk per batch: it streams into one commit), rows after the watermark in cursor
/// order for an incremental one.
async fn plan<D: Driver>(
    driver: &D,
    t: &TableOf<D>,
    mode: Mode,
    conn: D::Conn,
    watermark: Option<Value>,
) -> Result<(D::Conn, ReadRequest<D::Column>), IngestError> {
    let config = driver.config();
    let source = driver.source_name();
    let from = relation_sql(t.query(), driver.table_sql(t));
    let (conn, columns) = driver
        .describe(conn, t, &format!("SELECT * FROM {from}"))
        .await?;
    let cursor = match (mode, t.cursor()) {
        (Mode::Incremental, Some(name)) => {
            let Some(idx) = columns.iter().position(|(n, _)| n == name) else {
                return Err(read_error(
                    source,
                    t.name(),
                    format!(
                        "cursor column `{name}` is not in `{}` (columns: {})",
                        driver.qualified(t),
                        columns
                            .iter()
                            .map(|c| c.0.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            };
            if let Some(problem) = D::cursor_problem(name, &columns[idx].1) {
                return Err(read_error(source, t.name(), problem));
            }
            Some((idx, name))
        }
        _ => None,
    };
    let (sql, commit_rows) = match cursor {
        Some((idx, name)) => {
            let c = D::quote(name);
            let filter = match &watermark {
                Some(_) => Some(D::after_watermark(&c, &columns[idx].1)),
                None => D::before_watermark(&c),
            };
            let sql = match filter {
                Some(f) => format!("SELECT * FROM {from} WHERE {f} ORDER BY {c}"),
                None => format!("SELECT * FROM {from} ORDER BY {c}"),
            };
            (sql, config.commit_rows())
        }
        None => (format!("SELECT * FROM {from}"), config.batch_size()),
    };
    let request = ReadRequest {
        sql,
        watermark: cursor.and(watermark),
        columns,
        cursor: cursor.map(|c| c.0),
        batch_size: config.batch_size(),
        commit_rows,
        source: source.to_string(),
        table: t.name().to_string(),
    };
    Ok((conn, request))
}
