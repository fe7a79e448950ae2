//! What every relational connector (`sqlite`, `postgres`, `mysql`: the drivers of the kit in
//! `src/sources/relational/`) does alike, run once per driver against a real database (see
//! `support/databases.rs`: SQLite always, PostgreSQL and MySQL / MariaDB when reachable).
//!
//! Type mappings, quarantined values and error classification differ per database and are tested
//! in `postgres.rs` and `mysql.rs`.

mod support;

use serde_json::json;
use sluice_ingest::{IngestContext, IngestError, build_source};
use sluice_lake::TableId;
use support::databases::{Driver, TestDb, each};
use support::lake::{count, lake, query};

fn cx(lake: &sluice_lake::Lake, run: &str) -> IngestContext {
    IngestContext::new(lake.clone(), run)
        .with_pii_key(Some(sluice_core::pii::PiiKey::new(b"relational-test-key")))
}

/// `INSERT INTO events` of `(id, second of the cursor or NULL, v)` rows.
fn insert_events(db: &TestDb, rows: &[(i32, Option<u32>, &str)]) -> String {
    let values: Vec<String> = rows
        .iter()
        .map(|(id, s, v)| {
            let ts = s.map_or("NULL".to_string(), |s| db.timestamp(s));
            format!("({id}, {ts}, '{v}')")
        })
        .collect();
    format!("INSERT INTO events VALUES {};", values.join(", "))
}

#[tokio::test]
async fn incremental_lands_each_row_once_and_records_the_watermark() {
    for mut db in each("incremental").await {
        let kind = db.kind();
        // 10 rows; the cursor has ties (three rows at 00:03, four at 00:07).
        let create = format!(
            "CREATE TABLE events (id int PRIMARY KEY, updated_at {}, v varchar(20));",
            db.timestamp_type()
        );
        let rows: Vec<(i32, Option<u32>, &str)> = [1, 2, 3, 3, 3, 5, 7, 7, 7, 7]
            .iter()
            .zip(1..)
            .map(|(m, id)| (id, Some(m * 60), "a"))
            .collect();
        let insert = insert_events(&db, &rows);
        db.exec(&format!("{create} {insert}")).await;
        let (_dir, lake) = lake();
        let decl = db.source(
            "rel",
            "commit_rows: 2\nbatch_size: 3\ntables:\n  - name: events\n    mode: incremental\n    \
             cursor: updated_at\n    primary_key: [id]\n",
        );
        let source = build_source(&decl, ".".as_ref()).unwrap();
        let id = TableId::bronze("rel", "events");
        let app = "sluice:ingest:rel.events";

        let first = source.ingest("events", &cx(&lake, "run-1")).await.unwrap();
        assert_eq!((first.rows_read, first.rows_written), (10, 10), "{kind}");
        // Chunks of >= 2 rows cut only where the cursor changes: {1,2}, {3,3,3}, {5,7,7,7,7}.
        assert_eq!(first.commits, 3, "{kind}");
        assert_eq!(first.watermark, Some(db.timestamp_mark(420)), "{kind}");
        let last = lake.commit_metadata(&id, app).await.unwrap().unwrap();
        assert_eq!(
            last.metadata["sluice.watermark"],
            db.timestamp_mark(420),
            "{kind}"
        );
        assert_eq!(last.txn_version, Some(3), "{kind}");
        // Every commit holds whole cursor values: no value is split across two commits.
        let per_commit = query(
            &lake,
            &id,
            "SELECT count(*), count(DISTINCT id) FROM t GROUP BY _batch_id ORDER BY min(updated_at)",
        )
        .await;
        assert_eq!(per_commit, [["2", "2"], ["3", "3"], ["5", "5"]], "{kind}");

        // Nothing new: nothing lands.
        let again = source.ingest("events", &cx(&lake, "run-2")).await.unwrap();
        let nothing = (again.rows_read, again.rows_written, again.commits);
        assert_eq!(nothing, (0, 0, 0), "{kind}");

        // New rows beyond the mark with ties spanning the commit size, one late row below it
        // (which a high-water mark cannot see) and one without a cursor (never selected).
        let more = insert_events(
            &db,
            &[
                (12, Some(480), "b"),
                (13, Some(480), "b"),
                (14, Some(480), "b"),
                (15, Some(540), "b"),
                (16, Some(600), "b"),
                (17, Some(600), "b"),
                (18, Some(30), "late"),
                (19, None, "no cursor"),
            ],
        );
        db.exec(&more).await;
        let third = source.ingest("events", &cx(&lake, "run-3")).await.unwrap();
        assert_eq!((third.rows_read, third.rows_written), (6, 6), "{kind}");
        assert_eq!(third.commits, 2, "{kind}: {{8,8,8}}, {{9,10,10}}");
        assert_eq!(third.watermark, Some(db.timestamp_mark(600)), "{kind}");
        let last = lake.commit_metadata(&id, app).await.unwrap().unwrap();
        assert_eq!(last.txn_version, Some(5), "{kind}");
        let ids = query(
            &lake,
            &id,
            "SELECT count(*), count(DISTINCT id), max(id) FROM t",
        )
        .await;
        assert_eq!(ids, [["16", "16", "17"]], "{kind}");
        let sources = query(&lake, &id, "SELECT DISTINCT _source FROM t").await;
        assert_eq!(sources, [[db.origin("events")]], "{kind}");
    }
}

