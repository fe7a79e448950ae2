//! Tests of staged writes (stage, read, publish or discard) and of merges that rewrite only the
//! files whose key ranges can match.

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use sluice_engine::session::batch_stream;

use super::*;
use crate::test_util::{count, int_batch, log_actions, sql, tmp_lake};

fn stream_of(batches: Vec<RecordBatch>) -> (SchemaRef, SendableRecordBatchStream) {
    let schema = batches[0].schema();
    let items = futures::stream::iter(batches.into_iter().map(Ok));
    (schema.clone(), batch_stream(schema, items))
}

async fn stage(lake: &Lake, id: &TableId, batches: Vec<RecordBatch>) -> StagedFiles {
    let (schema, stream) = stream_of(batches);
    lake.stage_stream(id, schema, stream).await.unwrap()
}

/// `id, v` rows: ids `ids`, every `v` the given text.
fn keyed(ids: std::ops::Range<i64>, v: &str) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("v", DataType::Utf8, true),
    ]));
    let n = (ids.end - ids.start) as usize;
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(ids)),
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(v, n))),
        ],
    )
    .unwrap()
}

fn parquet_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".parquet"))
                .count()
        })
        .unwrap_or(0)
}

async fn staged_count(lake: &Lake, staged: &StagedFiles) -> i64 {
    let ctx = SessionContext::new();
    ctx.register_table("s", lake.staged_provider(staged).unwrap())
        .unwrap();
    let batches = ctx
        .sql("SELECT count(*) FROM s")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .value(0)
}

/// Staged files are readable but in no commit; publishing creates the table in one commit with the
/// txn, and a retry of that txn commits nothing and deletes what it staged.
#[tokio::test]
async fn staged_files_are_invisible_until_published_once() {
    let (_dir, lake) = tmp_lake();
    let id = TableId::gold("big");
    let staged = stage(&lake, &id, vec![int_batch(&[1, 2]), int_batch(&[3])]).await;
    assert_eq!((staged.rows(), staged.files()), (3, 1));
    assert_eq!(staged_count(&lake, &staged).await, 3);
    assert!(!lake.exists(&id).await.unwrap(), "staging commits nothing");

    let spec = WriteSpec::overwrite().with_txn("m", 1);
    let outcome = lake.publish_staged(staged, &spec).await.unwrap();
    assert_eq!(
        outcome,
        WriteOutcome::Committed {
            version: 0,
            rows: 3
        }
    );
    assert_eq!(count(&lake, &id).await, 3);
    let actions = log_actions(&lake, &id, 0);
    assert!(actions.iter().any(|a| a.get("txn").is_some()));
    let info = actions.iter().find_map(|a| a.get("commitInfo")).unwrap();
    assert_eq!(info["operationMetrics"]["num_added_rows"], 3);

    let dir = lake.table_url(&id).to_file_path().unwrap();
    let again = stage(&lake, &id, vec![int_batch(&[9])]).await;
    assert_eq!(parquet_files(&dir), 2);
    let outcome = lake.publish_staged(again, &spec).await.unwrap();
    assert_eq!(outcome, WriteOutcome::AlreadyCommitted { version: Some(0) });
    assert_eq!(parquet_files(&dir), 1, "the retry's staged file is deleted");
    assert_eq!(count(&lake, &id).await, 3);
}

/// An overwrite removes every old file (a WRITE when the schema is the same, a replace when it is
/// not); an append adds; a discard deletes the staged files and leaves the table alone.
#[tokio::test]
async fn overwrite_append_and_discard() {
    let (_dir, lake) = tmp_lake();
    let id = TableId::silver("t");
    let first = stage(&lake, &id, vec![int_batch(&[1, 2, 3])]).await;
    lake.publish_staged(first, &WriteSpec::overwrite())
        .await
        .unwrap();

    let second = stage(&lake, &id, vec![int_batch(&[7])]).await;
    let outcome = lake
        .publish_staged(second, &WriteSpec::overwrite())
        .await
        .unwrap();
    assert_eq!(
        outcome,
        WriteOutcome::Committed {
            version: 1,
            rows: 1
        }
    );
    let actions = log_actions(&lake, &id, 1);
    assert_eq!(
        actions.iter().filter(|a| a.get("remove").is_some()).count(),
        1
    );
    let info = actions.iter().find_map(|a| a.get("commitInfo")).unwrap();
    assert_eq!(info["operation"], "WRITE");
    assert_eq!(count(&lake, &id).await, 1);

    let third = stage(&lake, &id, vec![int_batch(&[8, 9])]).await;
    lake.publish_staged(third, &WriteSpec::append())
        .await
        .unwrap();
    assert!(
        sql(&lake, &id, "SELECT sum(id) AS s FROM t")
            .await
            .contains("24")
    );

    let dropped = stage(&lake, &id, vec![int_batch(&[100])]).await;
    let dir = lake.table_url(&id).to_file_path().unwrap();
    let before = parquet_files(&dir);
    lake.discard_staged(dropped).await.unwrap();
    assert_eq!(parquet_files(&dir), before - 1);
    assert_eq!(count(&lake, &id).await, 3);

    // A new schema replaces the table's.
    let wider = stage(&lake, &id, vec![keyed(0..4, "x")]).await;
    lake.publish_staged(wider, &WriteSpec::overwrite())
        .await
        .unwrap();
    assert!(
        sql(&lake, &id, "SELECT count(v) AS n FROM t")
            .await
            .contains('4')
    );
}

/// A merge of 1,000 changed rows into a table of 20 files of 1,000 keys each reads and rewrites
/// only the file whose key range holds them (asserted from the Delta log), and lands the changes.
#[tokio::test]
async fn a_merge_rewrites_only_the_files_its_keys_can_touch() {
    let (_dir, lake) = tmp_lake();
    let id = TableId::gold("wide");
    for f in 0..20 {
        let start = f * 1000;
        lake.write(
            &id,
            vec![keyed(start..start + 1000, "old")],
            &WriteSpec::append(),
        )
        .await
        .unwrap();
    }
    let before = lake.load(&id).await.unwrap().unwrap().version().unwrap() as i64;

    let changed = stage(&lake, &id, vec![keyed(7000..8000, "new")]).await;
    let spec = WriteSpec::merge(["id"]).with_txn("m", 1);
    let outcome = lake.merge_staged(changed, &spec).await.unwrap();
    let version = before + 1;
    assert_eq!(
        outcome,
        WriteOutcome::Committed {
            version,
            rows: 1000
        }
    );

    let actions = log_actions(&lake, &id, version);
    let removed = actions.iter().filter(|a| a.get("remove").is_some()).count();
    assert_eq!(removed, 1, "only the file of keys 7000..8000 is rewritten");
    assert_eq!(count(&lake, &id).await, 20_000);
    let changed = sql(&lake, &id, "SELECT count(*) AS n FROM t WHERE v = 'new'").await;
    assert!(changed.contains("1000"), "{changed}");

    // A retry of the same merge commits nothing.
    let again = stage(&lake, &id, vec![keyed(7000..8000, "newer")]).await;
    let outcome = lake.merge_staged(again, &spec).await.unwrap();
    assert!(matches!(outcome, WriteOutcome::AlreadyCommitted { .. }));
}
