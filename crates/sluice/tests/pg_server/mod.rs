//! `sluice serve` on free ports over a small project, for the tests that drive real PostgreSQL clients
//! (`pg_clients.rs`, `pg_catalog_replay.rs`, `flight_sql.rs`).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{http, sluice_ok, write};

/// A project with one source table, a gold table with the types a BI tool meets (text, double,
/// bigint, timestamp with time zone, date, decimal, a list) and a gold view.
pub fn project(dir: &Path) {
    write(dir, "sluice.yml", "name: clients\n");
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
    write(
        dir,
        "models/gold/north_sales.sql",
        "{{ config(materialized='view') }}\n\
         select sale_id, amount from {{ source('files', 'sales') }} where region = 'north'",
    );
    sluice_ok(dir, &["run"]);
}

/// `sluice serve` on free ports; killed on drop.
pub struct Server {
    child: Child,
    /// Kept open: the server prints to it, and a closed pipe would end it.
    _stdout: BufReader<ChildStdout>,
    /// `host:port` of the HTTP API.
    pub http: String,
    /// `host:port` of the PostgreSQL endpoint.
    pub pg: String,
    /// `host:port` of the Arrow Flight SQL endpoint.
    pub flight: String,
}

impl Server {
    pub fn start(dir: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("--project")
            .arg(dir)
            .args(["serve", "--http", "127.0.0.1:0", "--pg", "127.0.0.1:0"])
            .args(["--flight", "127.0.0.1:0"])
            .arg("--no-scheduler")
            .env("SLUICE_LOG", "error")
            .stdout(Stdio::piped())
            .spawn()
            .expect("start sluice serve");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let (mut http, mut pg, mut flight) = (None, None, None);
        while http.is_none() || pg.is_none() || flight.is_none() {
            let mut line = String::new();
            if stdout.read_line(&mut line).unwrap_or(0) == 0 {
                let _ = child.kill();
                panic!("sluice serve ended before announcing its addresses");
            }
            if let Some(rest) = line.strip_prefix("Serving the Sluice API at http://") {
                http = rest.split('/').next().map(str::to_string);
            }
            if let Some(rest) = line.strip_prefix("PostgreSQL wire protocol at ") {
                pg = rest.split_whitespace().next().map(str::to_string);
            }
            if let Some(rest) = line.strip_prefix("Arrow Flight SQL at ") {
                flight = rest.split_whitespace().next().map(str::to_string);
            }
        }
        Server {
            child,
            _stdout: stdout,
            http: http.unwrap_or_default(),
            pg: pg.unwrap_or_default(),
            flight: flight.unwrap_or_default(),
        }
    }

    pub fn host_port(&self) -> (&str, &str) {
        self.pg.rsplit_once(':').expect("host:port")
    }

    /// A tokio-postgres client (its connection runs on a task of its own).
    pub async fn client(&self) -> tokio_postgres::Client {
        let (host, port) = self.host_port();
        let (client, connection) = tokio_postgres::connect(
            &format!("host={host} port={port} user=analyst dbname=sluice connect_timeout=10"),
            tokio_postgres::NoTls,
        )
        .await
        .expect("connect to the PostgreSQL endpoint");
        tokio::spawn(connection);
        client
    }

    /// The queries running now (HTTP `GET /api/queries`).
    pub fn running(&self) -> Vec<serde_json::Value> {
        let (status, body) = http(&self.http, "GET", "/api/queries", None, "application/json");
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        v["queries"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until `count` queries run (or fails after `limit`).
    pub fn wait_running(&self, count: usize, limit: Duration) {
        let start = Instant::now();
        while self.running().len() != count {
            assert!(
                start.elapsed() < limit,
                "timed out waiting for {count} running queries"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client program from the machine's packages (psql, java), or `None` with a printed skip; under
/// `CI=true` a missing one fails instead (`.ci/run` installs them).
pub fn tool(path: &str, installed_by: &str) -> Option<String> {
    if Path::new(path).exists() {
        return Some(path.to_string());
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{path} is not installed; .ci/run installs {installed_by}"
    );
    eprintln!("skipping: {path} is not installed ({installed_by})");
    None
}
