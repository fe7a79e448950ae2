//! The HTTP API against a served project.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{http, sluice_ok, write};

#[test]
fn http_api_serves_assets_rows_sql_and_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "sluice.yml", "name: api\n");
    write(
        dir,
        "sources/files.yml",
        "kind: files\ntables:\n  - name: sales\n    path: landing/*.csv\n",
    );
    write(
        dir,
        "landing/s.csv",
        "sale_id,region,amount\n1,north,10\n2,south,20\n3,north,5\n",
    );
    write(
        dir,
        "models/gold/by_region.sql",
        "select region, sum(amount) as revenue from {{ source('files','sales') }} group by region",
    );
    sluice_ok(dir, &["run"]);

    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("--project")
        .arg(dir)
        .args(["serve", "--http", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .unwrap()
        .to_string();

    let (code, body) = http(&addr, "GET", "/api/health", None, "*/*");
    assert_eq!(code, 200, "{body}");
    let (code, body) = http(&addr, "GET", "/api/assets", None, "application/json");
    assert_eq!(code, 200);
    let assets: serde_json::Value = serde_json::from_str(&body).unwrap();
    let names: Vec<&str> = assets
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["by_region", "files.sales"]);
    assert_eq!(assets[0]["state"], "fresh");

    let (code, body) = http(
        &addr,
        "GET",
        "/api/assets/by_region",
        None,
        "application/json",
    );
    assert_eq!(code, 200);
    let detail: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(detail["columns"][0]["name"], "region");
    assert_eq!(http(&addr, "GET", "/api/assets/nope", None, "*/*").0, 404);

    let (code, body) = http(
        &addr,
        "GET",
        "/api/assets/files.sales/rows?limit=2&offset=1",
        None,
        "application/json",
    );
    assert_eq!(code, 200);
    let rows: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2);
    let (code, body) = http(
        &addr,
        "GET",
        "/api/assets/by_region/rows?format=csv",
        None,
        "*/*",
    );
    assert_eq!(code, 200);
    assert!(body.starts_with("region,revenue"), "{body}");
    let (code, body) = http(&addr, "GET", "/api/assets/by_region/rows", None, "text/csv");
    assert_eq!(code, 200);
    assert_eq!(body.lines().count(), 3, "{body}");

    let (code, body) = http(
        &addr,
        "POST",
        "/api/sql",
        Some(r#"{"sql": "select sum(revenue) as total from gold.by_region"}"#),
        "application/json",
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("35"), "{body}");
    let (code, body) = http(
        &addr,
        "POST",
        "/api/sql",
        Some(r#"{"sql": "delete from gold.by_region"}"#),
        "application/json",
    );
    assert_eq!(code, 403, "{body}");
    let (code, body) = http(
        &addr,
        "POST",
        "/api/sql",
        Some(r#"{"sql": "select * from read_csv('/etc/passwd')"}"#),
        "application/json",
    );
    assert_eq!(code, 403, "{body}");
    let (code, _) = http(
        &addr,
        "POST",
        "/api/sql",
        Some(r#"{"sql": "select nope from gold.by_region"}"#),
        "application/json",
    );
    assert_eq!(code, 400);

    let (code, body) = http(&addr, "GET", "/api/runs", None, "application/json");
    assert_eq!(code, 200);
    let runs: serde_json::Value = serde_json::from_str(&body).unwrap();
    let run_id = runs[0]["run_id"].as_str().unwrap().to_string();
    let (code, body) = http(
        &addr,
        "GET",
        &format!("/api/runs/{run_id}"),
        None,
        "application/json",
    );
    assert_eq!(code, 200);
    assert!(body.contains("by_region"), "{body}");
    let (code, body) = http(&addr, "GET", "/api/lineage", None, "application/json");
    assert_eq!(code, 200);
    assert!(
        body.contains(r#""from":"files.sales","to":"by_region""#),
        "{body}"
    );

    let _ = child.kill();
    let _ = child.wait();
}
