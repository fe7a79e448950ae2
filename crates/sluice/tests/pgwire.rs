//! The PostgreSQL wire protocol of `sluice serve`, with real clients: the tokio-postgres driver
//! (simple and extended protocol, a refused write) and the `psql` binary (catalog meta-commands).
//! Results are compared with what `sluice query --format json` returns for the same SQL.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

use common::{query_json, sluice, sluice_ok, write};
use serde_json::Value;
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

/// A project with one source table and a gold model with the types a BI tool meets: text, double,
/// bigint, timestamp with time zone, date, decimal and a list.
fn project(dir: &Path) {
    write(dir, "sluice.yml", "name: wire\n");
    write(
        dir,
        "sources/files.yml",
        "kind: files\ntables:\n  - name: sales\n    path: landing/*.csv\n",
    );
    write(
        dir,
        "landing/s.csv",
        "sale_id,region,amount,sold_at\n\
         1,north,10.5,2024-01-01T10:00:00Z\n\
         2,south,20,2024-01-02T11:00:00Z\n\
         3,north,5,2024-01-03T12:30:00Z\n",
    );
    write(
        dir,
        "models/gold/by_region.sql",
        "select region, sum(amount) as revenue, count(*) as n, max(sold_at) as last_sale, \
         cast(max(sold_at) as date) as last_day, cast(sum(amount) as decimal(12, 2)) as revenue_dec, \
         array_agg(sale_id order by sale_id) as ids \
         from {{ source('files', 'sales') }} group by region",
    );
    sluice_ok(dir, &["run"]);
}

/// `sluice serve` on free ports; killed on drop.
struct Server {
    child: Child,
    /// Kept open: the server prints to it, and a closed pipe would end it.
    _stdout: BufReader<ChildStdout>,
    pg: String,
}

