//! The row loop every relational driver shares: a driver's [`RowReader`] yields the rows of one
//! statement, [`read_rows`] turns them into chunks ([`ChunkWriter`]) and sends them.
//!
//! The loop is async; a blocking client (rusqlite) runs it on a blocking thread with
//! `Handle::block_on` ([`read_rows_blocking`]), its reader simply not awaiting. Either way rows are
//! taken only as fast as chunks are sent, and the channel holds one chunk: memory stays bounded by
//! the chunk being committed plus the one being built, whatever the table's size.

use serde_json::Value;

use super::chunks::CellOf;
use super::{ChunkTx, ChunkWriter, ColumnType, DbFailure, ReadRequest, decode_row};
use crate::error::IngestError;
use crate::sources::table_load::Chunk;

/// The rows of one statement as a driver reads them, and how the values of a row are taken apart
/// (the driver's type mapping at work). The kit's loop does everything else.
pub(crate) trait RowReader {
    /// How a result column is read and lands (the driver's [`super::Driver::Column`]).
    type Column: ColumnType;
    /// One row as the client yields it (it may borrow from the reader, as rusqlite's does).
    type Row<'a>
    where
        Self: 'a;
    /// One value of a row as read (it may borrow from the row).
    type Value<'v>;

    /// The next row, `None` after the last.
    async fn next_row(&mut self) -> Result<Option<Self::Row<'_>>, DbFailure>;

    /// The values of `row` in column order, or why the row cannot be read (the read stops).
    fn values<'v>(row: &'v Self::Row<'_>) -> Result<Vec<Self::Value<'v>>, String>;

    /// The watermark form of a cursor value (`None` for a value that cannot be a watermark), or why
    /// it cannot be read (the read stops).
    fn cursor(column: &Self::Column, value: &Self::Value<'_>) -> Result<Option<Value>, String>;

    /// A value decoded for its column's builder, or why it has no Arrow form (the row goes to
    /// quarantine).
    fn decode<'a>(
        column: &Self::Column,
        value: &'a Self::Value<'_>,
    ) -> Result<CellOf<'a, Self::Column>, String>;

    /// A value exactly as read, for the quarantined row's JSON.
    fn raw_json(column: &Self::Column, value: &Self::Value<'_>) -> Value;
}

/// Reads every row of `rows` (or the error opening them) into chunks sent to `tx`; an error is sent
/// as the last message. Returns early when the receiver is gone.
pub(crate) async fn read_rows<R: RowReader>(
    rows: Result<R, IngestError>,
    req: &ReadRequest<R::Column>,
    tx: &ChunkTx,
) {
    let read = match rows {
        Ok(rows) => read_all(rows, req, tx).await,
        Err(e) => Err(e),
    };
    if let Err(e) = read {
        let _ = tx.send(Err(e)).await;
    }
}

/// [`read_rows`] on a blocking thread (one `tokio::task::spawn_blocking` runs), for a client whose
/// reads block; `runtime` is the runtime the chunks' receiver runs on.
pub(crate) fn read_rows_blocking<R: RowReader>(
    runtime: &tokio::runtime::Handle,
    rows: Result<R, IngestError>,
    req: &ReadRequest<R::Column>,
    tx: &ChunkTx,
) {
    runtime.block_on(read_rows(rows, req, tx));
}

async fn read_all<R: RowReader>(
    mut rows: R,
    req: &ReadRequest<R::Column>,
    tx: &ChunkTx,
) -> Result<(), IngestError> {
    let mut w = ChunkWriter::new(req);
    loop {
        let full = match rows.next_row().await {
            Ok(Some(row)) => take_row::<R>(&mut w, req, &row)?,
            Ok(None) => break,
            Err(e) => {
                let doing = format!("reading row {}", w.row_number() + 1);
                return Err(e.into_error(&req.source, &req.table, &doing));
            }
        };
        // Sent once the row is taken, so that no row is held across the wait (the chunk it closed
        // was already complete).
        if let Some(full) = full
            && tx.send(Ok(full)).await.is_err()
        {
            return Ok(());
        }
    }
    let _ = tx.send(Ok(w.finish()?)).await;
    Ok(())
}

/// Places `row` in the chunks and appends it (or quarantines it); returns the chunk it closed.
fn take_row<R: RowReader>(
    w: &mut ChunkWriter<'_, R::Column>,
    req: &ReadRequest<R::Column>,
    row: &R::Row<'_>,
) -> Result<Option<Chunk>, IngestError> {
    let row_number = w.begin_row();
    let values =
        R::values(row).map_err(|why| req.error(format!("row {row_number}: {why}"), false))?;
    if values.len() != req.columns.len() {
        return Err(req.error(
            format!(
                "row {row_number} has {} values for {} columns",
                values.len(),
                req.columns.len()
            ),
            false,
        ));
    }
    let cursor = match req
        .cursor
        .and_then(|i| Some((&req.columns.get(i)?.1, values.get(i)?)))
    {
        Some((column, value)) => R::cursor(column, value).map_err(|why| w.cursor_error(why))?,
        None => None,
    };
    let full = w.place(cursor)?;
    match decode_row(&values, |i, v| R::decode(&req.columns[i].1, v)) {
        Ok(cells) => w.append(cells)?,
        Err((i, why)) => {
            let raw = req
                .columns
                .iter()
                .zip(&values)
                .map(|((n, c), v)| (n.clone(), R::raw_json(c, v)))
                .collect();
            w.reject(&req.columns[i].0, &why, raw);
        }
    }
    Ok(full)
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use arrow::array::{ArrayRef, AsArray, Int64Builder};
    use arrow::datatypes::{DataType, Int64Type};
    use arrow::error::ArrowError;

    use super::*;
    use crate::sources::relational::ColumnBuilder;

    #[derive(Clone)]
    struct Int;

    struct Ints(Int64Builder);

    impl ColumnType for Int {
        type Builder = Ints;

        fn arrow_type(&self) -> DataType {
            DataType::Int64
        }

        fn builder(&self) -> Ints {
            Ints(Int64Builder::new())
        }
    }

    impl ColumnBuilder for Ints {
        type Cell<'v> = Option<i64>;

        fn append(&mut self, cell: Option<i64>) -> Result<(), String> {
            self.0.append_option(cell);
            Ok(())
        }

        fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
            Ok(Arc::new(self.0.finish()))
        }
    }

