//! Exports: `sluice export` to files in every format, and reverse ETL nodes (`exports/*.yml`) into
//! a real PostgreSQL and to a webhook.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use common::{query_json, sluice, sluice_ok, write};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;
use sluice_transform::arrow::json::LineDelimitedWriter;

/// A project with a CSV source of `rows` sales and a gold model summing them by region.
fn project(dir: &Path, rows: i64) {
    write(dir, "sluice.yml", "name: exp\n");
    write(
        dir,
        "sources/files.yml",
        "kind: files\ntables:\n  - name: sales\n    path: landing/*.csv\n",
    );
    let mut csv = String::from("sale_id,region,amount\n");
    for i in 1..=rows {
        let region = ["north", "south", "east"][(i % 3) as usize];
        csv.push_str(&format!("{i},{region},{}\n", i * 10));
    }
    write(dir, "landing/a.csv", &csv);
    write(
        dir,
        "models/gold/by_region.sql",
        "select region, sum(amount) as revenue, count(*) as sales \
         from {{ source('files','sales') }} group by region",
    );
}

/// The run id from a run's summary line `Run <id> <status>: ...`.
fn run_id_of(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("Run "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no run summary in\n{stdout}"))
        .to_string()
}

/// JSON objects as `sluice query --format json` writes them (nulls left out), sorted by `key`.
fn sorted(mut rows: Vec<Value>, key: &str) -> Vec<Value> {
    rows.sort_by_key(|r| r[key].to_string());
    rows
}

#[test]
fn cli_export_writes_parquet_csv_and_jsonl_that_read_back_as_the_table() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir, 50);
    sluice_ok(dir, &["run"]);
    let expected = sorted(
        query_json(dir, "select * from bronze.files__sales"),
        "sale_id",
    );
    assert_eq!(expected.len(), 50);

    // Relative `--to` paths are relative to the working directory, as for any command.
    let at = |f: &str| dir.join(f).to_string_lossy().into_owned();
    // Parquet, the format from the extension, into a folder that does not exist yet.
    sluice_ok(
        dir,
        &["export", "files.sales", "--to", &at("out/sales.parquet")],
    );
    let file = std::fs::File::open(dir.join("out/sales.parquet")).unwrap();
    let batches: Vec<_> = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect();
    let mut w = LineDelimitedWriter::new(Vec::new());
    for b in &batches {
        w.write(b).unwrap();
    }
    w.finish().unwrap();
    let read: Vec<Value> = String::from_utf8(w.into_inner())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        sorted(read, "sale_id"),
        expected,
        "every column survives Parquet"
    );

    // CSV, with the format named, of a model: the same lines as `sluice query --format csv`.
    sluice_ok(
        dir,
        &[
            "export",
            "gold.by_region",
            "--format",
            "csv",
            "--to",
            &at("out/regions.txt"),
        ],
    );
    let exported = std::fs::read_to_string(dir.join("out/regions.txt")).unwrap();
    let queried = sluice_ok(
        dir,
        &["query", "--format", "csv", "select * from gold.by_region"],
    );
    let lines = |t: &str| {
        let mut l: Vec<String> = t.lines().map(str::to_string).collect();
        l[1..].sort();
        l
    };
    assert_eq!(lines(&exported), lines(&queried));
    assert_eq!(exported.lines().next(), Some("region,revenue,sales"));

    // JSON lines to stdout, filtered by SQL.
    let out = sluice_ok(
        dir,
        &[
            "export",
            "files.sales",
            "--format",
            "jsonl",
            "--to",
            "-",
            "--where",
            "region = 'north' and amount > 100",
        ],
    );
    let rows: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let north: Vec<Value> = expected
        .iter()
        .filter(|r| r["region"] == "north" && r["amount"].as_i64().unwrap() > 100)
        .cloned()
        .collect();
    assert_eq!(sorted(rows, "sale_id"), north);

    // A partition: today's ingestion date, a range, and an empty one (still a valid file).
    let today = query_json(
        dir,
        "select cast(max(_ingest_date) as varchar) as d from bronze.files__sales",
    )[0]["d"]
        .as_str()
        .unwrap()
        .to_string();
    for (spec, rows) in [
        (format!("_ingest_date={today}"), 50),
        (format!("_ingest_date=2000-01-01..{today}"), 50),
        ("_ingest_date=2000-01-01".to_string(), 0),
    ] {
        sluice_ok(
            dir,
            &[
                "export",
                "files.sales",
                "--partition",
                &spec,
                "--to",
                &at("out/p.csv"),
            ],
        );
        let text = std::fs::read_to_string(dir.join("out/p.csv")).unwrap();
        assert_eq!(text.lines().count(), rows + 1, "{spec}: {text}");
    }

    // Mistakes are one-line errors.
    let (x_csv, x_xlsx) = (at("x.csv"), at("x.xlsx"));
    for (args, needle) in [
        (
            vec!["export", "nope", "--to", &x_csv],
            "unknown asset `nope`",
        ),
        (
            vec!["export", "by_region", "--to", &x_xlsx],
            "cannot tell the format",
        ),
        (
            vec![
                "export",
                "files.sales",
                "--partition",
                "day=1",
                "--to",
                &x_csv,
            ],
            "has no column `day`",
        ),
    ] {
        let out = sluice(dir, &args);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    assert!(!dir.join("x.csv").exists());
}