/// PostgreSQL and MySQL never select a row whose cursor is NULL; SQLite has always landed those
/// rows on a table's first incremental load (they sort first), and only then.
#[tokio::test]
async fn rows_with_a_null_cursor() {
    for mut db in each("nullcursor").await {
        let kind = db.kind();
        let create = format!(
            "CREATE TABLE events (id int PRIMARY KEY, updated_at {}, v varchar(20));",
            db.timestamp_type()
        );
        let insert = insert_events(
            &db,
            &[(1, None, "x"), (2, Some(60), "a"), (3, Some(120), "b")],
        );
        db.exec(&format!("{create} {insert}")).await;
        let (_dir, lake) = lake();
        let decl = db.source(
            "rel",
            "tables:\n  - name: events\n    mode: incremental\n    cursor: updated_at\n",
        );
        let source = build_source(&decl, ".".as_ref()).unwrap();
        let first = source.ingest("events", &cx(&lake, "run-1")).await.unwrap();
        let with_null = u64::from(db.driver == Driver::Sqlite);
        assert_eq!(first.rows_written, 2 + with_null, "{kind}");
        assert_eq!(first.watermark, Some(db.timestamp_mark(120)), "{kind}");
        db.exec(&insert_events(&db, &[(4, None, "y")])).await;
        let second = source.ingest("events", &cx(&lake, "run-2")).await.unwrap();
        assert_eq!(second.rows_written, 0, "{kind}");
    }
}

/// `INSERT INTO items` of ids `1..=n` named `item <id>`.
fn insert_items(n: u32) -> String {
    let values: Vec<String> = (1..=n).map(|i| format!("({i}, 'item {i}')")).collect();
    format!("INSERT INTO items VALUES {};", values.join(", "))
}

#[tokio::test]
async fn full_mode_rerun_replaces_the_snapshot() {
    for mut db in each("full").await {
        let kind = db.kind();
        db.exec(&format!(
            "CREATE TABLE items (id bigint PRIMARY KEY, name varchar(20)); {}",
            insert_items(5000)
        ))
        .await;
        let (_dir, lake) = lake();
        let decl = db.source(
            "rel",
            "batch_size: 1000\ntables:\n  - name: items\n    pii: {name: hash}\n",
        );
        let source = build_source(&decl, ".".as_ref()).unwrap();
        let id = TableId::bronze("rel", "items");
        let r1 = source.ingest("items", &cx(&lake, "run-1")).await.unwrap();
        assert_eq!(
            (r1.rows_read, r1.rows_written, r1.commits),
            (5000, 5000, 1),
            "{kind}"
        );
        let r2 = source.ingest("items", &cx(&lake, "run-2")).await.unwrap();
        assert_eq!((r2.rows_written, r2.commits), (5000, 1), "{kind}");
        assert_eq!(
            count(&lake, &id).await,
            5000,
            "{kind}: a re-run does not duplicate"
        );
        db.exec("DELETE FROM items WHERE id > 10").await;
        source.ingest("items", &cx(&lake, "run-3")).await.unwrap();
        let got = query(
            &lake,
            &id,
            "SELECT count(*), min(length(name)), max(_source) FROM t",
        )
        .await;
        // PII hashing applies: SHA-256 hex is 64 characters.
        let want = ["10".to_string(), "64".to_string(), db.origin("items")];
        assert_eq!(got, [want], "{kind}");
        // An emptied table lands as an empty snapshot.
        db.exec("DELETE FROM items").await;
        let r4 = source.ingest("items", &cx(&lake, "run-4")).await.unwrap();
        assert_eq!(r4.commits, 1, "{kind}");
        assert_eq!(count(&lake, &id).await, 0, "{kind}");
    }
}

