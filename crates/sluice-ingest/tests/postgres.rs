//! `kind: postgres` against a real PostgreSQL server.
//!
//! The server comes from `SLUICE_TEST_PG_URL` (default `host=127.0.0.1 port=5432 user=postgres
//! dbname=test`). Each test works in its own freshly created schema, dropped when the test ends. When
//! the server cannot be reached the tests fail under `CI=true` and are skipped (with a message)
//! otherwise.

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::{DataType, TimeUnit};
use arrow::util::display::array_value_to_string;
use sluice_core::SourceDecl;
use sluice_engine::SessionContext;
use sluice_ingest::{IngestContext, IngestError, build_source};
use sluice_lake::{Lake, TableId};
use tokio_postgres::{Client, NoTls};

fn pg_url() -> String {
    std::env::var("SLUICE_TEST_PG_URL")
        .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres dbname=test".to_string())
}

/// A schema of its own for one test; dropped (with everything in it) when the guard goes.
struct TestDb {
    client: Client,
    schema: String,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let schema = self.schema.clone();
        // Drop runs outside async; use a short-lived runtime on another thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Ok((client, conn)) = tokio_postgres::connect(&pg_url(), NoTls).await {
                    tokio::spawn(conn);
                    let _ = client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                        .await;
                }
            });
        })
        .join();
    }
}

/// Connects and creates the test's schema, or `None` (skip) when no server is reachable outside CI.
async fn test_db(test: &str) -> Option<TestDb> {
    let url = pg_url();
    let (client, conn) = match tokio_postgres::connect(&url, NoTls).await {
        Ok(c) => c,
        Err(e) => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("PostgreSQL is not reachable at `{url}` under CI=true: {e}: {e:?}");
            }
            eprintln!("skipping {test}: PostgreSQL is not reachable at `{url}`: {e}");
            return None;
        }
    };
    tokio::spawn(conn);
    let schema = format!(
        "sluice_it_{test}_{}",
        uuid::Uuid::new_v4().simple().to_string().get(..12).unwrap()
    );
    client
        .batch_execute(&format!("CREATE SCHEMA \"{schema}\""))
        .await
        .unwrap();
    Some(TestDb { client, schema })
}

impl TestDb {
    async fn exec(&self, sql: &str) {
        let sql = format!("SET search_path = \"{}\", public; {sql}", self.schema);
        self.client
            .batch_execute(&sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }

    /// One text value per cell of `sql`'s result (NULL as "NULL").
    async fn texts(&self, sql: &str) -> Vec<Vec<String>> {
        self.exec("SET intervalstyle = iso_8601").await;
        let sql = format!("SET search_path = \"{}\", public; {sql}", self.schema);
        let mut out = Vec::new();
        for m in self.client.simple_query(&sql).await.unwrap() {
            if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
                out.push(
                    (0..r.len())
                        .map(|i| r.get(i).unwrap_or("NULL").to_string())
                        .collect(),
                );
            }
        }
        out
    }

    fn source(&self, name: &str, body: &str) -> SourceDecl {
        let text = format!(
            "kind: postgres\nconnection: \"{}\"\nschema: {}\n{body}",
            pg_url(),
            self.schema
        );
        SourceDecl::parse(std::path::Path::new(&format!("sources/{name}.yml")), &text).unwrap()
    }
}

fn lake() -> (tempfile::TempDir, Lake) {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    (dir, lake)
}

async fn sql(lake: &Lake, id: &TableId, query: &str) -> Vec<RecordBatch> {
    let provider = lake.table_provider(id).await.unwrap().unwrap();
    let ctx = SessionContext::new();
    ctx.register_table("t", provider).unwrap();
    ctx.sql(query).await.unwrap().collect().await.unwrap()
}

