//! Tests of idempotent writes: app transactions, empty commits that carry a txn, commit
//! metadata in the same commit as the data, and writers racing with the same token.

use serde_json::Value;

use super::*;
use crate::test_util::{count, int_batch, log_actions, rows, tmp_lake};

fn committed(version: i64, rows: u64) -> WriteOutcome {
    WriteOutcome::Committed { version, rows }
}

/// Names of the actions in one commit file, in order (`commitInfo`, `add`, `txn`, ...).
fn action_kinds(actions: &[Value]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| a.as_object()?.keys().next().cloned())
        .collect()
}

#[tokio::test]
async fn empty_append_with_txn_still_commits_txn_and_metadata() {
    let (_dir, lake) = tmp_lake();
    let id = TableId::bronze("shop", "orders");
    lake.write(
        &id,
        vec![rows(&[(1, "a", "d1")])],
        &WriteSpec::append().partitioned_by(["day"]),
    )
    .await
    .unwrap();

    let spec = WriteSpec::append()
        .with_txn("load_orders", 2)
        .with_metadata("sluice.watermark", "2024-05-02");
    assert_eq!(
        lake.write(&id, vec![], &spec).await.unwrap(),
        committed(1, 0)
    );
    assert_eq!(count(&lake, &id).await, 1);
    assert_eq!(lake.txn_version(&id, "load_orders").await.unwrap(), Some(2));
    let commit = lake
        .commit_metadata(&id, "load_orders")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(commit.version, 1);
    assert_eq!(commit.metadata["sluice.watermark"], "2024-05-02");
    let kinds = action_kinds(&log_actions(&lake, &id, 1));
    assert!(!kinds.contains(&"add".to_string()), "{kinds:?}");
    assert!(kinds.contains(&"txn".to_string()), "{kinds:?}");
    // The marker commit did not touch schema or partitioning.
    let table = lake.load(&id).await.unwrap().unwrap();
    assert_eq!(
        table.snapshot().unwrap().metadata().partition_columns(),
        &["day".to_string()]
    );

    // A retry of the empty batch is recognised too, and a merge behaves the same.
    assert_eq!(
        lake.write(&id, vec![], &spec).await.unwrap(),
        WriteOutcome::AlreadyCommitted { version: Some(1) }
    );
    let merge = WriteSpec::merge(["id"]).with_txn("load_orders", 3);
    assert_eq!(
        lake.write(&id, vec![], &merge).await.unwrap(),
        committed(2, 0)
    );
}

#[tokio::test]
async fn empty_write_with_txn_creates_the_table_when_the_schema_is_known() {
    let (_dir, lake) = tmp_lake();
    let id = TableId::silver("fresh");
    let spec = WriteSpec::append().with_txn("node", 1);
    // No batch, no table: there is no schema to create the table with.
    assert_eq!(
        lake.write(&id, vec![], &spec).await.unwrap(),
        WriteOutcome::Empty
    );
    assert!(!lake.exists(&id).await.unwrap());
    // A zero-row batch carries a schema: the table is created holding the txn.
    assert_eq!(
        lake.write(&id, vec![int_batch(&[])], &spec).await.unwrap(),
        committed(0, 0)
    );
    assert_eq!(count(&lake, &id).await, 0);
    assert_eq!(lake.txn_version(&id, "node").await.unwrap(), Some(1));
}

