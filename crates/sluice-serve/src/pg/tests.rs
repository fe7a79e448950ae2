//! Tests of the PostgreSQL endpoint: statement classification, the served catalog, and a real
//! `tokio-postgres` client against an in-process server (both protocols, a refused write, shutdown).

use datafusion_postgres::datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use super::read_only::{Verdict, classify};
use super::*;
use crate::test_support::Served;

fn verdict(sql: &str) -> Verdict {
    let mut stmts = PostgresCompatibilityParser::new().parse(sql).unwrap();
    assert_eq!(stmts.len(), 1, "{sql}");
    classify(&stmts.remove(0))
}

fn refused_code(sql: &str) -> &'static str {
    match verdict(sql) {
        Verdict::Refuse(r) => r.code,
        other => panic!("`{sql}` was not refused: {other:?}"),
    }
}

#[test]
fn writes_ddl_copy_and_server_settings_are_refused_as_read_only() {
    for sql in [
        "INSERT INTO gold.by_region VALUES ('x', 1.0)",
        "UPDATE gold.by_region SET revenue = 0",
        "DELETE FROM gold.by_region",
        "CREATE TABLE gold.t (a int)",
        "CREATE TABLE t AS SELECT 1",
        "DROP TABLE gold.by_region",
        "ALTER TABLE gold.by_region ADD COLUMN x int",
        "TRUNCATE gold.by_region",
        "COPY gold.by_region TO '/tmp/out.csv'",
        "COPY (SELECT 1) TO '/tmp/out.csv'",
        "COPY gold.by_region FROM '/tmp/in.csv'",
        "SET datafusion.execution.batch_size = 1",
        "SELECT * INTO gold.copy FROM gold.by_region",
        "GRANT SELECT ON gold.by_region TO bob",
    ] {
        assert_eq!(refused_code(sql), "25006", "{sql}");
    }
    assert_eq!(refused_code("PREPARE p AS SELECT 1"), "0A000");
    assert_eq!(refused_code("COPY gold.by_region TO STDOUT"), "0A000");
}

#[test]
fn refusals_name_the_command() {
    let Verdict::Refuse(r) = verdict("DROP TABLE IF EXISTS gold.by_region") else {
        panic!("not refused");
    };
    assert!(
        r.message.starts_with("cannot execute DROP TABLE"),
        "{}",
        r.message
    );
    let Verdict::Refuse(r) = verdict("SET datafusion.execution.batch_size = 1") else {
        panic!("not refused");
    };
    assert!(
        r.message.contains("datafusion.execution.batch_size"),
        "{}",
        r.message
    );
}

#[test]
fn queries_are_planned_and_client_settings_pass() {
    assert!(matches!(verdict("SELECT 1"), Verdict::Plan(_)));
    assert!(matches!(
        verdict("WITH x AS (SELECT 1 AS a) SELECT a FROM x"),
        Verdict::Plan(_)
    ));
    assert!(matches!(verdict("EXPLAIN SELECT 1"), Verdict::Plan(_)));
    assert!(matches!(verdict("SHOW TABLES"), Verdict::Plan(_)));
    // The cursor's query is what gets planned, not the DECLARE.
    match verdict("DECLARE c CURSOR FOR SELECT 1") {
        Verdict::Plan(stmts) => assert_eq!(stmts[0].to_string(), "SELECT 1"),
        other => panic!("{other:?}"),
    }
    for sql in [
        "SET application_name = 'grafana'",
        "SET statement_timeout = 1000",
        "SET TIME ZONE 'UTC'",
        "SHOW server_version",
        "BEGIN",
        "COMMIT",
    ] {
        assert_eq!(verdict(sql), Verdict::Handled, "{sql}");
    }
    for sql in [
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
        "SET client_encoding = 'UTF8'",
        "SET timezone = 'UTC'",
        "DISCARD ALL",
    ] {
        assert!(matches!(verdict(sql), Verdict::Ignore(_)), "{sql}");
    }
}

