use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use sluice_lake::WriteSpec;

use super::*;
use crate::Engine;

async fn append(lake: &Lake, id: &TableId, values: &[i64]) {
    let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
    let batch =
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(values.to_vec()))]).unwrap();
    lake.write(id, vec![batch], &WriteSpec::append())
        .await
        .unwrap();
}

/// `silver.events` at versions 0 ([1, 2]), 1 (+ [3]) and 2 (+ [4]).
async fn engine() -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let id = TableId::silver("events");
    append(&lake, &id, &[1, 2]).await;
    append(&lake, &id, &[3]).await;
    append(&lake, &id, &[4]).await;
    let engine = Engine::open(&lake, None).await.unwrap();
    (dir, engine)
}

/// The first column of the result, as integers.
async fn column(engine: &Engine, sql: &str) -> Vec<i64> {
    let batches = engine.query(sql).await.unwrap();
    batches
        .iter()
        .flat_map(|b| {
            let c = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            c.values().to_vec()
        })
        .collect()
}

async fn error(engine: &Engine, sql: &str) -> String {
    engine.query(sql).await.unwrap_err().to_string()
}

#[tokio::test]
async fn version_as_of_reads_that_version() {
    let (_dir, engine) = engine().await;
    let sql = "SELECT count(*) FROM silver.events VERSION AS OF 0";
    assert_eq!(column(&engine, sql).await, [2]);
    let sql = "select id from SILVER.EVENTS version as of 1 order by id";
    assert_eq!(column(&engine, sql).await, [1, 2, 3]);
    // The latest is still what an unversioned name reads.
    assert_eq!(
        column(&engine, "SELECT count(*) FROM silver.events").await,
        [4]
    );
}

#[tokio::test]
async fn versions_mix_in_joins_subqueries_and_qualified_columns() {
    let (_dir, engine) = engine().await;
    // Rows added since version 0: the table's name still qualifies its columns.
    let sql = "SELECT events.id FROM silver.events \
               WHERE events.id NOT IN (SELECT old.id FROM silver.events VERSION AS OF 0 AS old) \
               ORDER BY 1";
    assert_eq!(column(&engine, sql).await, [3, 4]);
    let sql = "WITH a AS (SELECT id FROM sluice.silver.events VERSION AS OF 1), \
               b AS (SELECT id FROM silver.events VERSION AS OF 0) \
               SELECT count(*) FROM a JOIN b ON a.id = b.id";
    assert_eq!(column(&engine, sql).await, [2]);
    let sql = "SELECT events.id FROM silver.events VERSION AS OF 0 ORDER BY events.id";
    assert_eq!(column(&engine, sql).await, [1, 2]);
}

#[tokio::test]
async fn timestamp_as_of_reads_the_version_current_then() {
    let (_dir, engine) = engine().await;
    let id = TableId::silver("events");
    let versions = engine.lake().versions(&id).await.unwrap();
    let at = versions[2].timestamp.unwrap();
    let text = at.format("%Y-%m-%d %H:%M:%S%.3f").to_string();
    let expected = engine.lake().version_at(&id, at).await.unwrap();
    let rows = [2, 3, 4][usize::try_from(expected).unwrap()];
    for clause in ["TIMESTAMP AS OF", "FOR SYSTEM_TIME AS OF"] {
        let sql = format!("SELECT count(*) FROM silver.events {clause} '{text}'");
        assert_eq!(column(&engine, &sql).await, [rows], "{sql}");
    }
    let sql = format!("SELECT count(*) FROM silver.events TIMESTAMP AS OF TIMESTAMP '{text}'");
    assert_eq!(column(&engine, &sql).await, [rows]);
}

#[tokio::test]
async fn unknown_versions_times_and_tables_are_clear_errors() {
    let (_dir, engine) = engine().await;
    let e = error(&engine, "SELECT * FROM silver.events VERSION AS OF 9").await;
    assert!(e.contains("silver.events VERSION AS OF 9"), "{e}");
    assert!(e.contains("there is no version 9"), "{e}");
    assert!(e.contains("versions 0 to 2"), "{e}");

    let e = error(
        &engine,
        "SELECT * FROM silver.events TIMESTAMP AS OF '2001-01-01 00:00'",
    )
    .await;
    assert!(e.contains("no version was committed at or before"), "{e}");
    assert!(e.contains("first kept version is 0"), "{e}");

    let e = error(
        &engine,
        "SELECT * FROM silver.events TIMESTAMP AS OF 'soon'",
    )
    .await;
    assert!(e.contains("`soon` is not a timestamp"), "{e}");

    let e = error(&engine, "SELECT * FROM gold.nothing VERSION AS OF 1").await;
    assert!(
        e.contains("`gold.nothing` is not a table of the lake"),
        "{e}"
    );
}

#[tokio::test]
async fn statements_without_versions_pass_through_untouched() {
    let (_dir, engine) = engine().await;
    for sql in [
        "SELECT 1",
        "SELECT id AS of FROM silver.events",
        "SELECT 'VERSION AS OF 3' AS t",
        "not sql at all AS OF",
    ] {
        let out = engine.time_travel(sql).await.unwrap();
        assert!(matches!(out, Cow::Borrowed(_)), "{sql} became {out}");
    }
}

#[tokio::test]
async fn the_rewrite_names_a_hidden_schema_that_lists_nothing() {
    let (_dir, engine) = engine().await;
    let out = engine
        .time_travel("SELECT * FROM silver.events VERSION AS OF 1 e")
        .await
        .unwrap();
    assert_eq!(out, "SELECT * FROM \"_time_travel\".\"silver.events@1\" e");
    let listed = engine
        .query("SELECT count(*) FROM information_schema.tables WHERE table_schema = '_time_travel'")
        .await
        .unwrap();
    assert_eq!(listed[0].num_rows(), 1);
    let count = listed[0]
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .value(0);
    assert_eq!(count, 0);
}

#[test]
fn the_versioned_dialect_parses_what_the_generic_one_does() {
    let sql = "SELECT a::INT, b[1], {'k': 1} AS m, * EXCLUDE (c) FROM t \
               LEFT JOIN u USING (id) WHERE x ILIKE 'a%' QUALIFY row_number() OVER (w) = 1 \
               WINDOW w AS (PARTITION BY a ORDER BY b) LIMIT 10";
    let generic = Parser::parse_sql(&GenericDialect, sql).unwrap();
    let versioned = Parser::parse_sql(&VersionedGeneric, sql).unwrap();
    assert_eq!(generic, versioned);
}
