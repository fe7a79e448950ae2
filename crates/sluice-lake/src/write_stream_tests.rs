//! Tests of [`Lake::write_stream`] against real Delta tables in temporary folders.

use std::sync::atomic::AtomicBool;

use futures::StreamExt;
use sluice_engine::plan::RecordBatchStreamAdapter;

use super::*;
use crate::test_util::{count, int_batch, log_actions, rows, tmp_lake};

/// A stream of `batches` of 1,000 ids each (0, 1, 2, …); with `fail_after`, an error follows that
/// many batches. `polled` turns true once the stream is read.
fn ids(
    batches: usize,
    fail_after: Option<usize>,
    polled: Arc<AtomicBool>,
) -> (SchemaRef, SendableRecordBatchStream) {
    let schema = int_batch(&[]).schema();
    let items = (0..batches).map(move |b| {
        polled.store(true, Ordering::Relaxed);
        if fail_after == Some(b) {
            return Err(DataFusionError::Execution(
                "the source connection was lost".into(),
            ));
        }
        let first = (b * 1000) as i64;
        Ok(int_batch(&(first..first + 1000).collect::<Vec<_>>()))
    });
    let stream = futures::stream::iter(items).boxed();
    (
        schema.clone(),
        Box::pin(RecordBatchStreamAdapter::new(schema, stream)),
    )
}

fn add_count(lake: &Lake, id: &TableId, version: i64) -> usize {
    log_actions(lake, id, version)
        .iter()
        .filter(|a| a.get("add").is_some())
        .count()
}

#[tokio::test]
async fn an_overwrite_lands_every_batch_of_the_stream_in_one_commit() {
    let (_dir, lake) = tmp_lake();
    let id = TableId::bronze("shop", "orders");
    lake.write(&id, vec![int_batch(&[-1, -2])], &WriteSpec::append())
        .await
        .unwrap();
    let (schema, stream) = ids(50, None, Arc::default());
    let spec = WriteSpec::overwrite()
        .with_txn("loader", 1)
        .with_metadata("sluice.watermark", 42);
    let out = lake.write_stream(&id, schema, stream, &spec).await.unwrap();
    assert_eq!(
        out,
        WriteOutcome::Committed {
            version: 1,
            rows: 50_000
        }
    );
    assert_eq!(count(&lake, &id).await, 50_000, "the old rows are gone");
    assert_eq!(lake.txn_version(&id, "loader").await.unwrap(), Some(1));
    let commit = lake.commit_metadata(&id, "loader").await.unwrap().unwrap();
    assert_eq!(commit.version, 1);
    assert_eq!(commit.metadata["sluice.watermark"], 42);
    assert!(add_count(&lake, &id, 1) >= 1);
}

#[tokio::test]
async fn a_failing_stream_commits_nothing() {
    let (_dir, lake) = tmp_lake();
    let id = TableId::bronze("shop", "orders");
    lake.write(&id, vec![int_batch(&[1, 2, 3])], &WriteSpec::append())
        .await
        .unwrap();
    let (schema, stream) = ids(20, Some(10), Arc::default());
    let err = lake
        .write_stream(
            &id,
            schema,
            stream,
            &WriteSpec::overwrite().with_txn("loader", 1),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("connection was lost"), "{err}");
    assert_eq!(count(&lake, &id).await, 3, "the table is as it was");
    assert_eq!(lake.txn_version(&id, "loader").await.unwrap(), None);
}

#[tokio::test]
async fn a_recorded_txn_skips_the_write_without_reading_the_stream() {
    let (_dir, lake) = tmp_lake();
    let id = TableId::bronze("shop", "orders");
    let (schema, stream) = ids(3, None, Arc::default());
    let spec = WriteSpec::overwrite().with_txn("loader", 1);
    lake.write_stream(&id, schema, stream, &spec).await.unwrap();
    let polled = Arc::new(AtomicBool::new(false));
    let (schema, stream) = ids(3, None, polled.clone());
    let out = lake.write_stream(&id, schema, stream, &spec).await.unwrap();
    assert_eq!(out, WriteOutcome::AlreadyCommitted { version: Some(0) });
    assert!(!polled.load(Ordering::Relaxed));
    assert_eq!(count(&lake, &id).await, 3000);
}

#[tokio::test]
async fn an_empty_overwrite_empties_the_table_and_appends_create_partitions() {
    let (_dir, lake) = tmp_lake();
    let id = TableId::bronze("shop", "orders");
    let (schema, stream) = ids(2, None, Arc::default());
    lake.write_stream(&id, schema, stream, &WriteSpec::append())
        .await
        .unwrap();
    let (schema, stream) = ids(1, None, Arc::default());
    lake.write_stream(&id, schema, stream, &WriteSpec::append())
        .await
        .unwrap();
    assert_eq!(count(&lake, &id).await, 3000);
    let (schema, stream) = ids(0, None, Arc::default());
    let out = lake
        .write_stream(&id, schema, stream, &WriteSpec::overwrite())
        .await
        .unwrap();
    assert_eq!(
        out,
        WriteOutcome::Committed {
            version: 2,
            rows: 0
        }
    );
    assert_eq!(count(&lake, &id).await, 0);

    let parted = TableId::bronze("shop", "days");
    let batch = rows(&[(1, "a", "d1"), (2, "b", "d2"), (3, "c", "d1")]);
    let schema = batch.schema();
    let stream = futures::stream::iter([Ok(batch)]).boxed();
    let stream = Box::pin(RecordBatchStreamAdapter::new(schema.clone(), stream));
    lake.write_stream(
        &parted,
        schema,
        stream,
        &WriteSpec::append().partitioned_by(["day"]),
    )
    .await
    .unwrap();
    assert_eq!(add_count(&lake, &parted, 0), 2, "one file per day");
}

#[tokio::test]
async fn a_merge_collects_the_stream_and_upserts() {
    let (_dir, lake) = tmp_lake();
    let id = TableId::silver("numbers");
    lake.write(&id, vec![int_batch(&[1, 5000])], &WriteSpec::append())
        .await
        .unwrap();
    let (schema, stream) = ids(2, None, Arc::default());
    lake.write_stream(&id, schema, stream, &WriteSpec::merge(["id"]))
        .await
        .unwrap();
    assert_eq!(
        count(&lake, &id).await,
        2001,
        "1 matched, 5000 kept, 1998 new"
    );
}