/// Cells as strings, row by row (NULL as "NULL").
fn rows(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for b in batches {
        for r in 0..b.num_rows() {
            out.push(
                b.columns()
                    .iter()
                    .map(|c| {
                        if c.is_null(r) {
                            "NULL".to_string()
                        } else {
                            array_value_to_string(c, r).unwrap()
                        }
                    })
                    .collect(),
            );
        }
    }
    out
}

fn list(item: DataType) -> DataType {
    DataType::List(std::sync::Arc::new(
        arrow::datatypes::Field::new_list_field(item, true),
    ))
}

async fn count(lake: &Lake, id: &TableId) -> i64 {
    let r = rows(&sql(lake, id, "SELECT count(*) FROM t").await);
    r[0][0].parse().unwrap()
}

const ALL_TYPES: &str = "
    CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
    CREATE DOMAIN positive AS int8 CHECK (VALUE > 0);
    CREATE EXTENSION IF NOT EXISTS citext WITH SCHEMA public;
    CREATE TABLE all_types (
        id int4 PRIMARY KEY,
        b bool, i2 int2, i8 int8, f4 float4, f8 float8,
        n numeric(12,3), nu numeric, nbig numeric(50,5),
        t text, vc varchar(10), ch char(5), nm name, ci citext,
        d date, ts timestamp, tstz timestamptz, tm time, iv interval,
        u uuid, j json, jb jsonb, by bytea,
        ai int4[], at text[], an numeric(6,2)[], e mood, pos positive
    );
    INSERT INTO all_types VALUES (
        1, true, -32768, 9223372036854775807, 1.5, -2.25e-300,
        123456789.125, -0.000000001, 12345678901234567890123456789012345678901234.56789,
        'héllo ✓', 'short', 'ab', 'a_name', 'MiXeD',
        '2024-02-29', '2024-05-01 12:34:56.123456', '2024-05-01 12:34:56.5+02', '23:59:59.999999',
        '1 year 2 mons 3 days 04:05:06.789',
        'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '{\"b\": [1, 2],  \"a\": null}', '{\"b\": [1, 2],  \"a\": null}',
        '\\xdeadbeef00',
        '{1,NULL,-3}', '{\"x,y\",NULL,\"\"}', '{1.50,-2.25}', 'happy', 42
    );
    INSERT INTO all_types (id) VALUES (2);
    INSERT INTO all_types (id, ai, at, iv, ts, d) VALUES
        (3, '{}', '{}', '-1 year -2 mons +3 days -04:05:06.5', '1900-01-01 00:00:00', '1970-01-01');
";

#[tokio::test]
async fn every_supported_type_lands_faithfully() {
    let Some(db) = test_db("types").await else {
        return;
    };
    db.exec(ALL_TYPES).await;
    let (_dir, lake) = lake();
    let source = build_source(
        &db.source("pg", "tables:\n  - name: all_types\n"),
        std::path::Path::new("."),
    )
    .unwrap();
    let report = source
        .ingest("all_types", &IngestContext::new(lake.clone(), "run-1"))
        .await
        .unwrap();
    assert_eq!(report.rows_read, 3);
    assert_eq!(report.rows_written, 3);
    assert_eq!(report.rows_quarantined, 0);

    let id = TableId::bronze("pg", "all_types");
    let batches = sql(&lake, &id, "SELECT * FROM t ORDER BY id").await;
    let schema = batches[0].schema();
    // Types as the Delta table stores them (DataFusion reads strings back as Utf8View).
    let table = lake.load(&id).await.unwrap().unwrap();
    let stored = sluice_lake::arrow_schema(&table).unwrap();
    let ty = |c: &str| match stored.field_with_name(c).unwrap().data_type() {
        // Delta names the list item `element`; compare the item type.
        DataType::List(item) => list(item.data_type().clone()),
        other => other.clone(),
    };
    let expected_types = [
        ("id", DataType::Int32),
        ("b", DataType::Boolean),
        ("i2", DataType::Int16),
        ("i8", DataType::Int64),
        ("f4", DataType::Float32),
        ("f8", DataType::Float64),
        ("n", DataType::Decimal128(12, 3)),
        ("nu", DataType::Decimal128(38, 10)),
        ("nbig", DataType::Utf8),
        ("t", DataType::Utf8),
        ("vc", DataType::Utf8),
        ("ch", DataType::Utf8),
        ("nm", DataType::Utf8),
        ("ci", DataType::Utf8),
        ("d", DataType::Date32),
        ("ts", DataType::Timestamp(TimeUnit::Microsecond, None)),
        (
            "tstz",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        ),
        ("tm", DataType::Utf8),
        ("iv", DataType::Utf8),
        ("u", DataType::Utf8),
        ("j", DataType::Utf8),
        ("jb", DataType::Utf8),
        ("by", DataType::Binary),
        ("ai", list(DataType::Int32)),
        ("at", list(DataType::Utf8)),
        ("an", list(DataType::Decimal128(6, 2))),
        ("e", DataType::Utf8),
        ("pos", DataType::Int64),
    ];
    for (c, t) in &expected_types {
        assert_eq!(&ty(c), t, "column {c}");
    }
    // `timestamp` (no time zone) needs Delta's `timestampNtz` table feature; delta-rs turns it on.
    let log = std::fs::read_to_string(
        lake.table_url(&id)
            .to_file_path()
            .unwrap()
            .join("_delta_log/00000000000000000000.json"),
    )
    .unwrap();
    assert!(log.contains("timestampNtz"), "{log}");

    let got = rows(&batches);
    let col = |name: &str| schema.index_of(name).unwrap();
    let r1 = &got[0];
    let v = |c: &str| r1[col(c)].as_str();
    assert_eq!(v("b"), "true");
    assert_eq!(v("i2"), "-32768");
    assert_eq!(v("i8"), "9223372036854775807");
    assert_eq!(v("f4"), "1.5");
    assert_eq!(v("f8"), "-2.25e-300");
    assert_eq!(v("n"), "123456789.125");
    assert_eq!(v("nu"), "-0.0000000010");
    assert_eq!(v("ts"), "2024-05-01T12:34:56.123456");
    assert_eq!(v("tstz"), "2024-05-01T10:34:56.500Z");
    assert_eq!(v("d"), "2024-02-29");
    assert_eq!(v("by"), "deadbeef00");
    assert_eq!(v("ai"), "[1, , -3]");
    assert_eq!(v("an"), "[1.50, -2.25]");
    assert_eq!(v("pos"), "42");
    // Text-like columns hold exactly PostgreSQL's own text output.
    let text_cols = [
        "nbig", "t", "vc", "ch", "nm", "ci", "tm", "iv", "u", "j", "jb", "e",
    ];
    let pg = db
        .texts(&format!(
            "SELECT {} FROM all_types ORDER BY id",
            text_cols.join(", ")
        ))
        .await;
    for (row, pg_row) in got.iter().zip(&pg) {
        for (c, pg_value) in text_cols.iter().zip(pg_row) {
            assert_eq!(&row[col(c)], pg_value, "column {c}");
        }
    }
    assert_eq!(v("ch"), "ab   ");
    assert_eq!(v("iv"), "P1Y2M3DT4H5M6.789S");
    assert_eq!(v("u"), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    assert_eq!(v("jb"), r#"{"a": null, "b": [1, 2]}"#);
    assert_eq!(v("j"), r#"{"b": [1, 2],  "a": null}"#);
    // The array of text keeps its NULL and its empty string apart.
    let at = batches[0].column(col("at"));
    let at = at
        .as_any()
        .downcast_ref::<arrow::array::ListArray>()
        .unwrap();
    let items = arrow::compute::cast(&at.value(0), &DataType::Utf8).unwrap();
    let items = items
        .as_any()
        .downcast_ref::<arrow::array::StringArray>()
        .unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items.value(0), "x,y");
    assert!(items.is_null(1));
    assert!(!items.is_null(2) && items.value(2).is_empty());
    // Row 2: every column NULL.
    assert_eq!(got[1][0], "2");
    assert!(
        got[1][1..expected_types.len()].iter().all(|v| v == "NULL"),
        "{:?}",
        got[1]
    );
    // Row 3: empty arrays, a negative interval, dates before 1970.
    let r3 = &got[2];
    assert_eq!(r3[col("ai")], "[]");
    assert_eq!(r3[col("iv")], "P-1Y-2M3DT-4H-5M-6.5S");
    assert_eq!(r3[col("ts")], "1900-01-01T00:00:00");
    assert_eq!(r3[col("d")], "1970-01-01");
}

#[tokio::test]
async fn values_without_an_arrow_form_go_to_quarantine() {
    let Some(db) = test_db("quarantine").await else {
        return;
    };
    db.exec(
        "CREATE TABLE q (id int4, nu numeric, ts timestamp, m int4[]);
         INSERT INTO q VALUES
            (1, 1.5, '2024-01-01', '{1}'),
            (2, 1.00000000001, '2024-01-01', NULL),
            (3, 'NaN', '2024-01-01', NULL),
            (4, 1e30, '2024-01-01', NULL),
            (5, 2, 'infinity', NULL),
            (6, 3, '2024-01-01', '{{1,2},{3,4}}');",
    )
    .await;
    let (_dir, lake) = lake();
    let source = build_source(&db.source("pg", "tables:\n  - name: q\n"), ".".as_ref()).unwrap();
    let report = source
        .ingest("q", &IngestContext::new(lake.clone(), "run-1"))
        .await
        .unwrap();
    assert_eq!(report.rows_read, 6);
    assert_eq!(report.rows_written, 1);
    assert_eq!(report.rows_quarantined, 5);
    let quarantine = TableId::quarantine("pg.q");
    let got = rows(
        &sql(
            &lake,
            &quarantine,
            "SELECT line, reason, raw FROM t ORDER BY line",
        )
        .await,
    );
    let reasons: Vec<(&str, &str)> = got.iter().map(|r| (r[0].as_str(), r[1].as_str())).collect();
    assert_eq!(
        reasons,
        [
            (
                "2",
                "row 2: column `nu`: numeric 1.00000000001 has more than 10 digits after the point; decimal(38,10) would round it"
            ),
            (
                "3",
                "row 3: column `nu`: numeric `NaN` has no decimal(38,10) value"
            ),
            (
                "4",
                "row 4: column `nu`: numeric 1000000000000000000000000000000 does not fit decimal(38,10)"
            ),
            (
                "5",
                "row 5: column `ts`: timestamp `infinity` has no Arrow value"
            ),
            (
                "6",
                "row 6: column `m`: multi-dimensional array (2 dimensions) cannot land as a list; flatten it in `query:`"
            ),
        ]
    );
    // The raw row keeps the exact values.
    let raw: serde_json::Value = serde_json::from_str(&got[0][2]).unwrap();
    assert_eq!(raw["nu"], "1.00000000001");
    assert_eq!(raw["id"], 2);
    let raw: serde_json::Value = serde_json::from_str(&got[3][2]).unwrap();
    assert_eq!(raw["ts"], "infinity");
}

#[tokio::test]
async fn unsupported_type_is_a_clear_error_and_query_can_cast_it() {
    let Some(db) = test_db("unsupported").await else {
        return;
    };
    db.exec(
        "CREATE TABLE docs (id int4, body tsvector);
         INSERT INTO docs VALUES (1, to_tsvector('simple', 'hello world'));",
    )
    .await;
    let (_dir, lake) = lake();
    let cx = IngestContext::new(lake.clone(), "run-1");
    let source = build_source(&db.source("pg", "tables:\n  - name: docs\n"), ".".as_ref()).unwrap();
    let err = source.ingest("docs", &cx).await.unwrap_err();
    assert!(!err.is_transient());
    assert_eq!(
        err.to_string(),
        format!(
            "postgres source `pg`: table `{}.docs`: column `body` has type `tsvector`, which is \
             not supported; cast it in `query:` (e.g. body::text)",
            db.schema
        )
    );
    let cast = db.source(
        "pg",
        &format!(
            "tables:\n  - name: docs\n    query: SELECT id, body::text AS body FROM {}.docs;\n",
            db.schema
        ),
    );
    let report = build_source(&cast, ".".as_ref())
        .unwrap()
        .ingest("docs", &cx)
        .await
        .unwrap();
    assert_eq!(report.rows_written, 1);
    let got = rows(&sql(&lake, &TableId::bronze("pg", "docs"), "SELECT body FROM t").await);
    assert_eq!(got, [["'hello':1 'world':2"]]);
}

/// Per commit of `table`: (batch id, min cursor, max cursor, rows), in commit order.
async fn commits_by_batch(
    lake: &Lake,
    id: &TableId,
    cursor: &str,
) -> Vec<(String, String, String, i64)> {
    rows(
        &sql(
            lake,
            id,
            &format!(
                "SELECT _batch_id, CAST(min({cursor}) AS VARCHAR), CAST(max({cursor}) AS VARCHAR), \
                 count(*) FROM t GROUP BY _batch_id ORDER BY min({cursor})"
            ),
        )
        .await,
    )
    .into_iter()
    .map(|r| {
        (
            r[0].clone(),
            r[1].clone(),
            r[2].clone(),
            r[3].parse().unwrap(),
        )
    })
    .collect()
}

#[tokio::test]
async fn incremental_lands_each_row_once_and_records_the_watermark() {
    let Some(db) = test_db("incremental").await else {
        return;
    };
    // 10 rows; the cursor has ties (three rows at 00:03, four at 00:07).
    db.exec(
        "CREATE TABLE events (id int4 PRIMARY KEY, updated_at timestamptz, v text);
         INSERT INTO events
         SELECT i, timestamptz '2024-01-01 00:00:00+00' + make_interval(mins => m), 'a' || i
         FROM (VALUES (1,1),(2,2),(3,3),(4,3),(5,3),(6,5),(7,7),(8,7),(9,7),(10,7)) AS x(i, m);
         INSERT INTO events VALUES (11, NULL, 'no cursor');",
    )
    .await;
    let (_dir, lake) = lake();
    let decl = db.source(
        "pg",
        "commit_rows: 2\nbatch_size: 3\ntables:\n  - name: events\n    mode: incremental\n    cursor: updated_at\n    primary_key: [id]\n",
    );
    let source = build_source(&decl, ".".as_ref()).unwrap();
    let id = TableId::bronze("pg", "events");
    let app = "sluice:ingest:pg.events";

    let first = source
        .ingest("events", &IngestContext::new(lake.clone(), "run-1"))
        .await
        .unwrap();
    assert_eq!(first.rows_read, 10, "the NULL-cursor row is not selected");
    assert_eq!(first.rows_written, 10);
    // Chunks of >= 2 rows cut only where the cursor changes: {1,2}, {3,3,3}, {5,7,7,7,7}.
    assert_eq!(first.commits, 3);
    assert_eq!(
        first.watermark,
        Some(serde_json::json!("2024-01-01T00:07:00.000000Z"))
    );
    let last = lake.commit_metadata(&id, app).await.unwrap().unwrap();
    assert_eq!(
        last.metadata["sluice.watermark"],
        "2024-01-01T00:07:00.000000Z"
    );
    assert_eq!(last.txn_version, Some(3));
    // Every commit holds whole cursor values: no value is split across two commits.
    let commits = commits_by_batch(&lake, &id, "updated_at").await;
    assert_eq!(commits.iter().map(|c| c.3).collect::<Vec<_>>(), [2, 3, 5]);
    for pair in commits.windows(2) {
        assert!(pair[0].2 < pair[1].1, "{pair:?}");
    }

    // Nothing new: nothing lands.
    let again = source
        .ingest("events", &IngestContext::new(lake.clone(), "run-2"))
        .await
        .unwrap();
    assert_eq!(
        (again.rows_read, again.rows_written, again.commits),
        (0, 0, 0)
    );

    // New rows beyond the mark, with ties spanning the commit size.
    db.exec(
        "INSERT INTO events
         SELECT i, timestamptz '2024-01-01 00:00:00+00' + make_interval(mins => m), 'b' || i
         FROM (VALUES (12,8),(13,8),(14,8),(15,9),(16,10),(17,10)) AS x(i, m);",
    )
    .await;
    let third = source
        .ingest("events", &IngestContext::new(lake.clone(), "run-3"))
        .await
        .unwrap();
    assert_eq!(third.rows_read, 6);
    assert_eq!(third.rows_written, 6);
    assert_eq!(third.commits, 2, "{{8,8,8}}, {{9,10,10}}");
    assert_eq!(count(&lake, &id).await, 16);
    let distinct = rows(&sql(&lake, &id, "SELECT count(DISTINCT id) FROM t").await);
    assert_eq!(distinct[0][0], "16");
    let last = lake.commit_metadata(&id, app).await.unwrap().unwrap();
    assert_eq!(
        last.metadata["sluice.watermark"],
        "2024-01-01T00:10:00.000000Z"
    );
    assert_eq!(last.txn_version, Some(5));
    // The landed values match the source row for row.
    let landed = rows(&sql(&lake, &id, "SELECT id, v FROM t ORDER BY id").await);
    let source_rows = db
        .texts("SELECT id, v FROM events WHERE updated_at IS NOT NULL ORDER BY id")
        .await;
    assert_eq!(landed, source_rows);
}

#[tokio::test]
async fn incremental_by_numeric_cursor_through_a_query() {
    let Some(db) = test_db("numcursor").await else {
        return;
    };
    db.exec(
        "CREATE TABLE ledger (seq numeric(20,2), amount int8);
         INSERT INTO ledger SELECT g / 4.0, g FROM generate_series(1, 100) g;",
    )
    .await;
    let (_dir, lake) = lake();
    let decl = db.source(
        "pg",
        &format!(
            "commit_rows: 30\ntables:\n  - name: ledger\n    mode: incremental\n    cursor: seq\n    \
             query: SELECT seq, amount FROM {}.ledger WHERE amount % 2 = 0\n",
            db.schema
        ),
    );
    let source = build_source(&decl, ".".as_ref()).unwrap();
    let r1 = source
        .ingest("ledger", &IngestContext::new(lake.clone(), "run-1"))
        .await
        .unwrap();
    assert_eq!(r1.rows_written, 50);
    assert_eq!(r1.watermark, Some(serde_json::json!("25.00")));
    db.exec("INSERT INTO ledger SELECT g / 4.0, g FROM generate_series(101, 110) g;")
        .await;
    let r2 = source
        .ingest("ledger", &IngestContext::new(lake.clone(), "run-2"))
        .await
        .unwrap();
    assert_eq!(r2.rows_written, 5);
    assert_eq!(r2.watermark, Some(serde_json::json!("27.50")));
    let id = TableId::bronze("pg", "ledger");
    let sum = rows(&sql(&lake, &id, "SELECT count(*), sum(amount) FROM t").await);
    // Even numbers 2..=110: 55 of them, summing to 55 * 56.
    assert_eq!(sum, [["55", "3080"]]);
}

#[tokio::test]
async fn full_mode_rerun_replaces_the_snapshot() {
    let Some(db) = test_db("full").await else {
        return;
    };
    db.exec(
        "CREATE TABLE items (id int8 PRIMARY KEY, name text);
         INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 20000) g;",
    )
    .await;
    let (_dir, lake) = lake();
    let decl = db.source(
        "pg",
        "batch_size: 1000\ntables:\n  - name: items\n    mode: full\n",
    );
    let source = build_source(&decl, ".".as_ref()).unwrap();
    let id = TableId::bronze("pg", "items");
    let r1 = source
        .ingest("items", &IngestContext::new(lake.clone(), "run-1"))
        .await
        .unwrap();
    assert_eq!(
        (r1.rows_read, r1.rows_written, r1.commits),
        (20000, 20000, 1)
    );
    let r2 = source
        .ingest("items", &IngestContext::new(lake.clone(), "run-2"))
        .await
        .unwrap();
    assert_eq!(r2.rows_written, 20000);
    assert_eq!(
        count(&lake, &id).await,
        20000,
        "a re-run does not duplicate"
    );
    db.exec("DELETE FROM items WHERE id > 10; UPDATE items SET name = 'renamed' WHERE id = 1;")
        .await;
    source
        .ingest("items", &IngestContext::new(lake.clone(), "run-3"))
        .await
        .unwrap();
    let got = rows(
        &sql(
            &lake,
            &id,
            "SELECT count(*), min(name) FILTER (WHERE id = 1) FROM t",
        )
        .await,
    );
    assert_eq!(got, [["10", "renamed"]]);
    // An emptied table lands as an empty snapshot.
    db.exec("DELETE FROM items").await;
    let r4 = source
        .ingest("items", &IngestContext::new(lake.clone(), "run-4"))
        .await
        .unwrap();
    assert_eq!(r4.commits, 1);
    assert_eq!(count(&lake, &id).await, 0);
}

#[tokio::test]
async fn connection_failures_are_transient_and_sql_errors_are_not() {
    let Some(db) = test_db("errors").await else {
        return;
    };
    let (_dir, lake) = lake();
    let cx = IngestContext::new(lake.clone(), "run-1");
    // Nothing listens on port 1: connection refused.
    let refused = SourceDecl::parse(
        std::path::Path::new("sources/down.yml"),
        "kind: postgres\nconnection: host=127.0.0.1 port=1 user=postgres dbname=test\n\
               tables:\n  - name: t\n",
    )
    .unwrap();
    let err = build_source(&refused, ".".as_ref())
        .unwrap()
        .ingest("t", &cx)
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("cannot connect"), "{err}");
    let missing = build_source(&db.source("pg", "tables:\n  - name: nope\n"), ".".as_ref())
        .unwrap()
        .ingest("nope", &cx)
        .await
        .unwrap_err();
    assert!(!missing.is_transient(), "{missing}");
    assert!(missing.to_string().contains("42P01"), "{missing}");
    // A connection string that does not parse is a config error naming the field.
    let bad = SourceDecl::parse(
        std::path::Path::new("sources/bad.yml"),
        "kind: postgres\nconnection: \"host=x port=notaport\"\ntables: []\n",
    )
    .unwrap();
    let err = build_source(&bad, ".".as_ref()).err().unwrap();
    assert!(matches!(err, IngestError::Config(_)), "{err}");
    assert!(err.to_string().contains("field `connection`"), "{err}");
}

/// `url` with `application_name` set, in its own syntax (URL or key=value).
fn with_application_name(url: &str, name: &str) -> String {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}application_name={name}")
    } else {
        format!("{url} application_name={name}")
    }
}

