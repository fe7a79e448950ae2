use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::RowAccessor;

use super::*;
use crate::retention::ExpireSpec;
use crate::test_util::{count, int_batch, sql, tmp_lake};
use crate::write::WriteSpec;

/// Compaction only, no checkpoint or VACUUM.
fn compact_only() -> MaintainSpec {
    MaintainSpec {
        checkpoint_interval: None,
        vacuum: None,
        ..MaintainSpec::default()
    }
}

async fn append(lake: &Lake, id: &TableId, batch: RecordBatch) {
    lake.write(id, vec![batch], &WriteSpec::append())
        .await
        .unwrap();
}

/// The live Parquet files of the table's latest version, as local paths.
async fn live_files(lake: &Lake, id: &TableId) -> Vec<std::path::PathBuf> {
    let table = lake.load(id).await.unwrap().unwrap();
    table
        .get_file_uris()
        .unwrap()
        .map(|uri| match url::Url::parse(&uri) {
            Ok(url) if url.scheme() == "file" => url.to_file_path().unwrap(),
            _ => std::path::PathBuf::from(uri),
        })
        .collect()
}

fn named(ids: &[i64], names: &[&str]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids.to_vec())),
        Arc::new(StringArray::from(names.to_vec())),
    ];
    RecordBatch::try_new(schema, columns).unwrap()
}

#[tokio::test]
async fn compaction_drops_the_file_count_and_keeps_the_results() {
    let (_dir, lake) = tmp_lake();
    let id = TableId::bronze("shop", "orders");
    for chunk in [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10], [11, 12]] {
        append(&lake, &id, int_batch(&chunk)).await;
    }
    let query = "SELECT count(*) AS n, sum(id) AS total, min(id) AS lo, max(id) AS hi FROM t";
    let before = sql(&lake, &id, query).await;
    assert_eq!(lake.commits_since_compaction(&id, 100).await.unwrap(), 6);

    let spec = MaintainSpec {
        checkpoint_interval: Some(5),
        ..compact_only()
    };
    let report = lake.maintain(&id, &spec).await.unwrap().unwrap();
    assert_eq!(report.before.files, 6);
    assert_eq!(report.before.small_files, 6);
    assert_eq!(report.after.files, 1);
    assert_eq!(report.files_compacted, 6);
    assert_eq!(report.files_written, 1);
    assert_eq!((report.version_before, report.version_after), (5, 6));
    assert_eq!(report.checkpoint, Some(6));
    let table = lake.load(&id).await.unwrap().unwrap();
    assert_eq!(last_checkpoint(&table).await, Some(6));
    assert_eq!(live_files(&lake, &id).await.len(), 1);
    assert_eq!(sql(&lake, &id, query).await, before);
    assert_eq!(lake.commits_since_compaction(&id, 100).await.unwrap(), 0);

    // Nothing new: a second pass changes nothing (no empty OPTIMIZE commit, no new checkpoint).
    let again = lake.maintain(&id, &spec).await.unwrap().unwrap();
    assert_eq!((again.files_compacted, again.version_after), (0, 6));
    assert_eq!(again.checkpoint, None);
    append(&lake, &id, int_batch(&[13])).await;
    assert_eq!(lake.commits_since_compaction(&id, 100).await.unwrap(), 1);
}

#[tokio::test]
async fn a_dry_run_reports_and_changes_nothing() {
    let (_dir, lake) = tmp_lake();
    let id = TableId::silver("events");
    for chunk in [[1], [2], [3]] {
        append(&lake, &id, int_batch(&chunk)).await;
    }
    let spec = MaintainSpec {
        dry_run: true,
        ..MaintainSpec::default()
    };
    let report = lake.maintain(&id, &spec).await.unwrap().unwrap();
    assert!(report.dry_run);
    assert_eq!(report.files_compacted, 3);
    assert_eq!(report.after, report.before);
    assert_eq!(live_files(&lake, &id).await.len(), 3);
    assert_eq!(lake.latest_version(&id, None).await.unwrap(), Some(2));
}

