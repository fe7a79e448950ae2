//! Time travel end to end: `VERSION AS OF` / `TIMESTAMP AS OF` in `sluice query`, `POST /api/sql`,
//! the rows endpoint and the PostgreSQL wire (tokio-postgres, simple and extended protocol);
//! `sluice history` (versions, run ids, row counts) and `sluice restore` (a new version with the old
//! rows, recorded as a run).

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

use common::{http, query_json, run_id_of, sluice, sluice_ok, write};
use serde_json::Value;
use tokio_postgres::NoTls;

/// A CSV source and a gold table over it, run twice: the second run lands `b.csv`, so
/// `gold.by_region` has versions 0 (north, south) and 1 (north, south, west). Returns the run ids.
fn project(dir: &Path) -> (String, String) {
    write(dir, "sluice.yml", "name: tt\n");
    write(
        dir,
        "sources/files.yml",
        "kind: files\ntables:\n  - name: sales\n    path: landing/*.csv\n",
    );
    write(
        dir,
        "landing/a.csv",
        "sale_id,region,amount\n1,north,10\n2,south,20\n3,north,5\n",
    );
    write(
        dir,
        "models/gold/by_region.sql",
        "{{ config(materialized='table') }}\n\
         select region, sum(amount) as revenue, count(*) as n \
         from {{ source('files', 'sales') }} group by region",
    );
    let first = run_id_of(&sluice_ok(dir, &["run"]));
    write(dir, "landing/b.csv", "sale_id,region,amount\n4,west,7\n");
    let second = run_id_of(&sluice_ok(dir, &["run"]));
    (first, second)
}

fn regions(rows: &[Value]) -> Vec<String> {
    let mut r: Vec<String> = rows
        .iter()
        .map(|r| r["region"].as_str().unwrap().to_string())
        .collect();
    r.sort();
    r
}

