use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::Int64Array;
use arrow::datatypes::{DataType, Field, Schema};
use sluice_lake::Lake;

use super::*;
use crate::formats::{FileFormat, FormatError};
use crate::landing::app_id;

fn context() -> (tempfile::TempDir, IngestContext) {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
    (dir, IngestContext::new(lake, "run-1"))
}

fn target<'a>(rel: &'a str, pii: &'a BTreeMap<String, Pii>, txn_version: i64) -> FileTarget<'a> {
    FileTarget {
        source: "s",
        table: "t",
        rel,
        pii,
        txn_version,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_of_many_batches_lands_in_one_commit_naming_it_with_its_rejected_rows() {
    let (dir, cx) = context();
    // Rows of 100 KB: about six to a batch, so the file is several batches.
    let value = "x".repeat(100_000);
    let mut text = String::from("id,text\n");
    for i in 1..=40 {
        text.push_str(&format!("{i},{value}\n"));
        if i == 30 {
            text.push_str("oops\n");
        }
    }
    let path = dir.path().join("a.csv");
    std::fs::write(&path, text).unwrap();
    let pii = BTreeMap::new();
    let out = land_file(
        &cx,
        &target("data/a.csv", &pii, 1),
        path.clone(),
        ReadOptions::new(FileFormat::Csv),
    )
    .await
    .unwrap();
    assert_eq!(out.rows_read, 40);
    assert_eq!((out.landed.rows, out.landed.quarantined), (40, 1));
    assert!(out.landed.committed);
    let id = TableId::bronze("s", "t");
    let commits = cx.lake.app_commits(&id, &app_id("s", "t")).await.unwrap();
    assert_eq!(commits.len(), 1);
    assert_eq!(commits[0].txn_version, Some(1));
    assert_eq!(commits[0].metadata["sluice.file"], "data/a.csv");

    // The same file under the same version again: already committed, nothing written.
    let again = land_file(
        &cx,
        &target("data/a.csv", &pii, 1),
        path,
        ReadOptions::new(FileFormat::Csv),
    )
    .await
    .unwrap();
    assert!(!again.landed.committed);
    assert_eq!((again.landed.rows, again.landed.quarantined), (0, 0));
    let commits = cx.lake.app_commits(&id, &app_id("s", "t")).await.unwrap();
    assert_eq!(commits.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_error_after_a_batch_commits_nothing() {
    let (_dir, cx) = context();
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let reader: Reader = tokio::task::spawn_blocking(move || {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)]));
        let batch =
            RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![1, 2]))])
                .unwrap();
        let mut sink = ChannelSink(tx);
        sink.schema(&schema);
        assert!(sink.batch(batch.clone()));
        sink.rejected(RejectedRow {
            line: 4,
            reason: "line 4: bad".into(),
            raw: "x".into(),
            fields: None,
        });
        sink.batch(batch);
        Err(FormatError::Io {
            path: "data/a.csv".into(),
            source: std::io::Error::other("disk gone"),
        })
    });
    let pii = BTreeMap::new();
    let err = land_read(&cx, &target("data/a.csv", &pii, 1), rx, reader)
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("disk gone"), "{err}");
    assert!(
        cx.lake
            .load(&TableId::bronze("s", "t"))
            .await
            .unwrap()
            .is_none()
    );
    let quarantine = TableId::quarantine("s.t");
    assert!(cx.lake.load(&quarantine).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_without_an_accepted_row_still_records_the_file() {
    let (dir, cx) = context();
    let path = dir.path().join("b.csv");
    std::fs::write(&path, "id,amount\n1,lots\n").unwrap();
    let mut opts = ReadOptions::new(FileFormat::Csv);
    opts.declared = vec![("amount".into(), DataType::Float64)];
    let pii = BTreeMap::new();
    let out = land_file(&cx, &target("data/b.csv", &pii, 1), path, opts)
        .await
        .unwrap();
    assert_eq!(out.rows_read, 0);
    assert_eq!((out.landed.rows, out.landed.quarantined), (0, 1));
    let commits = cx
        .lake
        .app_commits(&TableId::bronze("s", "t"), &app_id("s", "t"))
        .await
        .unwrap();
    assert_eq!(commits.len(), 1);
    assert_eq!(commits[0].metadata["sluice.file"], "data/b.csv");
}
