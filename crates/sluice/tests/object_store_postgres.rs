//! PostgreSQL's `full` and `cdc` modes on `lake: s3://…` (a real S3-protocol server,
//! `sluice_lake::testing::S3Server`): a full table is replaced run after run, a CDC table's changes
//! land once and a `materialized='merge'` model over them equals the source table row by row, all
//! in the bucket. (The `incremental` mode on S3 is the conformance suite's `postgres::lands_on_s3`.)
//!
//! Needs the local PostgreSQL with `wal_level = logical` (`.ci/run` sets it): fails under `CI=true`
//! when it is missing, skips otherwise.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{query_f64, query_json, sluice_ok, write};
use sluice_lake::testing::S3Server;
use tokio_postgres::{Client, NoTls};

fn pg_url() -> String {
    std::env::var("SLUICE_TEST_PG_URL")
        .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres dbname=test".to_string())
}

async fn connect() -> Option<Client> {
    let ci = std::env::var("CI").as_deref() == Ok("true");
    match tokio_postgres::connect(&pg_url(), NoTls).await {
        Ok((client, conn)) => {
            tokio::spawn(conn);
            let level: String = client
                .query_one("SHOW wal_level", &[])
                .await
                .unwrap()
                .get(0);
            if level != "logical" {
                assert!(!ci, "wal_level is {level}; .ci/run sets it to logical");
                eprintln!("SKIPPED: wal_level is {level}, not logical");
                return None;
            }
            Some(client)
        }
        Err(e) => {
            assert!(!ci, "PostgreSQL is not reachable under CI=true: {e}");
            eprintln!("SKIPPED: PostgreSQL is not reachable: {e}");
            None
        }
    }
}

fn project(dir: &Path, server: &S3Server, full: &str, cdc: &str, slot: &str) {
    write(
        dir,
        "sluice.yml",
        &format!(
            "name: pg_s3\ndefaults:\n  retries: 0\n{}",
            server.sluice_yml("pg")
        ),
    );
    let env: String = server
        .env()
        .iter()
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect();
    write(dir, ".env", &env);
    write(
        dir,
        "sources/shop.yml",
        &format!(
            "kind: postgres\nconnection: \"{}\"\ntables:\n  - name: {full}\n    mode: full\n    \
             primary_key: [id]\n  - name: {cdc}\n    mode: cdc\n    slot: {slot}\n    primary_key: [id]\n",
            pg_url()
        ),
    );
    write(
        dir,
        "models/silver/current.sql",
        &format!(
            "{{{{ config(materialized='merge', unique_key='id') }}}}\n\
             select id, name, v, _op, _lsn, _seq from {{{{ source('shop', '{cdc}') }}}}\n"
        ),
    );
}

/// `(id, name, v)` of a source table, by id.
async fn source_rows(client: &Client, table: &str) -> Vec<(i64, String, i32)> {
    client
        .query(
            &format!("SELECT id, name, v FROM public.{table} ORDER BY id"),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

#[test]
fn postgres_full_and_cdc_tables_land_on_s3() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(client) = rt.block_on(connect()) else {
        return;
    };
    let Some(server) = S3Server::start("pg-lake") else {
        return;
    };
    let suffix = format!(
        "{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros() % 1_000_000
    );
    let (full, cdc) = (format!("s3_full_{suffix}"), format!("s3_cdc_{suffix}"));
    let slot = format!("sluice_it_s3_{suffix}");
    rt.block_on(client.batch_execute(&format!(
        "CREATE TABLE public.{full} (id int8 PRIMARY KEY, name text, v int4); \
         INSERT INTO public.{full} SELECT g, 'row ' || g, g % 7 FROM generate_series(1, 50) g; \
         CREATE TABLE public.{cdc} (id int8 PRIMARY KEY, name text, v int4); \
         INSERT INTO public.{cdc} SELECT g, 'row ' || g, g % 97 FROM generate_series(1, 200) g;"
    )))
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir, &server, &full, &cdc, &slot);

    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sluice_ok(dir, &["run"]);
        let count = |table: &str| query_f64(dir, &format!("select count(*) from {table}"));
        assert_eq!(count(&format!("bronze.shop__{full}")), 50.0);
        assert_eq!(count("silver.current"), 200.0);

        // Changes: the full table grows and changes, the CDC table gets updates, deletes and
        // inserts.
        rt.block_on(client.batch_execute(&format!(
            "INSERT INTO public.{full} SELECT g, 'row ' || g, 0 FROM generate_series(51, 55) g; \
             UPDATE public.{full} SET v = 100 WHERE id <= 3; \
             UPDATE public.{cdc} SET v = v + 1000, name = 'changed' WHERE id % 20 = 0; \
             DELETE FROM public.{cdc} WHERE id % 33 = 0; \
             INSERT INTO public.{cdc} SELECT g, 'new ' || g, 5 FROM generate_series(201, 210) g;"
        )))
        .unwrap();
        sluice_ok(dir, &["run"]);
        sluice_ok(dir, &["run"]);
        // Full: the latest snapshot replaces the table.
        let bronze_full = query_json(
            dir,
            &format!("select count(*) as n, sum(v) as s from bronze.shop__{full}"),
        );
        let want = rt.block_on(source_rows(&client, &full));
        assert_eq!(bronze_full[0]["n"].as_u64(), Some(want.len() as u64));
        let want_sum: i64 = want.iter().map(|r| i64::from(r.2)).sum();
        assert_eq!(bronze_full[0]["s"].as_i64(), Some(want_sum));
        // CDC: every change once, and silver equals the source row by row.
        let bronze = format!("bronze.shop__{cdc}");
        let streamed = query_f64(
            dir,
            &format!("select count(*) from {bronze} where _op <> 'r'"),
        );
        let distinct = query_f64(
            dir,
            &format!(
                "select count(*) from (select distinct _lsn, _seq from {bronze} where _op <> 'r')"
            ),
        );
        assert_eq!(streamed, distinct, "a change landed twice");
        assert!(streamed >= 10.0 + 10.0 + 6.0, "{streamed} changes");
        let silver = query_json(dir, "select id, name, v from silver.current order by id");
        let source = rt.block_on(source_rows(&client, &cdc));
        assert_eq!(silver.len(), source.len(), "row counts differ");
        for (s, (id, name, v)) in silver.iter().zip(&source) {
            assert_eq!(s["id"].as_i64(), Some(*id), "{s}");
            assert_eq!(s["name"].as_str(), Some(name.as_str()), "{s}");
            assert_eq!(s["v"].as_i64(), Some(i64::from(*v)), "{s}");
        }
        assert!(!dir.join("lake").exists(), "the lake is in the bucket");
    }));
    rt.block_on(async {
        for _ in 0..50 {
            let dropped = client
                .query(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1",
                    &[&slot],
                )
                .await;
            if dropped.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = client
            .batch_execute(&format!(
                "DROP PUBLICATION IF EXISTS {slot}; DROP TABLE IF EXISTS public.{full}; \
                 DROP TABLE IF EXISTS public.{cdc}"
            ))
            .await;
    });
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
