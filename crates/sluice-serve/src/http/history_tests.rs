//! Time travel over HTTP: the history endpoint, `?version=` / `?as_of=` on the rows endpoint and
//! `VERSION AS OF` in `POST /api/sql`.

use std::sync::Arc;

use arrow::array::{Float64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use axum::http::StatusCode;
use serde_json::Value;
use sluice_lake::{TableId, WriteSpec};

use crate::test_support::Served;

/// Served, with `gold.by_region` overwritten by one row (`west`): versions 0 (three regions) and 1.
async fn two_versions() -> Served {
    let s = Served::new().await;
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("region", DataType::Utf8, true),
            Field::new("revenue", DataType::Float64, true),
        ])),
        vec![
            Arc::new(StringArray::from(vec!["west"])),
            Arc::new(Float64Array::from(vec![7.0])),
        ],
    )
    .unwrap();
    let id = TableId::gold("by_region");
    let engine = &s.state.engine;
    engine
        .lake()
        .write(&id, vec![batch], &WriteSpec::overwrite())
        .await
        .unwrap();
    engine.refresh_table(&id).await.unwrap();
    s
}

fn regions(rows: &Value) -> Vec<String> {
    let mut r: Vec<String> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["region"].as_str().unwrap_or("null").to_string())
        .collect();
    r.sort();
    r
}

#[tokio::test]
async fn history_lists_versions_newest_first() {
    let s = two_versions().await;
    let r = s.get("/api/assets/by_region/history", "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let body = r.json();
    assert_eq!(body["table"], "gold.by_region");
    let versions = body["versions"].as_array().unwrap();
    let numbers: Vec<i64> = versions
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 0]);
    assert_eq!(versions[0]["rows_total"], 1);
    assert_eq!(versions[0]["rows_removed"], 3);
    assert_eq!(versions[1]["rows_added"], 3);
    assert!(versions[0]["timestamp"].is_string());

    let r = s.get("/api/assets/by_region/history?limit=1", "").await;
    assert_eq!(r.json()["versions"].as_array().unwrap().len(), 1);
    let r = s.get("/api/assets/nope/history", "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = s.get("/api/assets/unbuilt/history", "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
}

#[tokio::test]
async fn rows_read_an_earlier_version_or_time() {
    let s = two_versions().await;
    let r = s.get("/api/assets/by_region/rows", "").await;
    assert_eq!(regions(&r.json()), ["west"]);
    let r = s.get("/api/assets/by_region/rows?version=0", "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(regions(&r.json()), ["north", "null", "south"]);
    // A filter still applies to the earlier version.
    let r = s
        .get("/api/assets/by_region/rows?version=0&region=eq.north", "")
        .await;
    assert_eq!(regions(&r.json()), ["north"]);

    let history = s.get("/api/assets/by_region/history", "").await.json();
    let latest_at = history["versions"][0]["timestamp"]
        .as_str()
        .unwrap()
        .to_string();
    let uri = format!(
        "/api/assets/by_region/rows?as_of={}",
        url::form_urlencoded::byte_serialize(latest_at.as_bytes()).collect::<String>()
    );
    let r = s.get(&uri, "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(regions(&r.json()), ["west"]);

    let r = s.get("/api/assets/by_region/rows?version=5", "").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let e = r.text();
    assert!(e.contains("gold.by_region"), "{e}");
    assert!(e.contains("versions 0 to 1"), "{e}");
    let r = s
        .get("/api/assets/by_region/rows?as_of=2001-01-01", "")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.text().contains("no version was committed"),
        "{}",
        r.text()
    );
    let r = s
        .get("/api/assets/by_region/rows?version=0&version=1", "")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn sql_reads_versions_and_names_missing_ones() {
    let s = two_versions().await;
    let r = s
        .sql(
            "",
            "select region from gold.by_region version as of 0 order by region",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(regions(&r.json()), ["north", "null", "south"]);
    let r = s
        .sql("", "select * from gold.by_region VERSION AS OF 3")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let e = r.text();
    assert!(e.contains("no version 3"), "{e}");
    assert!(e.contains("versions 0 to 1"), "{e}");
}