    /// Rows of `Option<i64>` values (a negative value has no Arrow form), or a failure.
    struct Fake(
        VecDeque<Result<Vec<Option<i64>>, DbFailure>>,
        Arc<AtomicUsize>,
    );

    impl RowReader for Fake {
        type Column = Int;
        type Row<'a> = Vec<Option<i64>>;
        type Value<'v> = Option<i64>;

        async fn next_row(&mut self) -> Result<Option<Vec<Option<i64>>>, DbFailure> {
            self.1.fetch_add(1, Ordering::Relaxed);
            self.0.pop_front().transpose()
        }

        fn values(row: &Vec<Option<i64>>) -> Result<Vec<Option<i64>>, String> {
            Ok(row.clone())
        }

        fn cursor(_: &Int, value: &Option<i64>) -> Result<Option<Value>, String> {
            match value {
                Some(v) if *v > 1000 => Err(format!("{v} is too large")),
                v => Ok(v.map(Value::from)),
            }
        }

        fn decode(_: &Int, value: &Option<i64>) -> Result<Option<i64>, String> {
            match value {
                Some(v) if *v < 0 => Err(format!("{v} is negative")),
                v => Ok(*v),
            }
        }

        fn raw_json(_: &Int, value: &Option<i64>) -> Value {
            value.map_or(Value::Null, Value::from)
        }
    }

    fn request(commit_rows: usize) -> ReadRequest<Int> {
        ReadRequest {
            sql: String::new(),
            watermark: None,
            columns: vec![("c".into(), Int), ("v".into(), Int)],
            cursor: Some(0),
            batch_size: 2,
            commit_rows,
            source: "s".into(),
            table: "t".into(),
        }
    }

    fn rows(rows: &[&[i64]]) -> Fake {
        Fake(
            rows.iter()
                .map(|r| Ok(r.iter().copied().map(Some).collect()))
                .collect(),
            Arc::default(),
        )
    }

    /// Everything `read_rows` sends for `reader` (opened without error).
    async fn run(reader: Fake, req: &ReadRequest<Int>) -> Vec<Result<Chunk, IngestError>> {
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let read = async move {
            // The receiver ends once the sender is dropped.
            read_rows(Ok(reader), req, &tx).await;
        };
        let (_, sent) = tokio::join!(read, async move {
            let mut sent = Vec::new();
            while let Some(m) = rx.recv().await {
                sent.push(m);
            }
            sent
        });
        sent
    }

