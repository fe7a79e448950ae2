//! `kind: mysql` against a real MySQL / MariaDB server: its type mapping, quarantined values and
//! error classification. What every relational connector does alike (incremental chunks and
//! watermarks, full snapshots, `query:`, config errors) is in `relational.rs`.
//!
//! The server comes from `SLUICE_TEST_MYSQL_URL` (default `mysql://root@127.0.0.1:3306/test`). Each
//! test works in its own freshly created database, dropped when the test ends. When the server
//! cannot be reached the tests fail under `CI=true` and are skipped (with a message) otherwise.

mod support;

use arrow::datatypes::{DataType, TimeUnit};
use sluice_core::SourceDecl;
use sluice_ingest::{IngestContext, IngestError, build_source};
use sluice_lake::TableId;
use support::databases::{Driver, TestDb, open};
use support::lake::{lake, query};

async fn test_db(test: &str) -> Option<TestDb> {
    open(Driver::Mysql, test).await
}

const ALL_TYPES: &str = "
    CREATE TABLE all_types (
        id int PRIMARY KEY,
        ti tinyint, tu tinyint unsigned, si smallint, su smallint unsigned, mi mediumint,
        mu mediumint unsigned, i int, iu int unsigned, bi bigint, bu bigint unsigned,
        n decimal(12,3), nu decimal(10,0) unsigned, nbig decimal(65,30), f float, d double,
        vc varchar(20), ch char(5), tx text, dt date, dtm datetime(6), ts timestamp(6) NULL,
        tm time(6), yr year, js json, bl blob, vb varbinary(8),
        e enum('sad','ok','happy'), st set('a','b','c'), b1 bit(1), b12 bit(12), ok bool
    );
    INSERT INTO all_types VALUES (
        1, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295,
        -9223372036854775808, 18446744073709551615,
        123456789.125, 9999999999, -12345678901234567890.123456789012345678901234567890,
        1.5, -2.25e-300,
        'héllo ✓', 'ab', 'long text', '2024-02-29', '2024-05-01 12:34:56.123456',
        '2024-05-01 10:34:56.500000', '-838:59:59.000000', 2024, '{\"b\": [1, 2], \"a\": null}',
        X'DEADBEEF00', X'0102', 'happy', 'a,c', b'1', b'101010101010', true
    );
    INSERT INTO all_types (id) VALUES (2);
";

#[tokio::test]
async fn every_supported_type_lands_faithfully() {
    let Some(mut db) = test_db("types").await else {
        return;
    };
    db.exec(ALL_TYPES).await;
    let (_dir, lake) = lake();
    let source = build_source(
        &db.source("my", "tables:\n  - name: all_types\n"),
        ".".as_ref(),
    )
    .unwrap();
    let report = source
        .ingest("all_types", &IngestContext::new(lake.clone(), "run-1"))
        .await
        .unwrap();
    assert_eq!(
        (
            report.rows_read,
            report.rows_written,
            report.rows_quarantined
        ),
        (2, 2, 0)
    );

    let id = TableId::bronze("my", "all_types");
    let table = lake.load(&id).await.unwrap().unwrap();
    let stored = sluice_lake::arrow_schema(&table).unwrap();
    let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let expected_types = [
        ("id", DataType::Int32),
        ("ti", DataType::Int8),
        ("tu", DataType::Int16),
        ("si", DataType::Int16),
        ("su", DataType::Int32),
        ("mi", DataType::Int32),
        ("mu", DataType::Int32),
        ("i", DataType::Int32),
        ("iu", DataType::Int64),
        ("bi", DataType::Int64),
        ("bu", DataType::Decimal128(20, 0)),
        ("n", DataType::Decimal128(12, 3)),
        ("nu", DataType::Decimal128(10, 0)),
        ("nbig", DataType::Utf8),
        ("f", DataType::Float32),
        ("d", DataType::Float64),
        ("vc", DataType::Utf8),
        ("ch", DataType::Utf8),
        ("tx", DataType::Utf8),
        ("dt", DataType::Date32),
        ("dtm", DataType::Timestamp(TimeUnit::Microsecond, None)),
        ("ts", utc),
        ("tm", DataType::Utf8),
        ("yr", DataType::Int16),
        ("js", DataType::Utf8),
        ("bl", DataType::Binary),
        ("vb", DataType::Binary),
        ("e", DataType::Utf8),
        ("st", DataType::Utf8),
        ("b1", DataType::Boolean),
        ("b12", DataType::Int64),
        ("ok", DataType::Boolean),
    ];
    for (c, t) in &expected_types {
        assert_eq!(
            stored.field_with_name(c).unwrap().data_type(),
            t,
            "column {c}"
        );
    }
    let names: Vec<&str> = expected_types.iter().map(|(c, _)| *c).collect();
    let got = query(
        &lake,
        &id,
        &format!("SELECT {} FROM t ORDER BY id", names.join(", ")),
    )
    .await;
    let expected = [
        "1",
        "-128",
        "255",
        "-32768",
        "65535",
        "-8388608",
        "16777215",
        "-2147483648",
        "4294967295",
        "-9223372036854775808",
        "18446744073709551615",
        "123456789.125",
        "9999999999",
        "-12345678901234567890.123456789012345678901234567890",
        "1.5",
        "-2.25e-300",
        "héllo ✓",
        "ab",
        "long text",
        "2024-02-29",
        "2024-05-01T12:34:56.123456",
        "2024-05-01T10:34:56.500Z",
        "-838:59:59",
        "2024",
        r#"{"b": [1, 2], "a": null}"#,
        "deadbeef00",
        "0102",
        "happy",
        "a,c",
        "true",
        "2730",
        "true",
    ];
    for ((c, want), have) in names.iter().zip(expected).zip(&got[0]) {
        assert_eq!(have, want, "column {c}");
    }
    // Row 2: every column but the key NULL.
    assert!(got[1][1..].iter().all(|v| v == "NULL"), "{:?}", got[1]);
}