/// Terminates, as an administrator (or a failover) would, the backend of application `app` once it
/// sits in `pg_sleep`; false when it never got there (10 s).
async fn terminate_sleeping_read(db: &TestDb, app: &str) -> bool {
    for _ in 0..200 {
        let killed = db
            .client
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE application_name = $1 AND query LIKE '%pg_sleep%' AND state = 'active' \
                 AND wait_event = 'PgSleep'",
                &[&app],
            )
            .await
            .unwrap();
        if !killed.is_empty() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn server_terminating_the_read_is_transient() {
    let Some(db) = test_db("terminated").await else {
        return;
    };
    db.exec("CREATE TABLE slow (id int4); INSERT INTO slow SELECT generate_series(1, 3);")
        .await;
    let app = db.schema.clone();
    let decl = SourceDecl::parse(
        std::path::Path::new("sources/pg.yml"),
        &format!(
            "kind: postgres\nconnection: \"{}\"\ntables:\n  - name: slow\n    \
             query: SELECT id, (SELECT 1 FROM pg_sleep(30)) AS s FROM {}.slow\n",
            with_application_name(&pg_url(), &app),
            db.schema
        ),
    )
    .unwrap();
    let (_dir, lake) = lake();
    let source = build_source(&decl, ".".as_ref()).unwrap();
    let cx = IngestContext::new(lake.clone(), "run-1");
    let ingest = tokio::spawn(async move { source.ingest("slow", &cx).await });
    // Wait until the read is running on the server, then terminate its backend as an
    // administrator (or a failover) would.
    assert!(
        terminate_sleeping_read(&db, &app).await,
        "the read never showed up in pg_stat_activity"
    );
    let err = tokio::time::timeout(std::time::Duration::from_secs(20), ingest)
        .await
        .expect("the ingestion ends once its connection is terminated")
        .unwrap()
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("57P01") || msg.contains("connection closed"),
        "{msg}"
    );
    eprintln!("terminated read: {msg}");
    let lake_has_table = lake.exists(&TableId::bronze("pg", "slow")).await.unwrap();
    assert!(!lake_has_table, "nothing landed");
}

