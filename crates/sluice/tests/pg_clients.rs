//! Real PostgreSQL clients against `sluice serve`: SQLAlchemy 2 over psycopg 3 and psycopg2 and pandas
//! (a Python script beside this file, packages from PyPI), pgJDBC's `DatabaseMetaData` (Debian's
//! `libpostgresql-jdbc-java` on the machine's JVM), psql's `\d+`, SQLSTATEs of client mistakes and
//! cancel requests. What they read is compared with `sluice query`.
//!
//! The Python packages live in a venv that `.ci/run` creates (`/var/tmp/sluice-py-clients`, or
//! `SLUICE_PY_CLIENTS`); without it the Python test prints a skip, except under `CI=true` where it
//! fails.

mod common;
mod pg_server;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::query_json;
use pg_server::{Server, project, tool};
use serde_json::Value;
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

/// The venv's interpreter, when its packages are installed.
fn python_clients() -> Option<PathBuf> {
    let venv = std::env::var("SLUICE_PY_CLIENTS").unwrap_or("/var/tmp/sluice-py-clients".into());
    let python = Path::new(&venv).join("bin/python");
    let ready = python.exists()
        && Command::new(&python)
            .args(["-c", "import sqlalchemy, psycopg, psycopg2, pandas"])
            .status()
            .is_ok_and(|s| s.success());
    if ready {
        return Some(python);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "the Python client packages are not installed in {venv}; .ci/run installs them"
    );
    eprintln!("skipping: SQLAlchemy/psycopg/pandas are not installed in {venv} (see .ci/run)");
    None
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/pg_clients")
        .join(name)
}

#[test]
fn sqlalchemy_psycopg_and_pandas_connect_reflect_and_query() {
    let Some(python) = python_clients() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir);
    let server = Server::start(dir);
    let (host, port) = server.host_port();
    let out = Command::new(&python)
        .arg(script("sqlalchemy_clients.py"))
        .args([host, port])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let seen: Value = serde_json::from_str(&stdout).unwrap();

    let expected = query_json(
        dir,
        "SELECT region, revenue, n FROM gold.by_region ORDER BY region",
    );
    let want_rows: Vec<Value> = expected
        .iter()
        .map(|r| serde_json::json!([r["region"], r["revenue"], r["n"]]))
        .collect();
    for driver in ["psycopg", "psycopg2"] {
        let s = &seen[driver];
        let version = s["version"].as_str().unwrap();
        assert!(version.starts_with("PostgreSQL 16.0 (Sluice "), "{version}");
        assert_eq!(
            s["server_version_info"],
            serde_json::json!([16, 0]),
            "{driver}"
        );
        let schemas: Vec<&str> = s["schemas"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for schema in ["bronze", "gold", "information_schema"] {
            assert!(schemas.contains(&schema), "{driver}: {schemas:?}");
        }
        assert!(!schemas.contains(&"staging"), "{driver}: {schemas:?}");
        assert_eq!(s["tables"], serde_json::json!(["by_region"]), "{driver}");
        assert_eq!(s["views"], serde_json::json!(["north_sales"]), "{driver}");
        assert_eq!(s["has_table"], true, "{driver}");
        assert_eq!(s["has_missing_table"], false, "{driver}");
        // Reflected column types are SQLAlchemy's PostgreSQL types for the lake's Arrow types.
        for (column, sa_type) in [
            ("region", "TEXT"),
            ("revenue", "DOUBLE PRECISION"),
            ("n", "BIGINT"),
            ("last_sale", "TIMESTAMP"),
            ("last_day", "DATE"),
            // Precision and scale from atttypmod.
            ("revenue_dec", "NUMERIC(12, 2)"),
            ("ids", "ARRAY"),
        ] {
            assert_eq!(
                s["columns"][column]["type"].as_str(),
                Some(sa_type),
                "{driver}: {column} in {}",
                s["columns"]
            );
        }
        // Where unqualified names resolve.
        assert_eq!(s["default_schema"], "gold", "{driver}");
        // A list of integers is an array of BIGINT; the timestamp has a time zone.
        assert_eq!(s["columns"]["ids"]["item_type"], "BIGINT", "{driver}");
        assert_eq!(s["columns"]["last_sale"]["timezone"], true, "{driver}");
        assert_eq!(s["columns"]["n"]["item_type"], Value::Null, "{driver}");
        assert_eq!(
            s["view_columns"],
            serde_json::json!(["sale_id", "amount"]),
            "{driver}"
        );
        // No primary key, foreign keys or indexes: the queries answer, empty.
        assert_eq!(s["pk"]["constrained_columns"], serde_json::json!([]));
        assert_eq!(s["foreign_keys"], serde_json::json!([]));
        assert_eq!(s["indexes"], serde_json::json!([]));
        assert_eq!(s["comment"]["text"], Value::Null);
        // Core select on the reflected table, pandas read_sql: what `sluice query` returns.
        assert_eq!(s["core_rows"], Value::Array(want_rows.clone()), "{driver}");
        assert_eq!(
            s["pandas_rows"],
            Value::Array(want_rows.clone()),
            "{driver}"
        );
        assert_eq!(
            s["pandas_dtypes"],
            serde_json::json!(["object", "float64", "int64"])
        );
        assert_eq!(
            s["bound_rows"],
            serde_json::json!([["north", 2]]),
            "{driver}"
        );
        assert_eq!(s["pandas_table_rows"], 2, "{driver}");
        assert_eq!(s["pandas_table_columns"].as_array().map(Vec::len), Some(7));
    }
}