#[tokio::test]
async fn the_wire_session_serves_the_published_layers_read_only() {
    let served = Served::new().await;
    let ctx = catalog::session_for(&served.state.engine, None).unwrap();
    let cat = ctx.catalog(CATALOG).unwrap();
    let mut names = cat.schema_names();
    names.sort();
    assert_eq!(
        names,
        // information_schema: PostgreSQL's shape, for clients (pg/information_schema.rs).
        [
            "bronze",
            "gold",
            "information_schema",
            "pg_catalog",
            "quarantine",
            "silver"
        ],
        "staging must not be served"
    );
    let gold = cat.schema("gold").unwrap();
    assert!(gold.table_exist("by_region"));
    assert!(gold.deregister_table("by_region").is_err());
    assert!(cat.schema("gold").unwrap().table_exist("by_region"));
    // pg_catalog lives in the wire session only.
    assert!(
        served
            .state
            .engine
            .context()
            .catalog(CATALOG)
            .unwrap()
            .schema("pg_catalog")
            .is_none()
    );
    let batches = ctx
        .sql("SELECT nspname FROM pg_catalog.pg_namespace ORDER BY nspname")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let text = sluice_transform::pretty(&batches);
    assert!(text.contains("gold") && text.contains("bronze"), "{text}");
    assert!(!text.contains("staging"), "{text}");
}

async fn connect(addr: SocketAddr) -> tokio_postgres::Client {
    let url = format!(
        "host={} port={} user=tester dbname=sluice",
        addr.ip(),
        addr.port()
    );
    let (client, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

#[tokio::test]
async fn a_postgres_driver_queries_prepares_is_refused_and_goes_on() {
    let served = Served::new().await;
    let server = PgServer::bind(&served.state.engine, "127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr();
    let handle = server.spawn();
    let client = connect(addr).await;

    // Simple protocol.
    let rows = client
        .simple_query("SELECT count(*) AS n FROM bronze.files__sales")
        .await
        .unwrap();
    let n = rows
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .unwrap();
    assert_eq!(n, crate::test_support::SALES_ROWS.to_string());

    // Extended protocol with a parameter.
    let stmt = client
        .prepare("SELECT region, revenue FROM gold.by_region WHERE revenue > $1 ORDER BY revenue")
        .await
        .unwrap();
    let rows = client.query(&stmt, &[&10.0_f64]).await.unwrap();
    let got: Vec<(String, f64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        got,
        [("north".to_string(), 15.0), ("south".to_string(), 20.0)]
    );

    // A refused write is an error with SQLSTATE 25006, and the connection goes on.
    for sql in [
        "DELETE FROM gold.by_region",
        "CREATE TABLE gold.x AS SELECT 1",
    ] {
        let err = client.execute(sql, &[]).await.unwrap_err();
        assert_eq!(
            err.code(),
            Some(&SqlState::READ_ONLY_SQL_TRANSACTION),
            "{sql}: {err}"
        );
        let err = client.simple_query(sql).await.unwrap_err();
        assert_eq!(
            err.code(),
            Some(&SqlState::READ_ONLY_SQL_TRANSACTION),
            "{sql}: {err}"
        );
    }
    let row = client
        .query_one("SELECT count(*) FROM gold.by_region", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 3, "the table is untouched");

    // The endpoint says it is read-only, in both protocols.
    let row = client
        .query_one("SHOW transaction_read_only", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "on");
    let shown = client.simple_query("SHOW timezone").await.unwrap();
    assert!(
        shown.iter().any(|m| matches!(m,
            tokio_postgres::SimpleQueryMessage::Row(r) if r.get(0) == Some("UTC"))),
        "SHOW timezone did not answer UTC"
    );

    // Client mistakes carry specific SQLSTATEs rather than XX000.
    let err = client
        .simple_query("SELECT * FROM gold.nope")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::UNDEFINED_TABLE), "{err}");
    let err = client
        .simple_query("SELECT nope FROM gold.by_region")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::UNDEFINED_COLUMN), "{err}");

    // Shutdown closes the session and stops accepting.
    handle.stop().await.unwrap();
    assert!(client.simple_query("SELECT 1").await.is_err());
    let refused = tokio_postgres::connect(
        &format!("host={} port={} user=t", addr.ip(), addr.port()),
        NoTls,
    )
    .await;
    assert!(refused.is_err(), "still accepting after shutdown");
}

