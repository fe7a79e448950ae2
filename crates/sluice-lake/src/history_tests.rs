use sluice_engine::SessionContext;

use super::*;
use crate::test_util::{int_batch, tmp_lake};
use crate::write::WriteSpec;

/// Sorted ids of a provider's rows.
async fn ids(provider: Arc<dyn TableProvider>) -> Vec<i64> {
    let ctx = SessionContext::new();
    ctx.register_table("t", provider).unwrap();
    let batches = ctx
        .sql("SELECT id FROM t ORDER BY id")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    batches
        .iter()
        .flat_map(|b| {
            let col = b
                .column(0)
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .unwrap();
            col.values().to_vec()
        })
        .collect()
}

/// Three versions: [1, 2], then + [3], then overwritten by [9]; the second made by run `r2`.
async fn three_versions() -> (tempfile::TempDir, Lake, TableId) {
    let (dir, lake) = tmp_lake();
    let id = TableId::silver("tt");
    lake.write(&id, vec![int_batch(&[1, 2])], &WriteSpec::append())
        .await
        .unwrap();
    let tagged = WriteSpec::append().with_metadata(RUN_ID_KEY, "r2");
    lake.write(&id, vec![int_batch(&[3])], &tagged)
        .await
        .unwrap();
    lake.write(&id, vec![int_batch(&[9])], &WriteSpec::overwrite())
        .await
        .unwrap();
    (dir, lake, id)
}

