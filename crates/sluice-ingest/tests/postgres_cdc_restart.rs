//! A continuous CDC capture survives a PostgreSQL restart: it reconnects with backoff and goes on,
//! losing and duplicating nothing.
//!
//! This test restarts the local server (`pg_ctlcluster … restart`, as root, like `.ci/run`). It is
//! alone in its test binary so that no other test of this crate runs during the restart (cargo runs
//! test binaries one after another), and it waits for `pg_isready` before it ends. It runs only where
//! it may restart the server: under `CI=true`, or with `SLUICE_TEST_PG_RESTART=1`; elsewhere it is
//! skipped with a note.

use std::process::Command;
use std::time::{Duration, Instant};

use sluice_core::SourceDecl;
use sluice_engine::SessionContext;
use sluice_ingest::IngestContext;
use sluice_ingest::sources::postgres::PostgresSource;
use sluice_ingest::sources::postgres::cdc::Until;
use sluice_lake::{Lake, TableId};
use tokio_postgres::{Client, NoTls};

const URL: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test";

fn restart_postgres() {
    let version = std::fs::read_dir("/etc/postgresql")
        .expect("/etc/postgresql (Debian's PostgreSQL layout)")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()
        .expect("a PostgreSQL cluster");
    let status = Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version, "main", "restart"])
        .status()
        .expect("run pg_ctlcluster");
    assert!(status.success(), "pg_ctlcluster restart failed");
    wait_ready();
}

fn wait_ready() {
    for _ in 0..60 {
        let ok = Command::new("pg_isready")
            .args(["-q", "-h", "127.0.0.1", "-p", "5432"])
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("PostgreSQL did not come back");
}

async fn connect() -> Client {
    let (client, conn) = tokio_postgres::connect(URL, NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

async fn bronze_inserts(lake: &Lake, id: &TableId) -> (i64, i64) {
    let Ok(Some(provider)) = lake.table_provider(id).await else {
        return (0, 0);
    };
    let ctx = SessionContext::new();
    ctx.register_table("t", provider).unwrap();
    let b = ctx
        .sql("SELECT count(*), count(DISTINCT id) FROM t WHERE _op = 'c'")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let col = |i: usize| {
        b[0].column(i)
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>()
            .unwrap()
            .value(0)
    };
    (col(0), col(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_reconnects_after_a_server_restart() {
    let allowed = std::env::var("CI").as_deref() == Ok("true")
        || std::env::var("SLUICE_TEST_PG_RESTART").as_deref() == Ok("1");
    if !allowed {
        eprintln!("skipping: set SLUICE_TEST_PG_RESTART=1 to let this test restart PostgreSQL");
        return;
    }
    let client = connect().await;
    let suffix = format!("{}", std::process::id());
    let table = format!("cdc_restart_{suffix}");
    let slot = format!("sluice_it_restart_{suffix}");
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS public.{table}; CREATE TABLE public.{table} (id int8 PRIMARY KEY, v text)"
        ))
        .await
        .unwrap();
    let decl = SourceDecl::parse(std::path::Path::new("sources/shop.yml"), &format!(
            "kind: postgres\nconnection: \"{URL}\"\ntables:\n  - name: {table}\n    mode: cdc\n    slot: {slot}\n"
        )).unwrap();
    let source = PostgresSource::from_decl(&decl, std::path::Path::new(".")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let id = TableId::bronze("shop", &table);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let capture = {
        let lake = lake.clone();
        let table = table.clone();
        tokio::spawn(async move {
            source
                .capture(
                    &table,
                    &IngestContext::new(lake, "live"),
                    Until::Stopped {
                        stop: stop_rx,
                        flush_interval: Duration::from_millis(100),
                    },
                )
                .await
        })
    };
    // Changes made once the slot exists are streamed (as `c` rows), whatever the snapshot saw.
    for _ in 0..100 {
        let exists = client
            .query_opt(
                "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await
            .unwrap();
        if exists.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for i in 1..=200i64 {
        client
            .execute(
                &format!("INSERT INTO public.{table} VALUES ($1, 'before')"),
                &[&i],
            )
            .await
            .unwrap();
    }
    // Let the capture take some of it, then pull the server away under it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    tokio::task::spawn_blocking(restart_postgres).await.unwrap();
    let client = connect().await;
    for i in 201..=400i64 {
        client
            .execute(
                &format!("INSERT INTO public.{table} VALUES ($1, 'after')"),
                &[&i],
            )
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut landed = (0, 0);
    while Instant::now() < deadline {
        landed = bronze_inserts(&lake, &id).await;
        if landed.0 >= 400 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop_tx.send(true).unwrap();
    let report = capture.await.unwrap();
    // Clean up before asserting: an abandoned slot pins WAL.
    for _ in 0..50 {
        if client
            .query(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = client
        .batch_execute(&format!(
            "DROP PUBLICATION IF EXISTS {slot}; DROP TABLE IF EXISTS public.{table}"
        ))
        .await;
    report.unwrap();
    assert_eq!(
        landed,
        (400, 400),
        "every insert landed once, across the restart"
    );
}
