//! Staged appends to a partitioned table, committed in order.

use arrow::array::RecordBatch;
use sluice_engine::session::batch_stream;

use super::*;
use crate::test_util::{count, log_actions, rows, sql, tmp_lake};

async fn stage(lake: &Lake, id: &TableId, batch: RecordBatch) -> StagedFiles {
    let schema = batch.schema();
    let stream = batch_stream(schema.clone(), futures::stream::iter([Ok(batch)]));
    lake.stage_append(id, schema, &["day".to_string()], stream)
        .await
        .unwrap()
}

fn spec(version: i64) -> WriteSpec {
    WriteSpec::append()
        .partitioned_by(["day"])
        .with_txn("app", version)
        .with_metadata("file", format!("f{version}"))
}

#[tokio::test]
async fn staged_appends_commit_in_the_order_asked_with_partitions_and_txn() {
    let (_dir, lake) = tmp_lake();
    let id = TableId::bronze("s", "t");
    lake.write(&id, vec![rows(&[(1, "a", "d1")])], &spec(1))
        .await
        .unwrap();
    // Staged together, before either commits.
    let second = stage(&lake, &id, rows(&[(2, "b", "d1"), (3, "c", "d2")])).await;
    let third = stage(&lake, &id, rows(&[(4, "d", "d2")])).await;
    assert_eq!(count(&lake, &id).await, 1, "staged rows are invisible");
    assert!(lake.staged_fit(&second, &spec(2)).await.unwrap());

    let out = lake.append_staged(second, &spec(2)).await.unwrap();
    assert_eq!(
        out,
        Some(WriteOutcome::Committed {
            version: 1,
            rows: 2
        })
    );
    let out = lake.append_staged(third.clone(), &spec(3)).await.unwrap();
    assert_eq!(
        out,
        Some(WriteOutcome::Committed {
            version: 2,
            rows: 1
        })
    );
    assert_eq!(lake.txn_version(&id, "app").await.unwrap(), Some(3));
    assert_eq!(
        sql(
            &lake,
            &id,
            "SELECT day, count(*) AS n FROM t GROUP BY day ORDER BY day"
        )
        .await,
        "+-----+---+\n| day | n |\n+-----+---+\n| d1  | 2 |\n| d2  | 2 |\n+-----+---+"
    );
    // Each add carries its partition value; the commit its metadata.
    let actions = log_actions(&lake, &id, 1);
    let days: Vec<_> = actions
        .iter()
        .filter_map(|a| a.get("add"))
        .map(|add| add["partitionValues"]["day"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(days.len(), 2);
    assert!(days.contains(&"d1".to_string()) && days.contains(&"d2".to_string()));
    let info = actions.iter().find_map(|a| a.get("commitInfo")).unwrap();
    assert_eq!(info["file"], "f2");

    // The same txn again commits nothing.
    let again = lake.append_staged(third, &spec(3)).await.unwrap();
    assert!(
        matches!(again, Some(WriteOutcome::AlreadyCommitted { .. })),
        "{again:?}"
    );
    assert_eq!(count(&lake, &id).await, 4);
}

#[tokio::test]
async fn a_table_that_changed_or_does_not_exist_takes_no_staged_files() {
    let (_dir, lake) = tmp_lake();
    let id = TableId::bronze("s", "t");
    let early = stage(&lake, &id, rows(&[(1, "a", "d1")])).await;
    assert!(!lake.staged_fit(&early, &spec(1)).await.unwrap());
    assert_eq!(
        lake.append_staged(early.clone(), &spec(1)).await.unwrap(),
        None
    );

    lake.write(
        &id,
        vec![crate::test_util::int_batch(&[7])],
        &WriteSpec::append(),
    )
    .await
    .unwrap();
    assert!(
        !lake.staged_fit(&early, &spec(1)).await.unwrap(),
        "another schema"
    );
    assert_eq!(lake.append_staged(early, &spec(1)).await.unwrap(), None);
    assert_eq!(count(&lake, &id).await, 1, "nothing committed");
}