#[test]
fn pgjdbc_database_metadata_lists_and_describes_the_lake() {
    let Some(java) = tool("/usr/bin/java", "a JDK (java)") else {
        return;
    };
    let Some(jar) = tool(
        "/usr/share/java/postgresql.jar",
        "libpostgresql-jdbc-java (Debian)",
    ) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir);
    let server = Server::start(dir);
    let url = format!(
        "jdbc:postgresql://{}/sluice?user=analyst&sslmode=disable",
        server.pg
    );
    let out = Command::new(java)
        .args(["-cp", &jar])
        .arg(script("JdbcMeta.java"))
        .args([&url, "gold", "by_region"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let section = |name: &str| -> Vec<&str> {
        stdout
            .split(&format!("== {name}\n"))
            .nth(1)
            .unwrap_or_else(|| panic!("no {name} section:\n{stdout}"))
            .lines()
            .take_while(|l| !l.starts_with("== "))
            .collect()
    };
    assert!(
        section("product")[0].starts_with("16.0 (Sluice "),
        "{stdout}"
    );
    assert!(section("schemas").contains(&"gold"), "{stdout}");
    let tables = section("tables");
    assert!(tables.contains(&"gold.by_region TABLE"), "{stdout}");
    assert!(tables.contains(&"gold.north_sales VIEW"), "{stdout}");
    let columns = section("columns");
    for col in [
        "region text",
        "revenue float8",
        "n int8",
        "last_sale timestamptz",
        "last_day date",
        "revenue_dec numeric",
        "ids _int8",
    ] {
        assert!(columns.contains(&col), "{col} missing:\n{stdout}");
    }
    assert_eq!(section("primary keys"), Vec::<&str>::new(), "{stdout}");
    let expected = query_json(dir, "SELECT count(*) AS c FROM gold.by_region");
    assert_eq!(
        section("count"),
        vec![expected[0]["c"].to_string().as_str()],
        "{stdout}"
    );
    // getTypeInfo: PostgreSQL's types with their java.sql.Types (BIGINT -5, NUMERIC 2, VARCHAR 12,
    // TIMESTAMP 93, ARRAY 2003).
    let types = section("type info");
    for t in [
        "int8 -5",
        "numeric 2",
        "text 12",
        "timestamptz 93",
        "_int8 2003",
    ] {
        assert!(
            types.contains(&t),
            "{t} missing from getTypeInfo:\n{stdout}"
        );
    }
    // A query timeout cancels the running query (57014); the connection goes on.
    assert_eq!(section("cancel"), ["57014", "after cancel 1"], "{stdout}");
}

/// psql's `\dt`, `\dv`, `\dn`, `\d` and `\d+`.
#[test]
fn psql_lists_and_describes() {
    let Some(psql) = tool("/usr/bin/psql", "postgresql-client") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir);
    let server = Server::start(dir);
    let (host, port) = server.host_port();
    let out = Command::new(psql)
        .args(["-X", "-w", "-h", host, "-p", port, "-d", "sluice"])
        .args(["-v", "ON_ERROR_STOP=1"])
        .args(["-c", r"\dt gold.*", "-c", r"\dv gold.*", "-c", r"\dn"])
        .args([
            "-c",
            r"\d+ gold.by_region",
            "-c",
            r"\d+",
            "-c",
            r"\d+ gold.north_sales",
        ])
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "psql failed:\n{stdout}\n{stderr}");
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .map(|l| l.split('|').map(str::trim).collect())
        .collect();
    let has = |cells: &[&str]| {
        rows.iter()
            .any(|r| r.len() >= cells.len() && r[..cells.len()] == *cells)
    };
    assert!(has(&["gold", "by_region", "table"]), "\\dt:\n{stdout}");
    assert!(has(&["gold", "north_sales", "view"]), "\\dv:\n{stdout}");
    assert!(has(&["gold"]) && has(&["bronze"]), "\\dn:\n{stdout}");
    assert!(
        stdout.contains("Table \"gold.by_region\""),
        "\\d+:\n{stdout}"
    );
    assert!(
        stdout.contains("View \"gold.north_sales\""),
        "\\d+:\n{stdout}"
    );
    assert!(has(&["sale_id"]), "\\d+ of the view:\n{stdout}");
    // `\d+` without a pattern: the relations on the search path (`gold`), with size and
    // description columns.
    assert!(has(&["gold", "by_region", "table"]), "\\d+:\n{stdout}");
    assert!(stdout.contains("Size"), "\\d+:\n{stdout}");
    for (column, pg_type) in [
        ("region", "text"),
        ("revenue", "double precision"),
        ("n", "bigint"),
        ("last_sale", "timestamp with time zone"),
        ("last_day", "date"),
        ("revenue_dec", "numeric(12,2)"),
        ("ids", "bigint[]"),
    ] {
        assert!(
            has(&[column, pg_type]),
            "\\d+ lacks {column} {pg_type}:\n{stdout}"
        );
    }
}

