//! Full loads of large tables, read in parallel key ranges from one consistent snapshot.
//!
//! A `full` load of a table whose primary key is one integer column, and which the planner estimates
//! (`pg_class.reltuples`, kept by `ANALYZE`/autovacuum) at four or more batches per reader, is split
//! into up to [`MAX_READERS`] contiguous key ranges read at once, each on its own connection, so that
//! decoding uses every core. All readers see the same data: the planning connection opens a
//! `REPEATABLE READ` transaction and exports its snapshot (`pg_export_snapshot()`), the other
//! connections import it (`SET TRANSACTION SNAPSHOT`) before the first row is read — the way
//! `pg_dump --jobs` reads. The ranges' batches stream into one commit, so the table is still
//! replaced at once. Anything else (no such key, a small or never-analyzed table, a
//! `query:`) reads serially, exactly as before.

use tokio::sync::mpsc::channel;
use tokio::task::JoinHandle;
use tokio_postgres::{Client, Config, Statement};

use super::client::{PgFailure, connect, quote};
use super::read::read_chunks;
use super::types::PgColumn;
use crate::error::IngestError;
use crate::sources::relational::{ChunkTx, ReadRequest};

/// The most connections one table's full load opens.
pub(crate) const MAX_READERS: usize = 4;

/// Readers worth starting for `estimated_rows`: each should read at least four batches.
pub(crate) fn readers_for(estimated_rows: f64, batch_size: usize) -> usize {
    let per_reader = (4 * batch_size.max(1)) as f64;
    if !estimated_rows.is_finite() || estimated_rows < 2.0 * per_reader {
        return 1;
    }
    ((estimated_rows / per_reader) as usize).clamp(1, MAX_READERS)
}

/// `n` contiguous ranges `[lo, hi)` covering `min..=max`; the last has no upper bound (`None`).
pub(crate) fn ranges(min: i64, max: i64, n: usize) -> Vec<(i64, Option<i64>)> {
    let span = i128::from(max) - i128::from(min) + 1;
    let n = (n.max(1) as i128).min(span.max(1));
    let step = span / n;
    (0..n)
        .map(|i| {
            let lo = i128::from(min) + i * step;
            let hi = (i + 1 < n).then(|| i128::from(min) + (i + 1) * step);
            // In range by construction: min <= lo, hi <= max.
            (
                i64::try_from(lo).unwrap_or(min),
                hi.map(|h| i64::try_from(h).unwrap_or(max)),
            )
        })
        .collect()
}