#[tokio::test]
async fn values_without_an_arrow_form_go_to_quarantine() {
    let Some(mut db) = test_db("quarantine").await else {
        return;
    };
    db.exec(
        "CREATE TABLE q (id int, flag tinyint(1), d date, dtm datetime);
         INSERT INTO q VALUES (1, 1, '2024-01-01', '2024-01-01 00:00:00'),
                              (2, 7, '2024-01-01', NULL),
                              (3, 0, '0000-00-00', NULL),
                              (4, 0, '2024-01-01', '2024-00-10 00:00:00');",
    )
    .await;
    let (_dir, lake) = lake();
    let source = build_source(&db.source("my", "tables:\n  - name: q\n"), ".".as_ref()).unwrap();
    let report = source
        .ingest("q", &IngestContext::new(lake.clone(), "run-1"))
        .await
        .unwrap();
    assert_eq!(
        (
            report.rows_read,
            report.rows_written,
            report.rows_quarantined
        ),
        (4, 1, 3)
    );
    let got = query(
        &lake,
        &TableId::quarantine("my.q"),
        "SELECT line, reason, raw FROM t ORDER BY line",
    )
    .await;
    let reasons: Vec<(&str, &str)> = got.iter().map(|r| (r[0].as_str(), r[1].as_str())).collect();
    assert_eq!(
        reasons,
        [
            (
                "2",
                "row 2: column `flag`: 7 is not a boolean (0 or 1); cast it in `query:`"
            ),
            (
                "3",
                "row 3: column `d`: `0000-00-00 00:00:00.000000` is not a calendar date and has no Arrow value"
            ),
            (
                "4",
                "row 4: column `dtm`: `2024-00-10 00:00:00.000000` is not a calendar date and has no Arrow value"
            ),
        ]
    );
    let raw: serde_json::Value = serde_json::from_str(&got[0][2]).unwrap();
    assert_eq!(raw["flag"], 7);
    assert_eq!(raw["id"], 2);
}