    #[tokio::test]
    async fn rows_become_chunks_with_quarantine_and_watermarks() {
        let req = request(2);
        let sent = run(rows(&[&[1, 10], &[2, -5], &[2, 20], &[3, 30]]), &req).await;
        let chunks: Vec<Chunk> = sent.into_iter().map(Result::unwrap).collect();
        let sizes: Vec<u64> = chunks.iter().map(|c| c.rows_read).collect();
        assert_eq!(
            sizes,
            [3, 1],
            "the chunk is cut only where the cursor changes"
        );
        assert_eq!(chunks[0].watermark, Some(Value::from(2)));
        assert_eq!(chunks[1].watermark, Some(Value::from(3)));
        let rejected = &chunks[0].rejected;
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].reason, "row 2: column `v`: -5 is negative");
        assert_eq!(rejected[0].raw, r#"{"c":2,"v":-5}"#);
        let landed: Vec<i64> = chunks[0]
            .batches
            .iter()
            .flat_map(|b| b.column(1).as_primitive::<Int64Type>().values().to_vec())
            .collect();
        assert_eq!(landed, [10, 20]);
    }

    #[tokio::test]
    async fn a_failed_row_ends_the_read_with_its_number() {
        let mut reader = rows(&[&[1, 1], &[2, 2]]);
        reader.0.push_back(Err(DbFailure {
            message: "connection reset".into(),
            transient: true,
        }));
        let sent = run(reader, &request(100)).await;
        assert_eq!(sent.len(), 1, "nothing is sent after the failure");
        let Some(Err(IngestError::Read {
            message, transient, ..
        })) = sent.first()
        else {
            panic!("not a read error");
        };
        assert_eq!(message, "reading row 3: connection reset");
        assert!(*transient);
    }

    #[tokio::test]
    async fn malformed_rows_and_cursors_stop_the_read() {
        let sent = run(rows(&[&[1, 1], &[2]]), &request(100)).await;
        let e = last_error(&sent);
        assert!(e.contains("row 2 has 1 values for 2 columns"), "{e}");
        let sent = run(rows(&[&[5000, 1]]), &request(100)).await;
        let e = last_error(&sent);
        assert!(e.contains("row 1: cursor `c`: 5000 is too large"), "{e}");
    }

    #[tokio::test]
    async fn an_error_opening_the_rows_is_sent() {
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let opened: Result<Fake, _> = Err(req_error());
        read_rows(opened, &request(1), &tx).await;
        drop(tx);
        let mut sent = Vec::new();
        while let Some(m) = rx.recv().await {
            sent.push(m);
        }
        assert_eq!(sent.len(), 1);
        assert!(last_error(&sent).contains("query failed"));
    }

    fn req_error() -> IngestError {
        request(1).error("query failed", false)
    }

    /// The error the read ended with (the last message).
    fn last_error(sent: &[Result<Chunk, IngestError>]) -> String {
        match sent.last() {
            Some(Err(e)) => e.to_string(),
            _ => panic!("the read did not end with an error"),
        }
    }

    #[tokio::test]
    async fn reading_stops_when_the_receiver_is_gone() {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        drop(rx);
        let taken = Arc::new(AtomicUsize::new(0));
        let many = (0..1000).map(|i| Ok(vec![Some(i), Some(i)])).collect();
        read_rows(Ok(Fake(many, taken.clone())), &request(1), &tx).await;
        // The first chunk closes at row 2 and cannot be sent: the read stops there.
        assert_eq!(taken.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn a_blocking_reader_runs_on_a_blocking_thread() {
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let runtime = tokio::runtime::Handle::current();
        let reader = tokio::task::spawn_blocking(move || {
            read_rows_blocking(
                &runtime,
                Ok(rows(&[&[1, 1], &[2, 2], &[3, 3]])),
                &request(1),
                &tx,
            );
        });
        let mut read = 0;
        while let Some(chunk) = rx.recv().await {
            read += chunk.unwrap().rows_read;
        }
        reader.await.unwrap();
        assert_eq!(read, 3);
    }
}
