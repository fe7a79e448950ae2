//! The HTTP API against a served project.

mod common;

use std::io::{BufRead, BufReader, Cursor, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use common::{http, sluice_ok, write};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sluice_transform::arrow::array::RecordBatch;
use sluice_transform::arrow::ipc::reader::StreamReader;
use sluice_transform::arrow::json::WriterBuilder;
use sluice_transform::arrow::json::writer::JsonArray;

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
        .args(["serve", "--http", "127.0.0.1:0", "--no-pg", "--no-flight"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    // Keep the pipe open while the server runs: it prints more lines, and a closed pipe kills it.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut line).unwrap();
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

    arrow_and_parquet_bodies_parse_back(&addr, dir);

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
    drop(stdout);
}

/// An Arrow IPC body and a Parquet body, parsed back with the Arrow and Parquet readers, carry the
/// same rows as the JSON body of the same request.
fn arrow_and_parquet_bodies_parse_back(addr: &str, dir: &Path) {
    // Every column, metadata timestamps included, so that types survive the round trip.
    let rows = "/api/assets/files.sales/rows?order=sale_id";
    let (_, json) = http(addr, "GET", rows, None, "application/json");
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 3);

    let (code, content_type, body) =
        http_bytes(addr, "GET", &format!("{rows}&format=arrow"), None, "*/*");
    assert_eq!(code, 200);
    assert_eq!(content_type, "application/vnd.apache.arrow.stream");
    let batches: Vec<RecordBatch> = StreamReader::try_new(Cursor::new(body), None)
        .unwrap()
        .map(|b| b.unwrap())
        .collect();
    assert_eq!(as_json(&batches), json);

    let sql = r#"{"sql": "select region, revenue from gold.by_region order by region"}"#;
    let (code, content_type, body) = http_bytes(
        addr,
        "POST",
        "/api/sql",
        Some(sql),
        "application/vnd.apache.parquet",
    );
    assert_eq!(code, 200);
    assert_eq!(content_type, "application/vnd.apache.parquet");
    // A consumer saves the file and opens it.
    let path = dir.join("by_region.parquet");
    std::fs::write(&path, &body).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    assert_eq!(
        as_json(&batches),
        serde_json::json!([{"region": "north", "revenue": 15}, {"region": "south", "revenue": 20}])
    );
}

/// Batches as the API's JSON (an array of objects with explicit nulls).
fn as_json(batches: &[RecordBatch]) -> serde_json::Value {
    let mut w = WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, JsonArray>(Vec::new());
    for b in batches {
        w.write(b).unwrap();
    }
    w.finish().unwrap();
    serde_json::from_slice(&w.into_inner()).unwrap()
}

/// An HTTP/1.1 request whose body is kept as bytes; returns (status, content type, body).
fn http_bytes(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    accept: &str,
) -> (u16, String, Vec<u8>) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&resp[..split]).to_ascii_lowercase();
    let mut rest = &resp[split + 4..];
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let content_type = head
        .lines()
        .find_map(|l| l.strip_prefix("content-type: "))
        .unwrap_or("")
        .to_string();
    if !head.contains("transfer-encoding: chunked") {
        return (status, content_type, rest.to_vec());
    }
    let mut out = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap().trim(), 16)
                .unwrap();
        if size == 0 {
            break;
        }
        let start = line_end + 2;
        out.extend_from_slice(&rest[start..start + size]);
        rest = &rest[start + size + 2..];
    }
    (status, content_type, out)
}