/// A full load streams its batches into the lake as it reads (bounded memory); a read that dies
/// after many batches must still commit nothing, leaving the last snapshot whole.
#[tokio::test]
async fn a_full_load_cut_off_midway_keeps_the_last_snapshot() {
    let Some(db) = test_db("fullcut").await else {
        return;
    };
    db.exec(
        "CREATE TABLE items (id int4 PRIMARY KEY, name text);
         INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 3000) g;",
    )
    .await;
    let app = format!("{}_cut", db.schema);
    let decl = SourceDecl::parse(std::path::Path::new("sources/pg.yml"), &format!(
            "kind: postgres\nconnection: \"{}\"\nbatch_size: 500\ntables:\n  - name: items\n    \
             query: SELECT id, name, CASE WHEN id = 2500 THEN (SELECT 1 FROM pg_sleep(30)) END AS s \
             FROM {}.items ORDER BY id\n",
            with_application_name(&pg_url(), &app),
            db.schema
        )).unwrap();
    let (_dir, lake) = lake();
    let id = TableId::bronze("pg", "items");
    let source = build_source(&decl, ".".as_ref()).unwrap();
    // The first run reads until it sleeps at row 2,500: cut it off there.
    db.exec("UPDATE items SET id = id + 10000 WHERE id = 2500")
        .await;
    let first = source
        .ingest("items", &IngestContext::new(lake.clone(), "run-1"))
        .await
        .unwrap();
    assert_eq!((first.rows_written, first.commits), (3000, 1));
    let version = lake.load(&id).await.unwrap().unwrap().version();
    db.exec("UPDATE items SET id = 2500 WHERE id = 12500; INSERT INTO items VALUES (9999, 'new')")
        .await;
    let cx = IngestContext::new(lake.clone(), "run-2");
    let ingest = tokio::spawn(async move { source.ingest("items", &cx).await });
    assert!(
        terminate_sleeping_read(&db, &app).await,
        "the read never reached its sleep"
    );
    let err = tokio::time::timeout(std::time::Duration::from_secs(20), ingest)
        .await
        .expect("the load ends once its connection is terminated")
        .unwrap()
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert_eq!(
        lake.load(&id).await.unwrap().unwrap().version(),
        version,
        "nothing committed"
    );
    assert_eq!(count(&lake, &id).await, 3000, "the last snapshot is whole");
}
