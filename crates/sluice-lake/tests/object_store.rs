//! The lake on a real S3-protocol server (`sluice_lake::testing::S3Server`, one per test): every
//! write mode, staged model output, listing, probing and reading through the object store; and two processes committing
//! to one table at once, where conditional puts must let every commit land exactly once.

use std::process::{Command, Stdio};
use std::sync::Arc;

use arrow::array::{Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use sluice_engine::SessionContext;
use sluice_lake::testing::S3Server;
use sluice_lake::{Lake, LakeOptions, QuarantinedRow, TableId, WriteOutcome, WriteSpec};

fn batch(ids: &[i64], name: &str) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(ids.to_vec())),
            Arc::new(StringArray::from(vec![name; ids.len()])),
        ],
    )
    .unwrap()
}

/// `SELECT … FROM t` over the table's latest version, the ids in order.
async fn ids(lake: &Lake, id: &TableId, query: &str) -> Vec<i64> {
    let provider = lake.table_provider(id).await.unwrap().unwrap();
    let ctx = SessionContext::new();
    ctx.register_table("t", provider).unwrap();
    let batches = ctx.sql(query).await.unwrap().collect().await.unwrap();
    batches
        .iter()
        .flat_map(|b| {
            let col = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            (0..col.len()).map(|i| col.value(i)).collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_mode_lists_and_reads_back_on_s3() {
    let Some(server) = S3Server::start("lake-modes") else {
        return;
    };
    let lake = Lake::open_with(&server.lake_url("shop/lake"), &server.options()).unwrap();
    assert!(!lake.is_local());
    lake.probe().await.unwrap();
    assert!(lake.list_tables().await.unwrap().is_empty());

    let orders = TableId::bronze("shop", "orders");
    let spec = WriteSpec::append().with_txn("load_orders", 1);
    let first = lake
        .write(&orders, vec![batch(&[1, 2], "a")], &spec)
        .await
        .unwrap();
    assert_eq!(
        first,
        WriteOutcome::Committed {
            version: 0,
            rows: 2
        }
    );
    // The same batch again is recognised through the log on S3 too.
    let again = lake
        .write(&orders, vec![batch(&[1, 2], "a")], &spec)
        .await
        .unwrap();
    assert_eq!(again, WriteOutcome::AlreadyCommitted { version: Some(0) });
    assert_eq!(
        lake.txn_version(&orders, "load_orders").await.unwrap(),
        Some(1)
    );

    let customers = TableId::silver("customers");
    lake.write(
        &customers,
        vec![batch(&[1, 2, 3], "old")],
        &WriteSpec::overwrite(),
    )
    .await
    .unwrap();
    lake.write(
        &customers,
        vec![batch(&[3, 4], "new")],
        &WriteSpec::merge(["id"]),
    )
    .await
    .unwrap();
    assert_eq!(
        ids(&lake, &customers, "select id from t order by id").await,
        [1, 2, 3, 4]
    );
    assert_eq!(
        ids(
            &lake,
            &customers,
            "select id from t where name = 'new' order by id"
        )
        .await,
        [3, 4]
    );
    let sales = TableId::gold("sales");
    lake.write(&sales, vec![batch(&[7], "x")], &WriteSpec::overwrite())
        .await
        .unwrap();
    lake.write(&sales, vec![batch(&[8, 9], "y")], &WriteSpec::overwrite())
        .await
        .unwrap();
    assert_eq!(
        ids(&lake, &sales, "select id from t order by id").await,
        [8, 9]
    );
    let rejected = vec![QuarantinedRow {
        source_file: Some("orders.csv".into()),
        line: Some(3),
        reason: "bad amount".into(),
        raw: "3,x".into(),
    }];
    let quarantined = lake
        .quarantine("load_orders", rejected, "batch-1")
        .await
        .unwrap();
    assert_eq!(quarantined, 1);

    // Listing goes through the store: the same four tables from a second handle.
    let other = Lake::open_with(&server.lake_url("shop/lake/"), &server.options()).unwrap();
    assert_eq!(
        other.list_tables().await.unwrap(),
        [
            orders.clone(),
            customers.clone(),
            sales.clone(),
            TableId::quarantine("load_orders")
        ]
    );
    assert_eq!(
        other.latest_version(&customers, Some(0)).await.unwrap(),
        Some(1)
    );
    let history = other.history(&customers, 10).await.unwrap();
    assert_eq!(history.len(), 2);
    // A lake under another prefix of the same bucket is another lake.
    let elsewhere = Lake::open_with(&server.lake_url("other"), &server.options()).unwrap();
    assert!(elsewhere.list_tables().await.unwrap().is_empty());
}

/// Stages `ids` (all named `name`) for `id` as a model's output is staged.
async fn stage(lake: &Lake, id: &TableId, ids_: &[i64], name: &str) -> sluice_lake::StagedFiles {
    let b = batch(ids_, name);
    let schema = b.schema();
    let stream =
        sluice_engine::session::batch_stream(schema.clone(), futures::stream::iter([Ok(b)]));
    lake.stage_stream(id, schema, stream).await.unwrap()
}

/// A model's output on S3: staged files (written with the lake's storage options, not the
/// cloud's default endpoint), read before publishing with the lake's store registered in the
/// session, published, merged and discarded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staged_output_is_read_published_merged_and_discarded_on_s3() {
    let Some(server) = S3Server::start("lake-staged") else {
        return;
    };
    let lake = Lake::open_with(&server.lake_url("lake"), &server.options()).unwrap();
    let id = TableId::gold("staged");
    let staged = stage(&lake, &id, &[1, 2, 3], "old").await;
    assert_eq!((staged.rows(), staged.files()), (3, 1));
    assert!(!lake.exists(&id).await.unwrap(), "staging commits nothing");
    let ctx = SessionContext::new();
    let (root, store) = lake.root_object_store().unwrap();
    ctx.register_object_store(&root, store);
    ctx.register_table("s", lake.staged_provider(&staged).unwrap())
        .unwrap();
    let counted = ctx
        .sql("select count(*) from s")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let n = counted[0]
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .value(0);
    assert_eq!(n, 3);
    let published = lake
        .publish_staged(staged, &WriteSpec::overwrite())
        .await
        .unwrap();
    assert_eq!(
        published,
        WriteOutcome::Committed {
            version: 0,
            rows: 3
        }
    );
    let staged = stage(&lake, &id, &[3, 4], "new").await;
    lake.merge_staged(staged, &WriteSpec::merge(["id"]))
        .await
        .unwrap();
    assert_eq!(
        ids(&lake, &id, "select id from t order by id").await,
        [1, 2, 3, 4]
    );
    assert_eq!(
        ids(
            &lake,
            &id,
            "select id from t where name = 'new' order by id"
        )
        .await,
        [3, 4]
    );
    let staged = stage(&lake, &id, &[9], "gone").await;
    lake.discard_staged(staged).await.unwrap();
    assert_eq!(
        ids(&lake, &id, "select id from t order by id").await,
        [1, 2, 3, 4]
    );
    assert_eq!(lake.latest_version(&id, None).await.unwrap(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_fails_the_probe_and_reads_with_its_url() {
    let Some(server) = S3Server::start("lake-probe") else {
        return;
    };
    let missing = Lake::open_with("s3://no-such-bucket/lake", &server.options()).unwrap();
    let err = missing.probe().await.unwrap_err();
    assert!(err.contains("s3://no-such-bucket/lake/"), "{err}");
    let err = missing.list_tables().await.unwrap_err().to_string();
    assert!(err.contains("s3://no-such-bucket/lake/bronze"), "{err}");
}

/// Appends of one writer process: `SLUICE_TEST_WRITER=<lake url>|<endpoint>|<first id>|<count>`.
/// Run by [`two_processes_appending_to_one_table_lose_nothing`]; a no-op in a normal test run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_process() {
    let Ok(spec) = std::env::var("SLUICE_TEST_WRITER") else {
        return;
    };
    let parts: Vec<&str> = spec.split('|').collect();
    let [url, endpoint, first, count] = parts[..] else {
        panic!("bad SLUICE_TEST_WRITER {spec}");
    };
    let options = LakeOptions {
        endpoint: Some(endpoint.to_string()),
        region: Some("us-east-1".into()),
        path_style: Some(true),
        allow_http: Some(true),
        access_key_id: Some(sluice_lake::testing::TEST_KEY.into()),
        secret_access_key: Some(sluice_lake::testing::TEST_KEY.into()),
        session_token: None,
    };
    let lake = Lake::open_with(url, &options).unwrap();
    let first: i64 = first.parse().unwrap();
    let count: i64 = count.parse().unwrap();
    let id = TableId::bronze("race", "events");
    for i in first..first + count {
        // One commit per row, each racing the other process for the next version.
        let outcome = lake
            .write(&id, vec![batch(&[i], "w")], &WriteSpec::append())
            .await
            .unwrap();
        assert!(
            matches!(outcome, WriteOutcome::Committed { rows: 1, .. }),
            "{outcome:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_appending_to_one_table_lose_nothing() {
    let Some(server) = S3Server::start("lake-race") else {
        return;
    };
    let url = server.lake_url("lake");
    let lake = Lake::open_with(&url, &server.options()).unwrap();
    let id = TableId::bronze("race", "events");
    // The table exists before the race, so both writers append to version 0 onwards.
    lake.write(&id, vec![batch(&[0], "seed")], &WriteSpec::append())
        .await
        .unwrap();
    let per_writer = 15;
    let exe = std::env::current_exe().unwrap();
    let writers: Vec<_> = [1, 1001]
        .iter()
        .map(|first| {
            Command::new(&exe)
                .args(["writer_process", "--exact"])
                // Its own "test result" line is not one of this run's results.
                .stdout(Stdio::null())
                .env(
                    "SLUICE_TEST_WRITER",
                    format!("{url}|{}|{first}|{per_writer}", server.endpoint()),
                )
                .spawn()
                .unwrap()
        })
        .collect();
    for mut w in writers {
        assert!(w.wait().unwrap().success(), "a writer process failed");
    }
    let mut expected: Vec<i64> = vec![0];
    expected.extend(1..=per_writer);
    expected.extend(1001..1001 + per_writer);
    assert_eq!(
        ids(&lake, &id, "select id from t order by id").await,
        expected
    );
    // One commit per row: versions 0..=30, none lost to an overwritten log entry.
    let version = lake.latest_version(&id, None).await.unwrap();
    assert_eq!(version, Some(2 * per_writer as u64));
}
