//! Replays the catalog queries BI tools and drivers send on connect and while browsing (Grafana's
//! PostgreSQL data source, Metabase's sync, Superset through SQLAlchemy, pgJDBC's `DatabaseMetaData`
//! and Tableau's JDBC connector) against `sluice serve`. The SQL is kept verbatim in
//! `tests/fixtures/pg_catalog/*.sql`, each file naming where it comes from.
//!
//! Fixture format: blocks that start with `-- name: <name>`, then optional `-- expect: <cell>`
//! lines (some row must hold a cell equal to each), `-- expect-rows: <n>`, or `-- expect-error` for
//! a known gap (it must still fail, so a fix is noticed), then the SQL. In the
//! SQL, `{oid gold.by_region}` stands for that table's OID on the server (tools read it from
//! `pg_class` first and put the number in the next query). Each query runs in the simple protocol
//! and is prepared in the extended one (Parse/Describe), as drivers do.

mod common;
mod pg_server;

use std::path::Path;

use pg_server::{Server, project};
use tokio_postgres::SimpleQueryMessage;

struct Fixture {
    name: String,
    expect: Vec<String>,
    expect_rows: Option<usize>,
    /// A known gap (documented in docs/postgres-wire.md): the query must still fail, so a fix shows.
    expect_error: bool,
    sql: String,
}

fn fixtures(file: &str) -> Vec<Fixture> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pg_catalog")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out: Vec<Fixture> = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("-- name: ") {
            out.push(Fixture {
                name: name.trim().to_string(),
                expect: vec![],
                expect_rows: None,
                expect_error: false,
                sql: String::new(),
            });
            continue;
        }
        let Some(f) = out.last_mut() else { continue };
        if let Some(cell) = line.strip_prefix("-- expect: ") {
            f.expect.push(cell.trim().to_string());
        } else if line.starts_with("-- expect-error") {
            f.expect_error = true;
        } else if let Some(n) = line.strip_prefix("-- expect-rows: ") {
            f.expect_rows = Some(n.trim().parse().unwrap());
        } else if f.sql.is_empty() && line.starts_with("--") {
            // A comment about the query.
        } else {
            f.sql.push_str(line);
            f.sql.push('\n');
        }
    }
    assert!(!out.is_empty(), "no queries in {}", path.display());
    out
}

fn rows(messages: &[SimpleQueryMessage]) -> Vec<Vec<Option<String>>> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect()
}

/// Runs every query of `file`; returns the failures (all of them, so one run shows every gap).
async fn replay(client: &tokio_postgres::Client, file: &str) -> Vec<String> {
    let oid: String = client
        .simple_query(
            "SELECT c.oid FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'gold' AND c.relname = 'by_region'",
        )
        .await
        .ok()
        .and_then(|m| rows(&m).first().and_then(|r| r[0].clone()))
        .expect("the OID of gold.by_region");
    let mut failures = Vec::new();
    for f in fixtures(file) {
        let sql = f.sql.trim().replace("{oid gold.by_region}", &oid);
        let what = format!("{file} {}", f.name);
        if f.expect_error {
            if client.simple_query(&sql).await.is_ok() {
                failures.push(format!(
                    "{what}: answers now; drop `-- expect-error` and the doc's note"
                ));
            }
            continue;
        }
        match client.simple_query(&sql).await {
            Err(e) => {
                failures.push(format!("{what}: {e:?}\n{sql}"));
                continue;
            }
            Ok(messages) => {
                let got = rows(&messages);
                for cell in &f.expect {
                    if !got.iter().flatten().any(|c| c.as_deref() == Some(cell)) {
                        failures.push(format!("{what}: no cell `{cell}` in {got:?}"));
                    }
                }
                if let Some(n) = f.expect_rows
                    && got.len() != n
                {
                    failures.push(format!("{what}: {} rows, expected {n}: {got:?}", got.len()));
                }
            }
        }
        // Statements a driver sends only as text (SET, SHOW) need not plan in the extended protocol.
        let text_only = ["SET ", "SHOW "]
            .iter()
            .any(|p| sql.to_ascii_uppercase().starts_with(p));
        if !text_only && let Err(e) = client.prepare(&sql).await {
            failures.push(format!("{what} (prepared): {e:?}"));
        }
    }
    failures
}

#[tokio::test(flavor = "multi_thread")]
async fn bi_tools_catalog_queries_answer_with_the_lake() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir);
    let server = Server::start(dir);
    let client = server.client().await;
    let mut failures = Vec::new();
    for file in [
        "grafana.sql",
        "metabase.sql",
        "superset.sql",
        "pgjdbc.sql",
        "tableau.sql",
    ] {
        failures.extend(replay(&client, file).await);
    }
    assert!(
        failures.is_empty(),
        "{} catalog queries failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