#[tokio::test]
async fn incremental_through_a_query_and_its_cursor() {
    for mut db in each("query").await {
        let kind = db.kind();
        let values: Vec<String> = (1..=100).map(|g| format!("({g}, {})", g * 10)).collect();
        db.exec(&format!(
            "CREATE TABLE ledger (seq int, amount int); INSERT INTO ledger VALUES {};",
            values.join(", ")
        ))
        .await;
        let (_dir, lake) = lake();
        let body = format!(
            "commit_rows: 30\ntables:\n  - name: ledger\n    mode: incremental\n    cursor: seq\n    \
             query: SELECT seq, amount FROM {} WHERE seq % 2 = 0;\n  \
             - name: wrong\n    mode: incremental\n    cursor: nope\n    query: SELECT seq FROM {}\n",
            db.table_ref("ledger"),
            db.table_ref("ledger"),
        );
        let source = build_source(&db.source("rel", &body), ".".as_ref()).unwrap();
        let r1 = source.ingest("ledger", &cx(&lake, "run-1")).await.unwrap();
        assert_eq!((r1.rows_written, r1.commits), (50, 2), "{kind}");
        assert_eq!(r1.watermark, Some(json!(100)), "{kind}");
        let more: Vec<String> = (101..=110).map(|g| format!("({g}, {})", g * 10)).collect();
        db.exec(&format!("INSERT INTO ledger VALUES {};", more.join(", ")))
            .await;
        let r2 = source.ingest("ledger", &cx(&lake, "run-2")).await.unwrap();
        assert_eq!(r2.rows_written, 5, "{kind}");
        assert_eq!(r2.watermark, Some(json!(110)), "{kind}");
        let id = TableId::bronze("rel", "ledger");
        let sum = query(&lake, &id, "SELECT count(*), sum(amount) FROM t").await;
        // Even numbers 2..=110: 55 of them, summing to 10 * 55 * 56.
        assert_eq!(sum, [["55", "30800"]], "{kind}");
        // A cursor the result does not have is an error naming the columns there are.
        let err = source
            .ingest("wrong", &cx(&lake, "run-3"))
            .await
            .unwrap_err();
        assert!(!err.is_transient(), "{kind}: {err}");
        let msg = err.to_string();
        assert!(
            msg.contains("cursor column `nope` is not in"),
            "{kind}: {msg}"
        );
        assert!(msg.contains("(columns: seq)"), "{kind}: {msg}");
    }
}

#[tokio::test]
async fn invalid_files_name_the_field_alike() {
    for db in each("config").await {
        let kind = db.kind();
        let err = |body: &str| match build_source(&db.source("rel", body), ".".as_ref()) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{kind}: `{body}` builds"),
        };
        let e = err("tables:\n  - name: a\n    mode: incremental\n");
        assert!(
            e.contains("tables[0].cursor") && e.contains("needs a `cursor`"),
            "{kind}: {e}"
        );
        let e = err("tables:\n  - name: a\n    query: \" \"\n");
        assert!(
            e.contains("tables[0].query") && e.contains("the query is empty"),
            "{kind}: {e}"
        );
        let e = err("batch_size: 0\ntables: []\n");
        assert!(
            e.contains("batch_size") && e.contains("at least 1"),
            "{kind}: {e}"
        );
        let e = err("tables:\n  - name: a\n    cursr: id\n");
        assert!(
            e.contains("unknown field `cursr` (did you mean `cursor`?)"),
            "{kind}: {e}"
        );
        let e = err("tables:\n  - name: a\n    mode: incremntal\n");
        assert!(e.contains("did you mean `incremental`"), "{kind}: {e}");
        let source =
            build_source(&db.source("rel", "tables:\n  - name: a\n"), ".".as_ref()).unwrap();
        assert_eq!(source.kind(), kind);
        assert_eq!(source.tables(), ["a"]);
        let (_dir, lake) = lake();
        let unknown = source.ingest("b", &cx(&lake, "run-1")).await.unwrap_err();
        assert!(
            matches!(unknown, IngestError::UnknownTable { .. }),
            "{kind}: {unknown}"
        );
    }
}