fn history(dir: &Path) -> Vec<Value> {
    let out = sluice_ok(dir, &["history", "by_region", "--json"]);
    serde_json::from_str::<Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn cli_reads_versions_lists_history_and_restores() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (first, second) = project(dir);

    let now = query_json(dir, "select region from gold.by_region");
    assert_eq!(regions(&now), ["north", "south", "west"]);
    let then = query_json(dir, "select region from gold.by_region VERSION AS OF 0");
    assert_eq!(regions(&then), ["north", "south"]);
    let source = query_json(
        dir,
        "select count(*) as n from bronze.files__sales version as of 0",
    );
    assert_eq!(source[0]["n"], 3);

    // History: newest first, with the runs that made each version and the rows.
    let versions = history(dir);
    let summary: Vec<(i64, &str, i64)> = versions
        .iter()
        .map(|v| {
            (
                v["version"].as_i64().unwrap(),
                v["run_id"].as_str().unwrap_or(""),
                v["rows_total"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(summary, [(1, second.as_str(), 3), (0, first.as_str(), 2)]);
    let text = sluice_ok(dir, &["history", "gold.by_region"]);
    assert!(text.contains(&second) && text.contains("WRITE"), "{text}");

    // TIMESTAMP AS OF the first version's commit time reads the first version.
    let at = versions[1]["timestamp"].as_str().unwrap();
    let sql = format!("select region from gold.by_region TIMESTAMP AS OF '{at}'");
    assert_eq!(regions(&query_json(dir, &sql)), ["north", "south"]);

    // Errors name the asset and the versions there are.
    let out = sluice(
        dir,
        &["query", "select * from gold.by_region VERSION AS OF 9"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("gold.by_region"), "{err}");
    assert!(err.contains("versions 0 to 1"), "{err}");
    let out = sluice(
        dir,
        &[
            "query",
            "select * from gold.by_region TIMESTAMP AS OF '2001-01-01 00:00'",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no version was committed at or before"),
        "{err}"
    );

    // Restore: a new version with version 0's rows, recorded as a run.
    let out = sluice_ok(dir, &["restore", "by_region", "--version", "0"]);
    let restore_run = run_id_of(&out);
    assert!(out.contains("restored to version 0 as version 2"), "{out}");
    let restored = query_json(dir, "select * from gold.by_region");
    let mut expected = query_json(dir, "select * from gold.by_region version as of 0");
    let mut got = restored.clone();
    let key = |v: &Value| v["region"].to_string();
    expected.sort_by_key(key);
    got.sort_by_key(key);
    assert_eq!(got, expected);
    let versions = history(dir);
    assert_eq!(versions.len(), 3);
    assert_eq!(versions[0]["operation"], "RESTORE");
    assert_eq!(versions[0]["restored_version"], 0);
    assert_eq!(versions[0]["run_id"], restore_run.as_str());
    let runs = sluice_ok(dir, &["runs"]);
    let line = runs
        .lines()
        .find(|l| l.contains(&restore_run))
        .unwrap_or_else(|| panic!("restore run not listed:\n{runs}"));
    assert!(
        line.contains("restore") && line.contains("success"),
        "{line}"
    );
    let shown = sluice_ok(dir, &["runs", "show", &restore_run]);
    assert!(shown.contains("by_region"), "{shown}");

    // Restoring the latest version, or one that does not exist, is refused (and recorded failed).
    let out = sluice(dir, &["restore", "by_region", "--version", "7"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no version 7"), "{err}");
    let out = sluice(
        dir,
        &["restore", "by_region", "--timestamp", "2001-01-01 00:00"],
    );
    assert!(!out.status.success());
}

/// `sluice serve` on free ports (HTTP and PostgreSQL); killed on drop.
struct Server {
    child: Child,
    /// Kept open: the server prints to it, and a closed pipe would end it.
    _stdout: BufReader<ChildStdout>,
    http: String,
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
        let mut http = None;
        let pg = loop {
            let mut line = String::new();
            if stdout.read_line(&mut line).unwrap() == 0 {
                let _ = child.kill();
                panic!("sluice serve ended before announcing its addresses:\n{banner}");
            }
            banner.push_str(&line);
            if http.is_none()
                && let Some(rest) = line.split("http://").nth(1)
            {
                http = rest.split('/').next().map(str::to_string);
            }
            if let Some(rest) = line.strip_prefix("PostgreSQL wire protocol at ") {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        Server {
            child,
            _stdout: stdout,
            http: http.expect("HTTP address in the banner"),
            pg,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn http_and_the_wire_read_earlier_versions() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir);
    let server = Server::start(dir);

    // POST /api/sql.
    let body = r#"{"sql": "select region from gold.by_region version as of 0"}"#;
    let (code, text) = http(
        &server.http,
        "POST",
        "/api/sql",
        Some(body),
        "application/json",
    );
    assert_eq!(code, 200, "{text}");
    let rows: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(regions(&rows), ["north", "south"]);
    let body = r#"{"sql": "select * from gold.by_region version as of 4"}"#;
    let (code, text) = http(
        &server.http,
        "POST",
        "/api/sql",
        Some(body),
        "application/json",
    );
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("versions 0 to 1"), "{text}");

    // The rows endpoint and the history endpoint.
    let (code, text) = http(
        &server.http,
        "GET",
        "/api/assets/by_region/rows?version=0",
        None,
        "application/json",
    );
    assert_eq!(code, 200, "{text}");
    let rows: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(regions(&rows), ["north", "south"]);
    let (code, text) = http(
        &server.http,
        "GET",
        "/api/assets/by_region/history",
        None,
        "application/json",
    );
    assert_eq!(code, 200, "{text}");
    let h: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(h["versions"].as_array().unwrap().len(), 2);

    // The PostgreSQL wire: simple and extended protocol, and the error for a missing version.
    let (host, port) = server.pg.rsplit_once(':').unwrap();
    let (client, connection) = tokio_postgres::connect(
        &format!("host={host} port={port} user=analyst dbname=sluice connect_timeout=10"),
        NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let simple = client
        .simple_query("select region from gold.by_region VERSION AS OF 0 order by region")
        .await
        .unwrap();
    let names: Vec<String> = simple
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .collect();
    assert_eq!(names, ["north", "south"]);
    let rows = client
        .query(
            "select count(*) from gold.by_region version as of 1 where n >= $1",
            &[&1i64],
        )
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, i64>(0), 3);
    let err = client
        .simple_query("select * from gold.by_region version as of 8")
        .await
        .unwrap_err();
    let db = err.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "22023", "{db:?}");
    assert!(db.message().contains("versions 0 to 1"), "{db:?}");
    // The connection is still usable.
    let rows = client
        .query("select count(*) from gold.by_region", &[])
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, i64>(0), 3);
}
