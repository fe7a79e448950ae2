//! `kind: postgres` full loads read in parallel key ranges (see `sources/postgres/parallel.rs`),
//! against a real PostgreSQL server (`SLUICE_TEST_PG_URL`, default `host=127.0.0.1 port=5432
//! user=postgres dbname=test`); skipped outside CI when the server is down, failed under `CI=true`.

mod support;

use std::time::Duration;

use sluice_core::SourceDecl;
use sluice_ingest::{IngestContext, build_source};
use sluice_lake::TableId;
use support::lake::{lake, query};
use tokio_postgres::{Client, NoTls};

fn pg_url() -> String {
    std::env::var("SLUICE_TEST_PG_URL")
        .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres dbname=test".to_string())
}

async fn connect(test: &str) -> Option<Client> {
    match tokio_postgres::connect(&pg_url(), NoTls).await {
        Ok((client, conn)) => {
            tokio::spawn(conn);
            Some(client)
        }
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!(
                "PostgreSQL is not reachable at `{}` under CI=true: {e}",
                pg_url()
            )
        }
        Err(e) => {
            eprintln!("skipping {test}: PostgreSQL is not reachable: {e}");
            None
        }
    }
}

/// Sequential plus index scans of `schema.table` so far, as the statistics collector reports them.
async fn scans(client: &Client, schema: &str, table: &str) -> i64 {
    client
        .batch_execute("SELECT pg_stat_clear_snapshot()")
        .await
        .unwrap();
    client
        .query_one(
            "SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) FROM pg_stat_user_tables
             WHERE schemaname = $1 AND relname = $2",
            &[&schema, &table],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn large_full_loads_read_key_ranges_in_parallel_from_one_snapshot() {
    let Some(client) = connect("parallel").await else {
        return;
    };
    let schema = format!(
        "sluice_it_par_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    // Keys from i64::MIN to i64::MAX with a gap-filled middle: the ranges must cover both ends.
    client
        .batch_execute(&format!(
            "CREATE SCHEMA {schema};
             CREATE TABLE {schema}.items (id int8 PRIMARY KEY, v int4);
             INSERT INTO {schema}.items SELECT g * 1000, g FROM generate_series(1, 40000) g;
             INSERT INTO {schema}.items VALUES (-9223372036854775808, 0), (9223372036854775807, 0);
             ANALYZE {schema}.items;"
        ))
        .await
        .unwrap();
    let (_dir, lake) = lake();
    let decl = SourceDecl::parse(std::path::Path::new("sources/pg.yml"), &format!(
            "kind: postgres\nconnection: \"{}\"\nschema: {schema}\nbatch_size: 1000\ntables:\n  - name: items\n",
            pg_url()
        )).unwrap();
    let source = build_source(&decl, ".".as_ref()).unwrap();
    let before = scans(&client, &schema, "items").await;
    let report = source
        .ingest("items", &IngestContext::new(lake.clone(), "run-1"))
        .await
        .unwrap();
    assert_eq!(
        (report.rows_read, report.rows_written, report.commits),
        (40002, 40002, 1)
    );
    let got = query(
        &lake,
        &TableId::bronze("pg", "items"),
        "SELECT count(*), count(DISTINCT id), sum(v), min(id), max(id) FROM t",
    )
    .await;
    assert_eq!(
        got,
        [[
            "40002",
            "40002",
            "800020000",
            "-9223372036854775808",
            "9223372036854775807"
        ]]
    );
    // Four range reads and the key's min and max (6 scans) instead of one or two. Other backends'
    // statistics reach the collector within a second or so of their end.
    let mut after = before;
    for _ in 0..40 {
        after = scans(&client, &schema, "items").await;
        if after - before >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("{} scans of the table", after - before);
    assert!(
        after - before >= 5,
        "{} scans: the load did not split",
        after - before
    );
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}