#[tokio::test]
async fn readers_of_a_retained_version_still_work_after_vacuum() {
    let (_dir, lake) = tmp_lake();
    let id = TableId::gold("sales");
    for chunk in [[1, 2], [3, 4], [5, 6]] {
        append(&lake, &id, int_batch(&chunk)).await;
    }
    let vacuum = VacuumSpec::default();
    let spec = MaintainSpec {
        vacuum: Some(vacuum.clone()),
        ..compact_only()
    };
    let report = lake.maintain(&id, &spec).await.unwrap().unwrap();
    assert_eq!(report.after.files, 1);
    // The three compacted files were removed moments ago: within the 7 days, so they stay.
    assert_eq!(report.vacuumed_files, 0);
    let version_1 = || async {
        let mut table = lake.unloaded(&id).unwrap();
        table.load_version(1).await?;
        let provider = table.table_provider().await?;
        let ctx = sluice_engine::SessionContext::new();
        ctx.register_table("t", provider)?;
        let batches = ctx.sql("SELECT id FROM t").await?.collect().await?;
        Ok::<usize, Box<dyn std::error::Error>>(batches.iter().map(|b| b.num_rows()).sum())
    };
    assert_eq!(version_1().await.unwrap(), 4);

    // Eight days later the removed files are past the retention and go; the latest version,
    // which only needs the compacted file, reads the same rows.
    let later = MaintainSpec {
        compact: false,
        vacuum: Some(VacuumSpec {
            now: Some(Utc::now() + chrono::Duration::days(8)),
            ..vacuum
        }),
        ..compact_only()
    };
    let report = lake.maintain(&id, &later).await.unwrap().unwrap();
    assert_eq!(report.vacuumed_files, 3);
    assert!(report.vacuumed_bytes > 0);
    assert!(report.versions_vacuumed >= 3, "{report:?}");
    assert_eq!(count(&lake, &id).await, 6);
    assert_eq!(live_files(&lake, &id).await.len(), 1);
    assert!(version_1().await.is_err(), "version 1's files are vacuumed");
}