#[tokio::test]
async fn a_taken_address_is_a_clear_error() {
    let served = Served::new().await;
    let first = PgServer::bind(&served.state.engine, "127.0.0.1:0")
        .await
        .unwrap();
    let addr = first.local_addr().to_string();
    let err = PgServer::bind(&served.state.engine, &addr)
        .await
        .unwrap_err();
    assert!(matches!(err, PgError::Bind { .. }), "{err}");
    assert!(err.to_string().contains(&addr), "{err}");
}

#[tokio::test]
async fn shutdown_tells_idle_sessions_why() {
    let served = Served::new().await;
    let server = PgServer::bind(&served.state.engine, "127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr();
    let handle = server.spawn();
    let url = format!(
        "host={} port={} user=tester dbname=sluice",
        addr.ip(),
        addr.port()
    );
    let (client, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    let connection = tokio::spawn(connection);
    client.simple_query("SELECT 1").await.unwrap();
    handle.stop().await.unwrap();
    let ended = connection.await.unwrap();
    let err = ended.expect_err("the server closed the session");
    assert_eq!(err.code(), Some(&SqlState::ADMIN_SHUTDOWN), "{err:?}");
    assert!(client.simple_query("SELECT 1").await.is_err());
}

#[tokio::test]
async fn show_tables_columns_and_the_current_schema_answer() {
    let served = Served::new().await;
    let server = PgServer::bind(&served.state.engine, "127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr();
    let handle = server.spawn();
    let client = connect(addr).await;
    let rows = |messages: Vec<tokio_postgres::SimpleQueryMessage>| -> Vec<Vec<String>> {
        messages
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                    (0..r.len())
                        .map(|i| r.get(i).unwrap_or("NULL").to_string())
                        .collect(),
                ),
                _ => None,
            })
            .collect()
    };
    let tables = rows(client.simple_query("SHOW TABLES").await.unwrap());
    assert!(
        tables
            .iter()
            .any(|r| r[1..] == ["gold", "by_region", "BASE TABLE"]),
        "{tables:?}"
    );
    assert!(!tables.iter().any(|r| r[1] == "staging"), "{tables:?}");
    // Unqualified: the table unqualified queries read, in `gold`.
    let columns = rows(
        client
            .simple_query("SHOW COLUMNS FROM by_region")
            .await
            .unwrap(),
    );
    assert_eq!(
        columns
            .iter()
            .map(|r| (r[1].as_str(), r[3].as_str(), r[4].as_str()))
            .collect::<Vec<_>>(),
        [
            ("gold", "region", "text"),
            ("gold", "revenue", "double precision")
        ],
        "{columns:?}"
    );
    let err = client
        .simple_query("SHOW COLUMNS FROM gold.nope")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::UNDEFINED_TABLE), "{err}");

    // current_schema(), search_path and regclass agree with where unqualified names resolve.
    let row = client
        .query_one(
            "SELECT current_schema(), current_setting('search_path'), \
             'by_region'::regclass::oid = (SELECT c.oid FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'gold' AND c.relname = 'by_region')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "gold");
    assert_eq!(row.get::<_, String>(1), "\"$user\", gold");
    assert!(row.get::<_, bool>(2));
    let shown = rows(client.simple_query("SHOW search_path").await.unwrap());
    assert_eq!(shown, [["\"$user\", gold"]]);
    let n: i64 = client
        .query_one("SELECT count(*) FROM by_region", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 3);
    handle.stop().await.unwrap();
}
