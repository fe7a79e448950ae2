//! Tests of [`Lake::write`] against real Delta tables in temporary folders.

use deltalake::DeltaTableBuilder;
use serde_json::Value;
use sluice_engine::SessionContext;

use super::*;
use crate::test_util::{count, int_batch, log_actions, rows, sql, tmp_lake};

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
async fn append_creates_the_table_then_adds_rows() {
    let (_dir, lake) = tmp_lake();
    let id = TableId::silver("numbers");
    let spec = WriteSpec::append();
    let first = lake
        .write(&id, vec![int_batch(&[1, 2])], &spec)
        .await
        .unwrap();
    assert_eq!(first, committed(0, 2));
    let second = lake
        .write(&id, vec![int_batch(&[3]), int_batch(&[4, 5])], &spec)
        .await
        .unwrap();
    assert_eq!(second, committed(1, 3));
    assert_eq!(count(&lake, &id).await, 5);
}

#[tokio::test]
async fn datafusion_sql_reads_a_written_table() {
    let (_dir, lake) = tmp_lake();
    let id = TableId::bronze("shop", "orders");
    lake.write(
        &id,
        vec![rows(&[(1, "a", "d1"), (2, "b", "d2")])],
        &WriteSpec::append(),
    )
    .await
    .unwrap();
    let ctx = SessionContext::new();
    let provider = lake.table_provider(&id).await.unwrap().unwrap();
    ctx.register_table("orders", provider).unwrap();
    let batches = ctx
        .sql("SELECT count(*) FROM orders")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let formatted = arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string();
    assert!(formatted.contains("| 2 "), "{formatted}");
}

#[tokio::test]
async fn tables_use_the_base_protocol_without_features() {
    let (_dir, lake) = tmp_lake();
    let id = TableId::silver("plain");
    lake.write(
        &id,
        vec![rows(&[(1, "a", "d1")])],
        &WriteSpec::append().partitioned_by(["day"]),
    )
    .await
    .unwrap();
    let table = lake.load(&id).await.unwrap().unwrap();
    let protocol = table.snapshot().unwrap().protocol().clone();
    assert_eq!(protocol.min_reader_version(), 1);
    assert_eq!(protocol.min_writer_version(), 2);
    let json = serde_json::to_value(&protocol).unwrap();
    assert!(json.get("readerFeatures").is_none(), "{json}");
    assert!(json.get("writerFeatures").is_none(), "{json}");
}

#[tokio::test]
async fn empty_append_without_txn_commits_nothing() {
    let (_dir, lake) = tmp_lake();
    let id = TableId::silver("empty");
    let spec = WriteSpec::append();
    assert_eq!(
        lake.write(&id, vec![], &spec).await.unwrap(),
        WriteOutcome::Empty
    );
    assert_eq!(
        lake.write(&id, vec![int_batch(&[])], &spec).await.unwrap(),
        WriteOutcome::Empty
    );
    assert!(!lake.exists(&id).await.unwrap());

    lake.write(&id, vec![int_batch(&[1])], &spec).await.unwrap();
    assert_eq!(
        lake.write(&id, vec![], &spec).await.unwrap(),
        WriteOutcome::Empty
    );
    let merge = WriteSpec::merge(["id"]);
    assert_eq!(
        lake.write(&id, vec![int_batch(&[])], &merge).await.unwrap(),
        WriteOutcome::Empty
    );
    assert_eq!(lake.load(&id).await.unwrap().unwrap().version(), Some(0));
}

#[tokio::test]
async fn overwrite_is_one_commit_and_old_versions_stay_readable() {
    let (_dir, lake) = tmp_lake();
    let id = TableId::gold("report");
    lake.write(&id, vec![int_batch(&[1, 2, 3])], &WriteSpec::append())
        .await
        .unwrap();
    let old_reader = lake.table_provider(&id).await.unwrap().unwrap();

    let outcome = lake
        .write(
            &id,
            vec![rows(&[(7, "x", "d1"), (8, "y", "d2")])],
            &WriteSpec::overwrite(),
        )
        .await
        .unwrap();
    assert_eq!(outcome, committed(1, 2));
    assert_eq!(
        sql(&lake, &id, "SELECT * FROM t ORDER BY id").await,
        [
            "+----+------+-----+",
            "| id | name | day |",
            "+----+------+-----+",
            "| 7  | x    | d1  |",
            "| 8  | y    | d2  |",
            "+----+------+-----+",
        ]
        .join("\n")
    );
    // Removes, adds, the new schema and commitInfo are in the one commit file.
    let kinds = action_kinds(&log_actions(&lake, &id, 1));
    for kind in ["commitInfo", "metaData", "add", "remove"] {
        assert!(
            kinds.contains(&kind.to_string()),
            "{kind} missing in {kinds:?}"
        );
    }

    // A reader pinned before the overwrite still sees the old rows...
    let ctx = SessionContext::new();
    ctx.register_table("old", old_reader).unwrap();
    let batches = ctx
        .sql("SELECT count(*) FROM old")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let old = arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string();
    assert!(old.contains("| 3 "), "{old}");
    // ...and time travel to version 0 works.
    let v0 = DeltaTableBuilder::from_url(lake.table_url(&id))
        .unwrap()
        .with_version(0)
        .load()
        .await
        .unwrap();
    let arrow_schema = v0.snapshot().unwrap().snapshot().arrow_schema();
    assert_eq!(arrow_schema.fields().len(), 1);
    assert_eq!(v0.snapshot().unwrap().log_data().num_files(), 1);
}