#[tokio::test]
async fn vacuum_refuses_an_unsafe_retention() {
    let (_dir, lake) = tmp_lake();
    let id = TableId::silver("customers");
    append(&lake, &id, int_batch(&[1])).await;
    append(&lake, &id, int_batch(&[2])).await;
    let spec = MaintainSpec {
        vacuum: Some(VacuumSpec {
            retention: Duration::from_secs(3600),
            ..VacuumSpec::default()
        }),
        ..MaintainSpec::default()
    };
    let err = lake.maintain(&id, &spec).await.unwrap_err();
    assert!(matches!(err, LakeError::UnsafeRetention { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("retention 1h is shorter than the minimum retention (7d)"),
        "{text}"
    );
    // Refused before anything was touched: no compaction either.
    assert_eq!(lake.latest_version(&id, None).await.unwrap(), Some(1));
    assert_eq!(live_files(&lake, &id).await.len(), 2);
}

#[tokio::test]
async fn zorder_and_bloom_filters_are_in_the_parquet_files() {
    let (_dir, lake) = tmp_lake();
    let id = TableId::silver("people");
    append(&lake, &id, named(&[9, 3, 7], &["i", "c", "g"])).await;
    append(&lake, &id, named(&[1, 8, 2], &["a", "h", "b"])).await;
    append(&lake, &id, named(&[6, 4, 5], &["f", "d", "e"])).await;
    let spec = MaintainSpec {
        zorder_by: vec!["id".into()],
        bloom_filter_columns: vec!["name".into()],
        ..compact_only()
    };
    let report = lake.maintain(&id, &spec).await.unwrap().unwrap();
    assert_eq!(report.zordered_by, vec!["id".to_string()]);
    assert_eq!(count(&lake, &id).await, 9);

    let files = live_files(&lake, &id).await;
    assert_eq!(files.len(), 1);
    let reader = SerializedFileReader::new(std::fs::File::open(&files[0]).unwrap()).unwrap();
    let metadata = reader.metadata();
    let group = metadata.row_group(0);
    let name = (0..group.num_columns())
        .find(|i| group.column(*i).column_path().string() == "name")
        .unwrap();
    assert!(group.column(name).bloom_filter_offset().is_some());
    // Z-order on one column is a sort on it.
    let mut ids = Vec::new();
    for row in reader.get_row_iter(None).unwrap() {
        ids.push(row.unwrap().get_long(0).unwrap());
    }
    assert_eq!(ids, (1..=9).collect::<Vec<_>>());

    // Unknown columns are refused with the columns there are.
    let bad = MaintainSpec {
        zorder_by: vec!["nope".into()],
        ..compact_only()
    };
    let err = lake.maintain(&id, &bad).await.unwrap_err().to_string();
    assert!(err.contains("z-order column `nope`"), "{err}");
}

#[tokio::test]
async fn writes_carry_the_declared_bloom_filters() {
    let (_dir, lake) = tmp_lake();
    let id = TableId::silver("people");
    let lake = lake.with_bloom_filters(BTreeMap::from([(id.clone(), vec!["name".to_string()])]));
    append(&lake, &id, named(&[1, 2], &["a", "b"])).await;
    let files = live_files(&lake, &id).await;
    let reader = SerializedFileReader::new(std::fs::File::open(&files[0]).unwrap()).unwrap();
    let group = reader.metadata().row_group(0);
    assert!(group.column(1).bloom_filter_offset().is_some());
    assert!(group.column(0).bloom_filter_offset().is_none());
}

fn dated(rows: &[(i64, i32)]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("_ingest_date", DataType::Date32, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
        Arc::new(Date32Array::from_iter_values(rows.iter().map(|r| r.1))),
    ];
    RecordBatch::try_new(schema, columns).unwrap()
}

#[tokio::test]
async fn retention_deletes_or_moves_old_partitions() {
    let (_dir, lake) = tmp_lake();
    let (_cold_dir, cold) = tmp_lake();
    let id = TableId::bronze("shop", "orders");
    // 2026-01-01 is day 20454 since the epoch.
    let spec = WriteSpec::append().partitioned_by(["_ingest_date"]);
    for (rows, day) in [
        (&[1i64, 2][..], 20454),
        (&[3][..], 20455),
        (&[4, 5][..], 20460),
    ] {
        let batch = dated(&rows.iter().map(|r| (*r, day)).collect::<Vec<_>>());
        lake.write(&id, vec![batch], &spec).await.unwrap();
    }
    let before = |day: &str| ExpireSpec {
        column: "_ingest_date".into(),
        before: chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap(),
        cold: None,
        dry_run: false,
    };
    let dry = ExpireSpec {
        dry_run: true,
        ..before("2026-01-02")
    };
    assert_eq!(
        lake.expire_partitions(&id, &dry)
            .await
            .unwrap()
            .unwrap()
            .rows,
        2
    );
    assert_eq!(count(&lake, &id).await, 5);

    let report = lake
        .expire_partitions(&id, &before("2026-01-02"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((report.rows, report.files_removed), (2, 1));
    assert_eq!(
        sql(&lake, &id, "SELECT min(id) AS m FROM t")
            .await
            .lines()
            .nth(3),
        Some("| 3 |")
    );

    let moving = ExpireSpec {
        cold: Some(cold.clone()),
        ..before("2026-01-05")
    };
    let report = lake.expire_partitions(&id, &moving).await.unwrap().unwrap();
    assert_eq!((report.rows, report.rows_moved), (1, 1));
    assert_eq!(count(&lake, &id).await, 2);
    assert_eq!(count(&cold, &id).await, 1);
    // Nothing left to expire: a second pass moves nothing twice.
    let again = lake.expire_partitions(&id, &moving).await.unwrap().unwrap();
    assert_eq!((again.rows, again.version), (0, None));
    assert_eq!(count(&cold, &id).await, 1);
}

#[test]
fn durations_print_in_their_largest_unit() {
    assert_eq!(format_duration(Duration::from_secs(7 * 86_400)), "7d");
    assert_eq!(format_duration(Duration::from_secs(36 * 3_600)), "36h");
    assert_eq!(format_duration(Duration::from_secs(90 * 60)), "90m");
    assert_eq!(format_duration(Duration::from_secs(45)), "45s");
}