#[tokio::test]
async fn unsupported_type_is_a_clear_error_and_query_can_cast_it() {
    let Some(mut db) = test_db("unsupported").await else {
        return;
    };
    db.exec(
        "CREATE TABLE places (id int, spot point); INSERT INTO places VALUES (1, POINT(1, 2));",
    )
    .await;
    let (_dir, lake) = lake();
    let cx = IngestContext::new(lake.clone(), "run-1");
    let source = build_source(
        &db.source("my", "tables:\n  - name: places\n"),
        ".".as_ref(),
    )
    .unwrap();
    let err = source.ingest("places", &cx).await.unwrap_err();
    assert!(!err.is_transient());
    assert_eq!(
        err.to_string(),
        format!(
            "mysql source `my`: table `{}.places`: column `spot` has type `geometry`, which is not \
             supported; cast it in `query:` (e.g. CAST(`spot` AS CHAR) AS `spot`)",
            db.name
        )
    );
    let cast = db.source(
        "my",
        "tables:\n  - name: places\n    query: SELECT id, ST_AsText(spot) AS spot FROM places;\n",
    );
    let report = build_source(&cast, ".".as_ref())
        .unwrap()
        .ingest("places", &cx)
        .await
        .unwrap();
    assert_eq!(report.rows_written, 1);
    let got = query(
        &lake,
        &TableId::bronze("my", "places"),
        "SELECT spot FROM t",
    )
    .await;
    assert_eq!(got, [["POINT(1 2)"]]);
}

#[tokio::test]
async fn incremental_by_unsigned_and_decimal_cursors() {
    let Some(mut db) = test_db("numcursor").await else {
        return;
    };
    db.exec(
        "CREATE TABLE big (id bigint unsigned PRIMARY KEY, v int);
         INSERT INTO big VALUES (18446744073709551613, 1), (18446744073709551614, 2);
         CREATE TABLE ledger (seq decimal(20,2), amount int);
         INSERT INTO ledger VALUES (0.25, 1), (0.50, 2), (0.75, 3);",
    )
    .await;
    let (_dir, lake) = lake();
    let decl = db.source(
        "my",
        "tables:\n  - name: big\n    mode: incremental\n    cursor: id\n  \
         - name: ledger\n    mode: incremental\n    cursor: seq\n",
    );
    let source = build_source(&decl, ".".as_ref()).unwrap();
    let cx = IngestContext::new(lake.clone(), "run-1");
    assert_eq!(
        source.ingest("big", &cx).await.unwrap().watermark,
        Some(serde_json::json!(18446744073709551614u64))
    );
    assert_eq!(
        source.ingest("ledger", &cx).await.unwrap().watermark,
        Some(serde_json::json!("0.75"))
    );
    db.exec("INSERT INTO big VALUES (18446744073709551615, 3), (5, 0); INSERT INTO ledger VALUES (0.76, 4), (0.7, 0);")
        .await;
    let cx = IngestContext::new(lake.clone(), "run-2");
    assert_eq!(source.ingest("big", &cx).await.unwrap().rows_written, 1);
    assert_eq!(source.ingest("ledger", &cx).await.unwrap().rows_written, 1);
    let got = query(
        &lake,
        &TableId::bronze("my", "big"),
        "SELECT sum(v), max(id) FROM t",
    )
    .await;
    assert_eq!(got, [["6", "18446744073709551615"]]);
    let got = query(
        &lake,
        &TableId::bronze("my", "ledger"),
        "SELECT sum(amount) FROM t",
    )
    .await;
    assert_eq!(got, [["10"]]);
}

#[tokio::test]
async fn connection_failures_are_transient_and_sql_errors_are_not() {
    let Some(db) = test_db("errors").await else {
        return;
    };
    let (_dir, lake) = lake();
    let cx = IngestContext::new(lake.clone(), "run-1");
    let refused = SourceDecl::parse(
        std::path::Path::new("sources/down.yml"),
        "kind: mysql\nconnection: mysql://root@127.0.0.1:1/test\ntables:\n  - name: t\n",
    )
    .unwrap();
    let err = build_source(&refused, ".".as_ref())
        .unwrap()
        .ingest("t", &cx)
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("cannot connect"), "{err}");
    let missing = build_source(&db.source("my", "tables:\n  - name: nope\n"), ".".as_ref())
        .unwrap()
        .ingest("nope", &cx)
        .await
        .unwrap_err();
    assert!(!missing.is_transient(), "{missing}");
    assert!(missing.to_string().contains("ERROR 1146"), "{missing}");
    let bad = SourceDecl::parse(
        std::path::Path::new("sources/bad.yml"),
        "kind: mysql\nconnection: \"postgres://u:hunter2@h/db\"\ntables: []\n",
    )
    .unwrap();
    let err = build_source(&bad, ".".as_ref()).err().unwrap();
    assert!(matches!(err, IngestError::Config(_)), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}