#[tokio::test]
async fn overwrite_with_no_rows_empties_the_table() {
    let (_dir, lake) = tmp_lake();
    let id = TableId::silver("shrinking");
    lake.write(&id, vec![int_batch(&[1, 2])], &WriteSpec::append())
        .await
        .unwrap();
    assert_eq!(
        lake.write(&id, vec![], &WriteSpec::overwrite())
            .await
            .unwrap(),
        committed(1, 0)
    );
    assert_eq!(count(&lake, &id).await, 0);
    // No table and nothing to take a schema from: nothing happens.
    let missing = TableId::silver("never");
    assert_eq!(
        lake.write(&missing, vec![], &WriteSpec::overwrite())
            .await
            .unwrap(),
        WriteOutcome::Empty
    );
}

#[tokio::test]
async fn merge_upserts_in_one_commit() {
    let (_dir, lake) = tmp_lake();
    let id = TableId::silver("customers");
    let spec = WriteSpec::merge(["id"]).partitioned_by(["day"]);
    // No table yet: the merge is an append (and creates the partitioning).
    let created = lake
        .write(&id, vec![rows(&[(1, "a", "d1"), (2, "b", "d1")])], &spec)
        .await
        .unwrap();
    assert_eq!(created, committed(0, 2));

    let merged = lake
        .write(&id, vec![rows(&[(2, "B", "d2"), (3, "c", "d2")])], &spec)
        .await
        .unwrap();
    assert_eq!(merged, committed(1, 2));
    assert_eq!(
        sql(&lake, &id, "SELECT id, name, day FROM t ORDER BY id").await,
        [
            "+----+------+-----+",
            "| id | name | day |",
            "+----+------+-----+",
            "| 1  | a    | d1  |",
            "| 2  | B    | d2  |",
            "| 3  | c    | d2  |",
            "+----+------+-----+",
        ]
        .join("\n")
    );
    let history = lake.history(&id, 10).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].version, 1);
    assert_eq!(history[0].operation.as_deref(), Some("MERGE"));
    assert_eq!(history[0].rows_added, Some(1));
    assert_eq!(history[0].rows_updated, Some(1));
    assert_eq!(history[1].operation.as_deref(), Some("WRITE"));
    assert_eq!(history[1].rows_added, Some(2));
}

#[tokio::test]
async fn merge_rejects_missing_keys() {
    let (_dir, lake) = tmp_lake();
    let id = TableId::silver("customers");
    let batch = rows(&[(1, "a", "d1")]);
    let no_keys = WriteSpec::merge(Vec::<String>::new());
    let err = lake
        .write(&id, vec![batch.clone()], &no_keys)
        .await
        .unwrap_err();
    assert!(matches!(err, LakeError::NoMergeKeys { .. }), "{err}");
    let err = lake
        .write(&id, vec![batch], &WriteSpec::merge(["customer_id"]))
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "silver.customers: merge key `customer_id` is not a column of the data; \
         columns are: id, name, day"
    );
}

