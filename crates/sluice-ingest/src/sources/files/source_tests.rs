//! Landing many files of a table: in parallel, one commit per file, in file order, exactly once.

use std::path::Path;

use sluice_core::SourceDecl;
use sluice_lake::{Lake, TableId};

use super::*;
use crate::source::{IngestContext, Source};

fn source(root: &Path, parallelism: usize) -> FilesSource {
    let text = format!(
        "kind: files\ntables:\n  - name: t\n    path: data/*\n    parallelism: {parallelism}\n"
    );
    let decl = SourceDecl::parse(Path::new("sources/s.yml"), &text).unwrap();
    FilesSource::from_decl(&decl, root).unwrap()
}

fn write(root: &Path, name: &str, text: &str) {
    let path = root.join("data").join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// `rows` rows `id,v` from `first`.
fn csv(first: usize, rows: usize) -> String {
    let mut text = String::from("id,v\n");
    for i in first..first + rows {
        text.push_str(&format!("{i},v{i}\n"));
    }
    text
}

async fn count(lake: &Lake, sql: &str) -> i64 {
    let id = TableId::bronze("s", "t");
    let ctx = sluice_engine::SessionContext::new();
    ctx.register_table("t", lake.table_provider(&id).await.unwrap().unwrap())
        .unwrap();
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let column = batches[0].column(0);
    arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(column).value(0)
}

/// The files named by the table's commits, in commit order, and their txn versions.
async fn committed_files(lake: &Lake) -> Vec<(String, i64)> {
    let id = TableId::bronze("s", "t");
    let mut commits = lake
        .app_commits(&id, &crate::landing::app_id("s", "t"))
        .await
        .unwrap();
    commits.sort_by_key(|c| c.version);
    commits
        .iter()
        .map(|c| {
            (
                c.metadata["sluice.file"].as_str().unwrap().to_string(),
                c.txn_version.unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn files_land_in_parallel_each_in_its_commit_in_file_order() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for i in 1..=6 {
        let mut text = csv(i * 1000, 500);
        if i == 4 {
            text.push_str("not-a-number,x\n");
        }
        write(root, &format!("f{i:02}.csv"), &text);
    }
    let lake = Lake::open(root.join("lake").to_str().unwrap()).unwrap();
    let cx = IngestContext::new(lake.clone(), "run-1");
    let report = source(root, 3).ingest("t", &cx).await.unwrap();
    let names: Vec<String> = (1..=6).map(|i| format!("data/f{i:02}.csv")).collect();
    assert_eq!(report.files, names);
    assert_eq!(report.commits, 6);
    assert_eq!((report.rows_written, report.rows_quarantined), (3000, 1));
    assert_eq!(
        committed_files(&lake).await,
        names.iter().cloned().zip(1..).collect::<Vec<_>>(),
        "one commit per file, in file order, txn versions in order"
    );
    assert_eq!(count(&lake, "SELECT count(DISTINCT id) FROM t").await, 3000);
    let quarantine = lake
        .table_provider(&TableId::quarantine("s.t"))
        .await
        .unwrap();
    assert!(quarantine.is_some(), "the bad row is quarantined");

    // Again: nothing new lands.
    let report = source(root, 3).ingest("t", &cx).await.unwrap();
    assert_eq!((report.files_skipped, report.commits), (6, 0));
    assert_eq!(count(&lake, "SELECT count(*) FROM t").await, 3000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_file_that_evolves_the_table_makes_the_later_ones_land_against_the_new_schema() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "f1.csv", &csv(0, 10));
    write(root, "f2.csv", "id,v,extra\n100,a,1\n101,b,2\n");
    write(root, "f3.csv", &csv(200, 10));
    let lake = Lake::open(root.join("lake").to_str().unwrap()).unwrap();
    let cx = IngestContext::new(lake.clone(), "run-1");
    let report = source(root, 4).ingest("t", &cx).await.unwrap();
    assert_eq!(report.commits, 3);
    assert_eq!(report.rows_written, 22);
    assert_eq!(
        committed_files(&lake).await,
        vec![
            ("data/f1.csv".to_string(), 1),
            ("data/f2.csv".to_string(), 2),
            ("data/f3.csv".to_string(), 3)
        ]
    );
    assert_eq!(count(&lake, "SELECT sum(extra) FROM t").await, 3);
    assert_eq!(
        count(&lake, "SELECT count(*) FROM t WHERE extra IS NULL").await,
        20
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_file_stops_the_batch_after_the_files_before_it_and_nothing_lands_twice() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "f1.csv", &csv(0, 10));
    write(root, "f2.csv", &csv(10, 10));
    write(root, "f3.txt", "no format\n");
    write(root, "f4.csv", &csv(30, 10));
    let lake = Lake::open(root.join("lake").to_str().unwrap()).unwrap();
    let cx = IngestContext::new(lake.clone(), "run-1");
    let err = source(root, 4).ingest("t", &cx).await.unwrap_err();
    assert!(err.to_string().contains("f3.txt"), "{err}");
    assert_eq!(
        committed_files(&lake)
            .await
            .into_iter()
            .map(|(f, _)| f)
            .collect::<Vec<_>>(),
        vec!["data/f1.csv", "data/f2.csv"],
        "the files before the failing one, not the one after"
    );
    // f4 may have been staged: its files are in no commit.
    assert_eq!(count(&lake, "SELECT count(*) FROM t").await, 20);

    std::fs::remove_file(root.join("data/f3.txt")).unwrap();
    let report = source(root, 4).ingest("t", &cx).await.unwrap();
    assert_eq!(report.files, vec!["data/f4.csv"]);
    assert_eq!(count(&lake, "SELECT count(*) FROM t").await, 30);
    assert_eq!(count(&lake, "SELECT count(DISTINCT id) FROM t").await, 30);
}