#[tokio::test]
async fn same_txn_commits_once_with_metadata_in_the_same_commit() {
    let (_dir, lake) = tmp_lake();
    let id = TableId::bronze("shop", "orders");
    let spec = |version: i64| {
        WriteSpec::append()
            .with_txn("load_orders", version)
            .with_metadata("sluice.watermark", format!("w{version}"))
            .with_metadata("sluice.files", serde_json::json!(["a.csv", "b.csv"]))
    };
    let batch = int_batch(&[1, 2, 3]);
    assert_eq!(
        lake.write(&id, vec![batch.clone()], &spec(1))
            .await
            .unwrap(),
        committed(0, 3)
    );
    assert_eq!(
        lake.write(&id, vec![batch.clone()], &spec(1))
            .await
            .unwrap(),
        WriteOutcome::AlreadyCommitted { version: Some(0) }
    );
    assert_eq!(count(&lake, &id).await, 3);
    assert_eq!(
        lake.write(&id, vec![batch.clone()], &spec(2))
            .await
            .unwrap(),
        committed(1, 3)
    );
    // An older token is also "already committed" (the txn version only moves forward).
    assert!(matches!(
        lake.write(&id, vec![batch], &spec(1)).await.unwrap(),
        WriteOutcome::AlreadyCommitted { .. }
    ));
    assert_eq!(count(&lake, &id).await, 6);
    assert_eq!(lake.txn_version(&id, "load_orders").await.unwrap(), Some(2));
    assert_eq!(lake.txn_version(&id, "other_node").await.unwrap(), None);

    // Data, txn and custom metadata sit in one commit file.
    let actions = log_actions(&lake, &id, 1);
    let info = actions.iter().find_map(|a| a.get("commitInfo")).unwrap();
    assert_eq!(info["sluice.watermark"], "w2");
    assert_eq!(info["sluice.files"], serde_json::json!(["a.csv", "b.csv"]));
    assert_eq!(info[APP_ID_KEY], "load_orders");
    let txn = actions.iter().find_map(|a| a.get("txn")).unwrap();
    assert_eq!(txn["appId"], "load_orders");
    assert_eq!(txn["version"], 2);
    assert!(actions.iter().any(|a| a.get("add").is_some()));

    let commit = lake
        .commit_metadata(&id, "load_orders")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(commit.version, 1);
    assert_eq!(commit.txn_version, Some(2));
    assert_eq!(commit.metadata["sluice.watermark"], "w2");
    assert!(!commit.metadata.contains_key("operationMetrics"));
    assert!(
        lake.commit_metadata(&id, "other_node")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_writers_with_the_same_txn_commit_once() {
    let (_dir, lake) = tmp_lake();
    let id = TableId::silver("raced");
    lake.write(&id, vec![int_batch(&[0])], &WriteSpec::append())
        .await
        .unwrap();
    let spec = WriteSpec::append().with_txn("node", 1);
    let (a, b) = tokio::join!(
        lake.write(&id, vec![int_batch(&[1, 2])], &spec),
        lake.write(&id, vec![int_batch(&[1, 2])], &spec),
    );
    let outcomes = [a.unwrap(), b.unwrap()];
    let wins = outcomes
        .iter()
        .filter(|o| matches!(o, WriteOutcome::Committed { .. }))
        .count();
    assert_eq!(wins, 1, "{outcomes:?}");
    assert_eq!(count(&lake, &id).await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_table_creators_with_the_same_txn_commit_once() {
    for _ in 0..5 {
        let (_dir, lake) = tmp_lake();
        let id = TableId::silver("raced_new");
        let spec = WriteSpec::append().with_txn("node", 1);
        let (a, b) = tokio::join!(
            lake.write(&id, vec![int_batch(&[1, 2])], &spec),
            lake.write(&id, vec![int_batch(&[1, 2])], &spec),
        );
        let outcomes = [a.unwrap(), b.unwrap()];
        let wins = outcomes
            .iter()
            .filter(|o| matches!(o, WriteOutcome::Committed { .. }))
            .count();
        assert_eq!(wins, 1, "{outcomes:?}");
        assert_eq!(count(&lake, &id).await, 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_table_creators_without_txn_both_land() {
    let (_dir, lake) = tmp_lake();
    let id = TableId::silver("raced_plain");
    let spec = WriteSpec::append();
    let (a, b) = tokio::join!(
        lake.write(&id, vec![int_batch(&[1, 2])], &spec),
        lake.write(&id, vec![int_batch(&[3])], &spec),
    );
    let mut versions = [a.unwrap(), b.unwrap()].map(|o| match o {
        WriteOutcome::Committed { version, .. } => version,
        other => panic!("expected a commit, got {other:?}"),
    });
    versions.sort();
    assert_eq!(versions, [0, 1]);
    assert_eq!(count(&lake, &id).await, 3);
}