/// `sluice` with extra environment variables.
fn sluice_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sluice"));
    c.arg("--project")
        .arg(dir)
        .args(args)
        .env("SLUICE_LOG", "error");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run sluice")
}

fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "sluice failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

const PG: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test";

/// A client of the local PostgreSQL, or `None` (with a note) when it is not running outside CI.
async fn local_pg() -> Option<tokio_postgres::Client> {
    match tokio_postgres::connect(PG, tokio_postgres::NoTls).await {
        Ok((client, conn)) => {
            tokio::spawn(conn);
            Some(client)
        }
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("PostgreSQL at 127.0.0.1:5432 is required under CI: {e}")
        }
        Err(e) => {
            eprintln!("skipping: no PostgreSQL at 127.0.0.1:5432 ({e})");
            None
        }
    }
}

async fn pg_rows(client: &tokio_postgres::Client, table: &str) -> Vec<(String, i64, i64)> {
    client
        .query(
            &format!("select region, revenue, sales from {table} order by region"),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reverse_etl_upserts_into_postgres_and_runs_again_without_duplicates() {
    let Some(client) = local_pg().await else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    project(&dir, 6);
    let schema = format!("sluice_export_{}", std::process::id());
    let table = format!("{schema}.by_region");
    client
        .batch_execute(&format!("drop schema if exists {schema} cascade"))
        .await
        .unwrap();
    write(
        &dir,
        "exports/regions_to_pg.yml",
        &format!(
            "description: Revenue by region for the CRM.\nasset: gold.by_region\nkind: postgres\n\
             connection: ${{SLUICE_TEST_EXPORT_PG}}\ntable: {table}\nkey: [region]\n\
             mode: upsert\nbatch_size: 2\n"
        ),
    );
    let env = [("SLUICE_TEST_EXPORT_PG", PG)];
    let run =
        |d: std::path::PathBuf| tokio::task::spawn_blocking(move || sluice_env(&d, &["run"], &env));
    let out = run(dir.clone()).await.unwrap();
    let stdout = ok(&out);
    // 1..=6: north = 3,6; south = 1,4; east = 2,5 (amount = id * 10).
    let first = vec![
        ("east".to_string(), 70, 2),
        ("north".to_string(), 90, 2),
        ("south".to_string(), 50, 2),
    ];
    assert_eq!(pg_rows(&client, &table).await, first);
    let detail = sluice_ok(&dir, &["runs", &run_id_of(&stdout)]);
    let node = detail
        .lines()
        .find(|l| l.contains("export:regions_to_pg"))
        .unwrap_or_else(|| panic!("{detail}"));
    assert!(node.contains("success"), "{node}");

    // Running again pushes the same result: no duplicates, nothing changed.
    ok(&run(dir.clone()).await.unwrap());
    assert_eq!(pg_rows(&client, &table).await, first);

    // New source rows: matched keys are updated, new keys inserted.
    write(
        &dir,
        "landing/b.csv",
        "sale_id,region,amount\n7,north,5\n8,west,1\n",
    );
    ok(&run(dir.clone()).await.unwrap());
    assert_eq!(
        pg_rows(&client, &table).await,
        vec![
            ("east".to_string(), 70, 2),
            ("north".to_string(), 95, 3),
            ("south".to_string(), 50, 2),
            ("west".to_string(), 1, 1),
        ]
    );
    // The table was created with the key as its primary key.
    let pk: i64 = client
        .query_one(
            "select count(*) from information_schema.table_constraints \
             where table_schema = $1 and table_name = 'by_region' and constraint_type = 'PRIMARY KEY'",
            &[&schema],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(pk, 1);

    // A wrong key is a clear failure of the export node, not of the model.
    write(
        &dir,
        "exports/regions_to_pg.yml",
        &format!(
            "asset: by_region\nkind: postgres\nconnection: ${{SLUICE_TEST_EXPORT_PG}}\n\
             table: {table}\nkey: [regio]\n"
        ),
    );
    let out = run(dir.clone()).await.unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("column `regio` (key) is not in the asset"),
        "{text}"
    );
    client
        .batch_execute(&format!("drop schema {schema} cascade"))
        .await
        .unwrap();
}

/// What the test webhook received.
#[derive(Default)]
struct Received {
    attempts: usize,
    /// Idempotency key -> rows of the accepted batches.
    batches: BTreeMap<String, Vec<Value>>,
    duplicates: usize,
}

/// A webhook that fails the first request with a 500 and accepts every later one.
async fn webhook() -> (String, Arc<Mutex<Received>>) {
    use axum::http::{HeaderMap, StatusCode};
    let state = Arc::new(Mutex::new(Received::default()));
    let shared = state.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let state = shared.clone();
            async move {
                let mut s = state.lock().unwrap();
                s.attempts += 1;
                if s.attempts == 1 {
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                let key = headers["idempotency-key"].to_str().unwrap().to_string();
                let rows: Vec<Value> = serde_json::from_str(&body).unwrap();
                if s.batches.insert(key, rows).is_some() {
                    s.duplicates += 1;
                }
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reverse_etl_to_a_webhook_retries_a_5xx_and_sends_each_batch_once() {
    let (url, received) = webhook().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    project(&dir, 5);
    write(
        &dir,
        "exports/sales_hook.yml",
        &format!(
            "asset: files.sales\nkind: webhook\nurl: {url}\nheaders: {{X-Team: finance}}\n\
             columns: [sale_id, amount]\nbatch_size: 2\nretries: 3\nretry_backoff: 10ms\n"
        ),
    );
    let d = dir.clone();
    let out = tokio::task::spawn_blocking(move || sluice_env(&d, &["run"], &[]))
        .await
        .unwrap();
    ok(&out);
    let r = received.lock().unwrap();
    assert_eq!(r.attempts, 4, "3 batches, the first one sent twice");
    assert_eq!(r.duplicates, 0);
    let keys: Vec<&String> = r.batches.keys().collect();
    assert_eq!(keys.len(), 3);
    for (i, k) in keys.iter().enumerate() {
        assert!(k.ends_with(&format!(":sales_hook:{}", i + 1)), "{k}");
    }
    let mut ids: Vec<i64> = r
        .batches
        .values()
        .flatten()
        .map(|row| {
            assert_eq!(row.as_object().unwrap().len(), 2, "only the listed columns");
            assert_eq!(
                row["amount"].as_i64().unwrap(),
                row["sale_id"].as_i64().unwrap() * 10
            );
            row["sale_id"].as_i64().unwrap()
        })
        .collect();
    ids.sort();
    assert_eq!(ids, [1, 2, 3, 4, 5]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_is_skipped_when_its_model_fails_and_off_when_disabled() {
    let (url, received) = webhook().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    project(&dir, 5);
    write(
        &dir,
        "models/gold/schema.yml",
        "models:\n  - name: by_region\n    tests:\n      - row_count: {max: 1}\n",
    );
    write(
        &dir,
        "exports/regions_hook.yml",
        &format!("asset: by_region\nkind: webhook\nurl: {url}\n"),
    );
    write(
        &dir,
        "exports/off.yml",
        &format!(
            "asset: by_region\nkind: webhook\nurl: {url}\nenabled: ${{SLUICE_TEST_UNSET_FLAG}}\n"
        ),
    );
    let d = dir.clone();
    let out = tokio::task::spawn_blocking(move || sluice_env(&d, &["run"], &[]))
        .await
        .unwrap();
    assert!(!out.status.success(), "the model's error check fails");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let detail = sluice_ok(&dir, &["runs", &run_id_of(&stdout)]);
    let node = detail
        .lines()
        .find(|l| l.contains("export:regions_hook"))
        .unwrap_or_else(|| panic!("{detail}"));
    assert!(node.contains("skipped"), "{node}");
    assert!(
        !detail.contains("export:off"),
        "a disabled export is not in the graph"
    );
    assert_eq!(received.lock().unwrap().attempts, 0);

    // An export of an unknown asset is reported with its file and line.
    write(
        &dir,
        "exports/bad.yml",
        "kind: webhook\nurl: http://x\nasset: gold.by_regio\n",
    );
    let out = sluice(&dir, &["validate"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.yml:3:8"), "{err}");
    assert!(err.contains("did you mean `by_region`"), "{err}");
}