#[tokio::test]
async fn versions_list_operations_runs_and_row_counts() {
    let (_dir, lake, id) = three_versions().await;
    let versions = lake.versions(&id).await.unwrap();
    let summary: Vec<_> = versions
        .iter()
        .map(|v| {
            (
                v.version,
                v.rows_added,
                v.rows_removed,
                v.rows_total,
                v.run_id.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (0, Some(2), Some(0), Some(2), None),
            (1, Some(1), Some(0), Some(3), Some("r2")),
            (2, Some(1), Some(3), Some(1), None),
        ]
    );
    assert!(versions.iter().all(|v| v.timestamp.is_some()));
    assert!(
        versions
            .iter()
            .all(|v| v.operation.as_deref().is_some_and(|o| !o.is_empty())),
        "{versions:?}"
    );
}

#[tokio::test]
async fn a_provider_reads_an_earlier_version() {
    let (_dir, lake, id) = three_versions().await;
    assert_eq!(ids(lake.provider_at(&id, 0).await.unwrap()).await, [1, 2]);
    assert_eq!(
        ids(lake.provider_at(&id, 1).await.unwrap()).await,
        [1, 2, 3]
    );
    assert_eq!(ids(lake.provider_at(&id, 2).await.unwrap()).await, [9]);
}

#[tokio::test]
async fn missing_versions_and_tables_are_clear_errors() {
    let (_dir, lake, id) = three_versions().await;
    let err = lake.provider_at(&id, 7).await.unwrap_err().to_string();
    assert!(err.contains("silver.tt"), "{err}");
    assert!(err.contains("no version 7"), "{err}");
    assert!(err.contains("versions 0 to 2"), "{err}");

    let missing = TableId::gold("nothing");
    let err = lake.provider_at(&missing, 0).await.unwrap_err();
    assert!(matches!(err, LakeError::NoSuchTable { .. }), "{err}");
    assert!(matches!(
        lake.versions(&missing).await.unwrap_err(),
        LakeError::NoSuchTable { .. }
    ));
}

#[tokio::test]
async fn the_version_at_a_time_is_the_last_committed_by_then() {
    let (_dir, lake, id) = three_versions().await;
    let versions = lake.versions(&id).await.unwrap();
    let last = versions.last().unwrap();
    let at = last.timestamp.unwrap();
    // Commits may share a millisecond: the answer is the latest version stamped at or before it.
    assert_eq!(lake.version_at(&id, at).await.unwrap(), last.version);
    let first = versions[0].timestamp.unwrap();
    let expected = versions
        .iter()
        .filter(|v| v.timestamp.unwrap() <= first)
        .map(|v| v.version)
        .max()
        .unwrap();
    assert_eq!(lake.version_at(&id, first).await.unwrap(), expected);

    let before = first - chrono::Duration::seconds(1);
    let err = lake.version_at(&id, before).await.unwrap_err().to_string();
    assert!(
        err.contains("no version was committed at or before"),
        "{err}"
    );
    assert!(err.contains("first kept version is 0"), "{err}");
}

#[tokio::test]
async fn restore_commits_a_new_version_with_the_old_rows() {
    let (_dir, lake, id) = three_versions().await;
    let mut metadata = Map::new();
    metadata.insert(RUN_ID_KEY.into(), "restore-run".into());
    let outcome = lake.restore(&id, 1, metadata).await.unwrap();
    assert_eq!(outcome.version, 3);
    assert_eq!(outcome.restored, 1);
    assert!(outcome.files_restored >= 1 && outcome.files_removed >= 1);

    let (latest, provider) = lake.versioned_provider(&id).await.unwrap().unwrap();
    assert_eq!(latest, 3);
    assert_eq!(ids(provider).await, [1, 2, 3]);

    let versions = lake.versions(&id).await.unwrap();
    let restore = versions.last().unwrap();
    assert_eq!(restore.operation.as_deref(), Some("RESTORE"));
    assert_eq!(restore.run_id.as_deref(), Some("restore-run"));
    assert_eq!(restore.restored_version, Some(1));
    assert_eq!(restore.rows_total, Some(3));
    assert_eq!(restore.rows_removed, Some(1));

    let err = lake.restore(&id, 3, Map::new()).await.unwrap_err();
    assert!(matches!(err, LakeError::AlreadyAtVersion { .. }), "{err}");
    let err = lake.restore(&id, 10, Map::new()).await.unwrap_err();
    assert!(matches!(err, LakeError::NoSuchVersion { .. }), "{err}");
}

#[test]
fn commit_parsing_counts_records_of_added_files() {
    let id = TableId::silver("t");
    let bytes =
        br#"{"commitInfo":{"timestamp":1700000000000,"operation":"WRITE","sluice.run_id":"r"}}
{"add":{"path":"a.parquet","dataChange":true,"stats":"{\"numRecords\":3}"}}
{"add":{"path":"b.parquet","dataChange":false}}
{"remove":{"path":"old.parquet","dataChange":true}}
"#;
    let commit = parse_commit(&id, 5, bytes).unwrap();
    assert_eq!(
        commit.added,
        vec![
            ("a.parquet".to_string(), Some(3), true),
            ("b.parquet".to_string(), None, false)
        ]
    );
    assert_eq!(commit.removed, vec![("old.parquet".to_string(), true)]);
    let mut live = LiveFiles::default();
    let info = live.apply(commit);
    assert_eq!(info.run_id.as_deref(), Some("r"));
    assert_eq!(info.rows_added, Some(3));
    // b.parquet has no statistics: the total is unknown; the removed file was never seen.
    assert_eq!(info.rows_total, None);
    assert_eq!(info.rows_removed, None);
}

#[test]
fn timestamps_parse_in_the_usual_forms_as_utc() {
    let at = |s: &str| parse_timestamp(s).map(|t| t.to_rfc3339());
    let ten = Some("2026-01-01T10:00:00+00:00".to_string());
    assert_eq!(at("2026-01-01 10:00"), ten);
    assert_eq!(at("2026-01-01T10:00"), ten);
    assert_eq!(at("2026-01-01 10:00:00"), ten);
    assert_eq!(at(" 2026-01-01T12:00:00+02:00 "), ten);
    assert_eq!(at("2026-01-01 12:00:00+02:00"), ten);
    assert_eq!(
        at("2026-01-01 10:00:00.250"),
        Some("2026-01-01T10:00:00.250+00:00".to_string())
    );
    assert_eq!(
        at("2026-01-01"),
        Some("2026-01-01T00:00:00+00:00".to_string())
    );
    assert_eq!(at("yesterday"), None);
    assert_eq!(at("2026-13-01"), None);
}
