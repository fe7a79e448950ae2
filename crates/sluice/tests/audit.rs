//! The audit log over a real `sluice serve` (docs/security.md#the-audit-log): reads over HTTP and
//! the wire are recorded with who, when, tables, columns, rows, the query's text and hash, the
//! client's address and the protocol; runs and commits, and token changes, are recorded too; and
//! a server killed with SIGKILL keeps the record of what it answered.

mod common;
mod governed;

use std::process::Command;

use common::sluice_ok;
use governed::{NORTH_ROWS, Server, connect, project, request, sql};

fn audit(addr: &str, token: &str) -> Vec<serde_json::Value> {
    let (status, body) = request(addr, "GET", "/api/audit?limit=10000", Some(token), None);
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["records"].as_array().unwrap().clone()
}

/// Waits (bounded) until the log holds a record matching `pred`.
fn wait_for(
    addr: &str,
    token: &str,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(r) = audit(addr, token).into_iter().find(|r| pred(r)) {
            return r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {what} in the audit log: {:#?}",
            audit(addr, token)
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn reads_writes_and_token_changes_are_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    let (ana, root) = project(&dir);
    let server = Server::start(&dir);
    let addr = server.http.clone();

    // Only admins read the log.
    assert_eq!(request(&addr, "GET", "/api/audit", Some(&ana), None).0, 403);
    assert_eq!(request(&addr, "GET", "/api/audit", None, None).0, 401);

    let query = "select sale_id, email from bronze.files__sales";
    let (status, rows) = sql(&addr, Some(&ana), query);
    assert_eq!(status, 200);
    assert_eq!(rows.as_array().unwrap().len() as i64, NORTH_ROWS);
    let read = wait_for(&addr, &root, "HTTP read", |r| {
        r["action"] == "sql" && r["query_text"] == query && r["protocol"] == "http"
    });
    assert_eq!(read["kind"], "read");
    assert_eq!(read["actor"], "ana");
    assert_eq!(read["role"], "analyst");
    assert_eq!(read["tables"], "bronze.files__sales");
    assert_eq!(read["columns"], "sale_id,email");
    assert_eq!(read["query_hash"].as_str().unwrap().len(), 64);
    assert!(
        read["client"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{read}"
    );
    assert!(read["at"].as_str().unwrap().ends_with('Z'));
    let seq = read["seq"].as_i64().unwrap();
    let end = wait_for(&addr, &root, "end of the HTTP read", |r| {
        r["action"] == "read_end"
            && r["detail"]
                .as_str()
                .unwrap_or("")
                .contains(&format!("\"read\":{seq}"))
    });
    assert_eq!(end["rows"], NORTH_ROWS);

    // The wire.
    let pg = server.pg.clone();
    let ana2 = ana.clone();
    // The extended protocol (what `query` uses) records the statement as parsed: keywords in
    // capitals, spacing normalised.
    let wire_query = "SELECT region FROM bronze.files__sales";
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async move {
            let c = connect(&pg, "ana", Some(&ana2)).await.unwrap();
            let rows = c.query(wire_query, &[]).await.unwrap();
            assert_eq!(rows.len() as i64, NORTH_ROWS);
        });
    let read = wait_for(&addr, &root, "wire read", |r| {
        r["protocol"] == "pg" && r["query_text"] == wire_query
    });
    assert_eq!(read["actor"], "ana");
    assert_eq!(read["tables"], "bronze.files__sales");
    assert_eq!(read["columns"], "region");
    let seq = read["seq"].as_i64().unwrap();
    let end = wait_for(&addr, &root, "end of the wire read", |r| {
        r["action"] == "read_end"
            && r["detail"]
                .as_str()
                .unwrap_or("")
                .contains(&format!("\"read\":{seq}"))
    });
    assert_eq!(end["rows"], NORTH_ROWS);

    // Writes: the run of `project` (start, the commits with their versions, end).
    let records = audit(&addr, &root);
    for action in ["run_start", "commit", "run_end"] {
        assert!(
            records
                .iter()
                .any(|r| r["action"] == action && r["kind"] == "write"),
            "{action}"
        );
    }
    let commit = records.iter().find(|r| r["action"] == "commit").unwrap();
    assert!(
        commit["detail"].as_str().unwrap().contains("\"version\""),
        "{commit}"
    );
    // Administration: the tokens made by `project`.
    let made: Vec<_> = records
        .iter()
        .filter(|r| r["action"] == "token_create")
        .collect();
    assert_eq!(made.len(), 2, "{records:#?}");
    assert_eq!(made[0]["kind"], "admin");
    // An operating request is recorded before it runs.
    let _ = request(&addr, "POST", "/api/runs", Some(&root), Some("{}"));
    wait_for(&addr, &root, "run request", |r| {
        r["action"] == "POST /api/runs" && r["actor"] == "root"
    });
    // Exported as NDJSON.
    let (status, body) = request(&addr, "GET", "/api/audit?format=ndjson", Some(&root), None);
    assert_eq!(status, 200);
    assert!(body.lines().count() >= records.len());
    assert!(
        body.lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
    );
}

#[test]
fn a_killed_server_keeps_the_record_of_what_it_answered() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    let (ana, root) = project(&dir);
    let mut server = Server::start(&dir);
    let query = "select count(*) as n from bronze.files__sales";
    let (status, rows) = sql(&server.http, Some(&ana), query);
    assert_eq!(status, 200);
    assert_eq!(rows[0]["n"], NORTH_ROWS);
    // SIGKILL: no shutdown, no flush.
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .unwrap()
            .success()
    );
    let _ = server.child.wait();
    drop(server);

    let again = Server::start(&dir);
    let records = audit(&again.http, &root);
    let read = records
        .iter()
        .find(|r| r["query_text"] == query && r["actor"] == "ana")
        .unwrap_or_else(|| panic!("the answered read is not in the log: {records:#?}"));
    assert_eq!(read["tables"], "bronze.files__sales");
    // And the log is append-only in the database itself.
    let _ = sluice_ok(&dir, &["validate"]);
}