/// Client mistakes carry PostgreSQL's SQLSTATEs, in the simple and the extended protocol, and the
/// connection goes on.
#[tokio::test(flavor = "multi_thread")]
async fn client_mistakes_carry_postgresql_sqlstates() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir);
    let server = Server::start(dir);
    let client = server.client().await;
    for (sql, code) in [
        (
            "SELECT * FROM gold.no_such_table",
            SqlState::UNDEFINED_TABLE,
        ),
        (
            "SELECT no_such_column FROM gold.by_region",
            SqlState::UNDEFINED_COLUMN,
        ),
        ("SELEC region FROM gold.by_region", SqlState::SYNTAX_ERROR),
        ("SELECT no_such_function(1)", SqlState::UNDEFINED_FUNCTION),
        (
            "DELETE FROM gold.by_region",
            SqlState::READ_ONLY_SQL_TRANSACTION,
        ),
        ("SELECT 1 / 0", SqlState::DIVISION_BY_ZERO),
    ] {
        let e = client.simple_query(sql).await.unwrap_err();
        assert_eq!(e.code(), Some(&code), "simple {sql}: {e:?}");
        let e = client.query(sql, &[]).await.unwrap_err();
        assert_eq!(e.code(), Some(&code), "extended {sql}: {e:?}");
    }
    let n: i64 = client
        .query_one("SELECT count(*) FROM gold.by_region", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
}

/// A query that runs until it is stopped.
const ENDLESS: &str = "select sum(a.v * b.v) from generate_series(1, 200000) as a(v) \
                       cross join generate_series(1, 200000) as b(v)";

/// A cancel request stops a running query: from tokio-postgres over the extended protocol (a
/// prepared statement, the path JDBC and psycopg 3 take), and from psql on Ctrl-C.
#[tokio::test(flavor = "multi_thread")]
async fn cancel_requests_stop_running_queries() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir);
    let server = std::sync::Arc::new(Server::start(dir));
    let client = server.client().await;
    let cancel = client.cancel_token();
    let watcher = server.clone();
    let canceller = tokio::task::spawn_blocking(move || {
        watcher.wait_running(1, Duration::from_secs(30));
    });
    let query = tokio::spawn(async move {
        let stmt = client.prepare(ENDLESS).await?;
        client.query(&stmt, &[]).await.map(|_| client)
    });
    canceller.await.unwrap();
    cancel.cancel_query(NoTls).await.unwrap();
    let e = query.await.unwrap().expect_err("the query was cancelled");
    assert_eq!(e.code(), Some(&SqlState::QUERY_CANCELED), "{e:?}");
    let server2 = server.clone();
    tokio::task::spawn_blocking(move || server2.wait_running(0, Duration::from_secs(30)))
        .await
        .unwrap();

    // psql sends a CancelRequest on SIGINT and reports the server's error.
    let Some(psql) = tool("/usr/bin/psql", "postgresql-client") else {
        return;
    };
    let (host, port) = server.host_port();
    let child = Command::new(psql)
        .args(["-X", "-w", "-h", host, "-p", port, "-d", "sluice"])
        .args(["-v", "VERBOSITY=verbose", "-c", ENDLESS])
        .env("PGCONNECT_TIMEOUT", "10")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let s = server.clone();
    tokio::task::spawn_blocking(move || s.wait_running(1, Duration::from_secs(30)))
        .await
        .unwrap();
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("57014"), "{stderr}");
    let s = server.clone();
    tokio::task::spawn_blocking(move || s.wait_running(0, Duration::from_secs(30)))
        .await
        .unwrap();
}