impl Server {
    fn start(dir: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("--project")
            .arg(dir)
            .args([
                "serve",
                "--http",
                "127.0.0.1:0",
                "--pg",
                "127.0.0.1:0",
                "--no-flight",
            ])
            .env("SLUICE_LOG", "error")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut banner = String::new();
        let pg = loop {
            let mut line = String::new();
            if stdout.read_line(&mut line).unwrap() == 0 {
                let _ = child.kill();
                panic!("sluice serve ended before announcing PostgreSQL:\n{banner}");
            }
            banner.push_str(&line);
            if let Some(rest) = line.strip_prefix("PostgreSQL wire protocol at ") {
                assert!(
                    rest.contains("psql -h 127.0.0.1 -p "),
                    "banner lacks the psql command: {line}"
                );
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        Server {
            child,
            _stdout: stdout,
            pg,
        }
    }

    fn host_port(&self) -> (&str, &str) {
        self.pg.rsplit_once(':').unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn connect(server: &Server) -> tokio_postgres::Client {
    let (host, port) = server.host_port();
    let (client, connection) = tokio_postgres::connect(
        &format!("host={host} port={port} user=analyst dbname=sluice connect_timeout=10"),
        NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    client
}

fn simple_rows(messages: &[tokio_postgres::SimpleQueryMessage]) -> Vec<Vec<Option<String>>> {
    messages
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_postgres_driver_reads_what_sluice_query_returns_and_cannot_write() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir);
    let server = Server::start(dir);
    let client = connect(&server).await;

    // Simple protocol: every value arrives as text; compare with the CLI's JSON.
    let sql = "SELECT region, revenue, n FROM gold.by_region ORDER BY region";
    let expected = query_json(dir, sql);
    let got = simple_rows(&client.simple_query(sql).await.unwrap());
    assert_eq!(got.len(), expected.len());
    for (row, want) in got.iter().zip(&expected) {
        assert_eq!(row[0].as_deref(), want["region"].as_str());
        let revenue: f64 = row[1].as_deref().unwrap().parse().unwrap();
        assert_eq!(Some(revenue), want["revenue"].as_f64());
        assert_eq!(row[2].as_deref(), Some(want["n"].to_string().as_str()));
    }

    // Extended protocol: a prepared statement with a parameter, binary results decoded by type.
    let sql = "SELECT region, revenue, n, last_sale, last_day, CAST(revenue_dec AS VARCHAR) AS revenue_dec, ids \
               FROM gold.by_region WHERE n >= $1 ORDER BY region";
    let stmt = client.prepare(sql).await.unwrap();
    assert_eq!(stmt.params(), [tokio_postgres::types::Type::INT8]);
    let rows = client.query(&stmt, &[&1_i64]).await.unwrap();
    let expected = query_json(dir, &sql.replace("$1", "1"));
    assert_eq!(rows.len(), 2);
    assert_eq!(rows.len(), expected.len());
    for (row, want) in rows.iter().zip(&expected) {
        assert_eq!(
            row.get::<_, String>("region"),
            want["region"].as_str().unwrap()
        );
        assert_eq!(Some(row.get::<_, f64>("revenue")), want["revenue"].as_f64());
        assert_eq!(Some(row.get::<_, i64>("n")), want["n"].as_i64());
        let last_sale: chrono::DateTime<chrono::Utc> = row.get("last_sale");
        assert_eq!(
            last_sale.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            want["last_sale"].as_str().unwrap()
        );
        let last_day: chrono::NaiveDate = row.get("last_day");
        assert_eq!(last_day.to_string(), want["last_day"].as_str().unwrap());
        assert_eq!(
            row.get::<_, String>("revenue_dec").parse::<f64>().ok(),
            want["revenue_dec"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .or_else(|| want["revenue_dec"].as_f64())
        );
        let ids: Vec<i64> = row.get("ids");
        let want_ids: Vec<i64> = want["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(ids, want_ids);
    }
    // The same prepared statement with another parameter value.
    let rows = client.query(&stmt, &[&2_i64]).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, String>("region"), "north");

    // A refused write is a DbError with SQLSTATE 25006 (read_only_sql_transaction), in both
    // protocols, and the same connection still answers.
    for write_sql in [
        "INSERT INTO gold.by_region (region) VALUES ('west')",
        "DROP TABLE gold.by_region",
        "SET datafusion.execution.batch_size = 1",
    ] {
        let err = client.execute(write_sql, &[]).await.unwrap_err();
        let db = err
            .as_db_error()
            .unwrap_or_else(|| panic!("{write_sql}: {err}"));
        assert_eq!(
            db.code(),
            &SqlState::READ_ONLY_SQL_TRANSACTION,
            "{write_sql}"
        );
        let err = client.batch_execute(write_sql).await.unwrap_err();
        assert_eq!(
            err.code(),
            Some(&SqlState::READ_ONLY_SQL_TRANSACTION),
            "{write_sql}: {err}"
        );
    }
    let count: i64 = client
        .query_one("SELECT count(*) FROM gold.by_region", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 2, "the table is unchanged and the connection usable");
    let after: Vec<Value> = query_json(dir, "SELECT count(*) AS c FROM gold.by_region");
    assert_eq!(after[0]["c"], 2);
}

/// psql from the machine's packages (`postgresql-client`).
fn psql() -> Option<&'static str> {
    let path = "/usr/bin/psql";
    if Path::new(path).exists() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "psql is not installed at {path}; .ci/run installs postgresql-client"
    );
    eprintln!("skipping: psql is not installed at {path}");
    None
}

#[test]
fn psql_lists_describes_and_queries_the_lake() {
    let Some(psql) = psql() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir);
    let server = Server::start(dir);
    let (host, port) = server.host_port();
    let out = Command::new(psql)
        .args([
            "-X", "-w", "-h", host, "-p", port, "-U", "analyst", "-d", "sluice",
        ])
        .args(["-v", "ON_ERROR_STOP=1"])
        .args(["-c", r"\dt gold.*"])
        .args(["-c", r"\d gold.by_region"])
        .args(["-c", "SELECT region, n FROM gold.by_region ORDER BY region"])
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "psql failed:\n{stdout}\n{stderr}");

    // \dt gold.*: the table, in its schema.
    let listing = stdout.split("Table \"gold.by_region\"").next().unwrap();
    assert!(
        listing.lines().any(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            cells.len() >= 3 && cells[0] == "gold" && cells[1] == "by_region" && cells[2] == "table"
        }),
        "\\dt did not list gold.by_region:\n{stdout}"
    );
    // \d gold.by_region: every column with its PostgreSQL type.
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
            stdout.lines().any(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                cells.len() >= 2 && cells[0] == column && cells[1] == pg_type
            }),
            "\\d does not show `{column}` as {pg_type}:\n{stdout}"
        );
    }
    // The SELECT, with the rows `sluice query` returns.
    for row in query_json(dir, "SELECT region, n FROM gold.by_region ORDER BY region") {
        let (region, n) = (row["region"].as_str().unwrap(), row["n"].to_string());
        assert!(
            stdout.lines().any(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                cells == [region, n.as_str()]
            }),
            "row {region} | {n} missing:\n{stdout}"
        );
    }
    assert!(stdout.contains("(2 rows)"), "{stdout}");

    // A refused write fails psql with ON_ERROR_STOP, with the SQLSTATE's message.
    let out = Command::new(psql)
        .args(["-X", "-w", "-h", host, "-p", port, "-d", "sluice"])
        .args(["-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose"])
        .args(["-c", "DELETE FROM gold.by_region"])
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("25006"), "{stderr}");
}

#[test]
fn a_taken_postgres_port_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "sluice.yml", "name: taken\n");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = sluice(
        dir,
        &[
            "serve",
            "--http",
            "127.0.0.1:0",
            "--pg",
            &addr,
            "--no-flight",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "serve started on a taken port");
    assert!(
        stderr.contains(&format!("cannot listen for PostgreSQL clients on {addr}")),
        "{stderr}"
    );
    assert!(stderr.contains("--no-pg"), "{stderr}");
}