/// Starts reading a full load: in parallel key ranges when the table qualifies, else serially.
/// Either way every chunk goes to `tx` and the returned task ends when reading does.
pub(crate) async fn spawn_full_read(
    pg: &Config,
    client: Client,
    statement: Statement,
    request: ReadRequest<PgColumn>,
    schema: &str,
    tx: ChunkTx,
) -> Result<JoinHandle<()>, IngestError> {
    let fail = |e: tokio_postgres::Error, doing: &str| {
        PgFailure::from(e).into_error(&request.source, &request.table, doing)
    };
    let table = request.table.as_str();
    let plan = key_and_estimate(&client, schema, table)
        .await
        .map_err(|e| fail(e, "cannot read the table's primary key"))?;
    let Some((key, estimate)) = plan else {
        return Ok(tokio::spawn(read_chunks(client, statement, request, tx)));
    };
    let readers = readers_for(estimate, request.batch_size);
    if readers < 2 {
        return Ok(tokio::spawn(read_chunks(client, statement, request, tx)));
    }
    let relation = format!("{}.{}", quote(schema), quote(table));
    let k = quote(&key);
    // The snapshot every reader shares; this transaction stays open while the first range is read
    // on this connection, which keeps the snapshot importable.
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(|e| fail(e, "cannot start the snapshot"))?;
    let snapshot: String = client
        .query_one("SELECT pg_export_snapshot()", &[])
        .await
        .map_err(|e| fail(e, "cannot export the snapshot"))?
        .get(0);
    let bounds = client
        .query_one(
            &format!("SELECT min({k})::int8, max({k})::int8 FROM {relation}"),
            &[],
        )
        .await
        .map_err(|e| fail(e, "cannot read the key range"))?;
    let (Some(min), Some(max)) = (
        bounds.get::<_, Option<i64>>(0),
        bounds.get::<_, Option<i64>>(1),
    ) else {
        // An empty table: nothing to split.
        return Ok(tokio::spawn(read_chunks(client, statement, request, tx)));
    };
    let parts = ranges(min, max, readers);
    tracing::info!(table = %relation, readers = parts.len(), estimate, "reading a full load in parallel key ranges");
    let mut clients = Vec::with_capacity(parts.len());
    for _ in 1..parts.len() {
        let c = connect(pg)
            .await
            .map_err(|e| e.into_error(&request.source, &request.table, "cannot connect"))?;
        c.batch_execute(&format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{}'",
            snapshot.replace('\'', "''")
        ))
        .await
        .map_err(|e| fail(e, "cannot import the snapshot"))?;
        clients.push(c);
    }
    let first = client;
    let ReadRequest {
        columns,
        batch_size,
        source,
        table: table_name,
        ..
    } = request;
    let (part_tx, mut part_rx) = channel(parts.len());
    let mut readers = Vec::with_capacity(parts.len());
    for ((lo, hi), client) in parts.into_iter().zip(std::iter::once(first).chain(clients)) {
        let filter = match hi {
            Some(hi) => format!("{k} >= {lo} AND {k} < {hi}"),
            None => format!("{k} >= {lo}"),
        };
        let sql = format!("SELECT * FROM {relation} WHERE {filter}");
        let statement = client.prepare(&sql).await.map_err(|e| {
            PgFailure::from(e).into_error(&source, &table_name, "cannot read a key range")
        })?;
        let part = ReadRequest {
            sql,
            watermark: None,
            columns: columns.clone(),
            cursor: None,
            batch_size,
            commit_rows: batch_size,
            source: source.clone(),
            table: table_name.clone(),
        };
        readers.push(tokio::spawn(read_chunks(
            client,
            statement,
            part,
            part_tx.clone(),
        )));
    }
    drop(part_tx);
    Ok(tokio::spawn(async move {
        // The ranges' chunks are forwarded as they come: the lander streams them all into one
        // commit (see table_load.rs), so the table is still replaced at once.
        while let Some(part) = part_rx.recv().await {
            let failed = part.is_err();
            if tx.send(part).await.is_err() || failed {
                return;
            }
        }
        for r in readers {
            if let Err(e) = r.await {
                let _ = tx
                    .send(Err(IngestError::Read {
                        source_name: source.clone(),
                        table: table_name.clone(),
                        message: format!("a key-range reader stopped unexpectedly: {e}"),
                        transient: false,
                    }))
                    .await;
                return;
            }
        }
    }))
}

/// The single integer primary-key column of `schema.table` and the planner's row estimate, or
/// `None` when the key is not one `smallint`/`integer`/`bigint` column or the table was never
/// analyzed.
async fn key_and_estimate(
    client: &Client,
    schema: &str,
    table: &str,
) -> Result<Option<(String, f64)>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT a.attname::text, a.atttypid::regtype::text, c.reltuples::float8
             FROM pg_index i
             JOIN pg_class c ON c.oid = i.indrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0]
             WHERE i.indisprimary AND i.indnkeyatts = 1 AND n.nspname = $1 AND c.relname = $2",
            &[&schema, &table],
        )
        .await?;
    Ok(rows.first().and_then(|r| {
        let (key, ty, estimate): (String, String, f64) = (r.get(0), r.get(1), r.get(2));
        matches!(ty.as_str(), "smallint" | "integer" | "bigint")
            .then_some((key, estimate))
            .filter(|(_, e)| *e > 0.0)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_grow_with_the_estimate() {
        assert_eq!(readers_for(-1.0, 1000), 1, "never analyzed");
        assert_eq!(readers_for(7_999.0, 1000), 1);
        assert_eq!(readers_for(8_000.0, 1000), 2);
        assert_eq!(readers_for(13_000.0, 1000), 3);
        assert_eq!(readers_for(1e9, 8192), MAX_READERS);
    }

    #[test]
    fn ranges_cover_the_keys_without_overlap() {
        assert_eq!(ranges(1, 10, 3), [(1, Some(4)), (4, Some(7)), (7, None)]);
        assert_eq!(ranges(5, 5, 4), [(5, None)], "one key: one range");
        let wide = ranges(i64::MIN, i64::MAX, 4);
        assert_eq!(wide.len(), 4);
        assert_eq!(wide[0].0, i64::MIN);
        for pair in wide.windows(2) {
            assert_eq!(pair[0].1, Some(pair[1].0));
        }
    }
}