#[tokio::test]
async fn partition_columns_apply_when_the_table_is_created() {
    let (dir, lake) = tmp_lake();
    let id = TableId::bronze("shop", "orders");
    let spec = WriteSpec::append().partitioned_by(["day"]);
    lake.write(
        &id,
        vec![rows(&[(1, "a", "2024-05-01"), (2, "b", "2024-05-02")])],
        &spec,
    )
    .await
    .unwrap();
    let table = lake.load(&id).await.unwrap().unwrap();
    assert_eq!(
        table.snapshot().unwrap().metadata().partition_columns(),
        &["day".to_string()]
    );
    assert!(
        dir.path()
            .join("bronze/shop/orders/day=2024-05-01")
            .is_dir()
    );
    assert!(
        dir.path()
            .join("bronze/shop/orders/day=2024-05-02")
            .is_dir()
    );
    // Later appends keep the table's partitioning whatever they ask for.
    lake.write(
        &id,
        vec![rows(&[(3, "c", "2024-05-03")])],
        &WriteSpec::append(),
    )
    .await
    .unwrap();
    assert!(
        dir.path()
            .join("bronze/shop/orders/day=2024-05-03")
            .is_dir()
    );
    assert_eq!(
        sql(
            &lake,
            &id,
            "SELECT count(*) AS n FROM t WHERE day = '2024-05-02'"
        )
        .await,
        ["+---+", "| n |", "+---+", "| 1 |", "+---+"].join("\n")
    );

    let err = lake
        .write(
            &id,
            vec![int_batch(&[1])],
            &WriteSpec::append().partitioned_by(["day"]),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            LakeError::MissingColumn {
                role: "partition column",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn schema_evolution_adds_columns_only_when_asked() {
    let (_dir, lake) = tmp_lake();
    let id = TableId::bronze("shop", "customers");
    lake.write(&id, vec![int_batch(&[1, 2])], &WriteSpec::append())
        .await
        .unwrap();
    let wider = rows(&[(3, "c", "d1")]);
    let err = lake
        .write(&id, vec![wider.clone()], &WriteSpec::append())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("bronze.shop/customers: append failed"),
        "{err}"
    );

    let evolve = WriteSpec::append().with_merge_schema(true);
    assert_eq!(
        lake.write(&id, vec![wider], &evolve).await.unwrap(),
        committed(1, 1)
    );
    assert_eq!(
        sql(&lake, &id, "SELECT * FROM t ORDER BY id").await,
        [
            "+----+------+-----+",
            "| id | name | day |",
            "+----+------+-----+",
            "| 1  |      |     |",
            "| 2  |      |     |",
            "| 3  | c    | d1  |",
            "+----+------+-----+",
        ]
        .join("\n")
    );
}

#[tokio::test]
async fn reserved_metadata_keys_and_mixed_schemas_are_refused() {
    let (_dir, lake) = tmp_lake();
    let id = TableId::silver("strict");
    let spec = WriteSpec::append().with_metadata("operation", "oops");
    let err = lake
        .write(&id, vec![int_batch(&[1])], &spec)
        .await
        .unwrap_err();
    assert!(matches!(err, LakeError::ReservedMetadataKey { ref key, .. } if key == "operation"));

    let err = lake
        .write(
            &id,
            vec![int_batch(&[1]), rows(&[(1, "a", "d")])],
            &WriteSpec::append(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, LakeError::SchemaMismatch { batch: 1, .. }),
        "{err}"
    );
    assert!(!lake.exists(&id).await.unwrap());
}

#[tokio::test]
async fn history_is_newest_first_and_limited() {
    let (_dir, lake) = tmp_lake();
    let id = TableId::silver("busy");
    for n in 0..4 {
        let spec = WriteSpec::append().with_metadata("sluice.batch_id", format!("b{n}"));
        lake.write(&id, vec![int_batch(&[n])], &spec).await.unwrap();
    }
    let history = lake.history(&id, 2).await.unwrap();
    let versions: Vec<i64> = history.iter().map(|c| c.version).collect();
    assert_eq!(versions, [3, 2]);
    assert_eq!(history[0].metadata["sluice.batch_id"], "b3");
    assert!(history[0].timestamp.is_some());
    assert!(lake.history(&id, 0).await.unwrap().is_empty());
    assert_eq!(lake.history(&id, 100).await.unwrap().len(), 4);
}

#[tokio::test]
async fn replace_where_replaces_exactly_one_partition_and_is_idempotent() {
    let (_dir, lake) = tmp_lake();
    let id = TableId::gold("daily");
    let spec = |day: &str| WriteSpec {
        mode: WriteMode::ReplaceWhere {
            predicate: format!("day = '{day}'"),
        },
        partition_by: vec!["day".into()],
        ..WriteSpec::default()
    };
    // The first write creates the partitioned table.
    lake.write(
        &id,
        vec![rows(&[(1, "a", "d1"), (2, "b", "d1")])],
        &spec("d1"),
    )
    .await
    .unwrap();
    lake.write(&id, vec![rows(&[(3, "c", "d2")])], &spec("d2"))
        .await
        .unwrap();
    // Rebuilding d1 twice leaves d1 with the new rows only, and d2 untouched.
    for _ in 0..2 {
        lake.write(&id, vec![rows(&[(10, "x", "d1")])], &spec("d1"))
            .await
            .unwrap();
    }
    assert_eq!(
        sql(
            &lake,
            &id,
            "SELECT day, count(*) AS n, sum(id) AS s FROM t GROUP BY day ORDER BY day"
        )
        .await,
        "+-----+---+----+\n| day | n | s  |\n+-----+---+----+\n| d1  | 1 | 10 |\n| d2  | 1 | 3  |\n+-----+---+----+"
    );
    // An empty rebuild empties that partition only.
    let empty = RecordBatch::new_empty(rows(&[]).schema());
    lake.write(&id, vec![empty], &spec("d2")).await.unwrap();
    assert_eq!(count(&lake, &id).await, 1);
    // A row outside the predicate is refused, and nothing changes.
    let err = lake
        .write(&id, vec![rows(&[(4, "d", "d3")])], &spec("d1"))
        .await;
    assert!(
        err.is_err(),
        "a row outside the replaced slice must be refused"
    );
    assert_eq!(count(&lake, &id).await, 1);
}
