//! The dashboard endpoints over the served test project (`test_support::SALES_DASHBOARD`).

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::Value;

use super::*;
use crate::test_support::{SALES_ROWS, Served};

/// `amount` of sale `i` as the test lake holds it (every 7th null), and its `sold_on` day offset.
fn sale(i: i64) -> (Option<f64>, i64) {
    ((i % 7 != 0).then_some(i as f64 / 2.0), i % 30)
}

#[tokio::test]
async fn lists_and_describes_dashboards() {
    let s = Served::new().await;
    let r = s.get("/api/dashboards", "").await;
    assert_eq!(r.status, StatusCode::OK);
    let list = r.json();
    assert_eq!(list[0]["name"], "sales");
    assert_eq!(list[0]["charts"], 4);
    assert_eq!(list[0]["refresh_seconds"], 60);
    let d = s.get("/api/dashboards/sales", "").await.json();
    assert_eq!(d["time_range"]["column"], "sold_on");
    assert_eq!(d["charts"][0]["type"], "stacked_bar");
    let r = s.get("/api/dashboards/sale", "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.text().contains("did you mean `sales`"), "{}", r.text());
}

#[tokio::test]
async fn a_number_chart_sums_the_default_range_back_from_the_newest_day() {
    let s = Served::new().await;
    let r = s.get("/api/dashboards/sales/charts/1", "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let body = r.json();
    // 7d back from the newest day (offset 29): offsets 23..=29.
    let expected: f64 = (1..=SALES_ROWS)
        .map(sale)
        .filter(|(_, day)| *day >= 23)
        .filter_map(|(a, _)| a)
        .sum();
    let got = body["rows"][0]["amount"].as_f64().unwrap();
    assert!((got - expected).abs() < 1e-6, "{got} != {expected}");
    assert_eq!(body["range"]["range"], "7d");
    // `all` and explicit bounds.
    let all = s
        .get("/api/dashboards/sales/charts/1?range=all", "")
        .await
        .json();
    let total: f64 = (1..=SALES_ROWS).filter_map(|i| sale(i).0).sum();
    assert!((all["rows"][0]["amount"].as_f64().unwrap() - total).abs() < 1e-6);
    // Day 19000 is 2022-01-08; from..to (inclusive dates) covers offsets 0..=1.
    let two = s
        .get(
            "/api/dashboards/sales/charts/1?from=2022-01-08&to=2022-01-09",
            "",
        )
        .await
        .json();
    let expected: f64 = (1..=SALES_ROWS)
        .map(sale)
        .filter(|(_, day)| *day <= 1)
        .filter_map(|(a, _)| a)
        .sum();
    assert!(
        (two["rows"][0]["amount"].as_f64().unwrap() - expected).abs() < 1e-6,
        "{two}"
    );
}

#[tokio::test]
async fn a_stacked_bar_chart_groups_by_x_and_series() {
    let s = Served::new().await;
    let body = s
        .get("/api/dashboards/sales/charts/0?range=3d", "")
        .await
        .json();
    let rows = body["rows"].as_array().unwrap();
    assert_eq!(
        body["columns"],
        serde_json::json!(["sold_on", "region", "amount"])
    );
    let days: std::collections::BTreeSet<&str> = rows
        .iter()
        .map(|r| r["sold_on"].as_str().unwrap())
        .collect();
    assert_eq!(days.len(), 3, "{days:?}");
    // Ordered by x, then series; one row per (day, region) including the null region.
    let keys: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r["sold_on"].to_string(), r["region"].to_string()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(keys.len(), sorted.len());
    assert!(
        body["sql"]
            .as_str()
            .unwrap()
            .contains("GROUP BY \"sold_on\", \"region\"")
    );
}

#[tokio::test]
async fn a_chart_without_the_time_column_shows_all_rows() {
    let s = Served::new().await;
    let body = s.get("/api/dashboards/sales/charts/2", "").await.json();
    assert_eq!(body["range"], Value::Null);
    assert_eq!(body["rows"].as_array().unwrap().len(), 3, "{body}");
}

#[tokio::test]
async fn errors_say_what_to_do() {
    let s = Served::new().await;
    let r = s.get("/api/dashboards/sales/charts/3", "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(
        r.text().contains("sluice run --select unbuilt"),
        "{}",
        r.text()
    );
    let r = s.get("/api/dashboards/sales/charts/9", "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.text().contains("0 to 4 - 1"), "{}", r.text());
    let r = s
        .get("/api/dashboards/sales/charts/1?from=2022-01-08'--", "")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    let r = s.get("/api/dashboards/sales/charts/1?range=soon", "").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn huge_ranges_are_a_400_and_the_longest_runs() {
    let s = Served::new().await;
    for range in [
        "99999999999999999999d",
        "18446744073709551615s",
        "36501d",
        "9999999999999999999999999999999999999999w",
    ] {
        let r = s
            .get(&format!("/api/dashboards/sales/charts/1?range={range}"), "")
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{range}: {}", r.text());
        assert!(r.text().contains("at most 36500d"), "{}", r.text());
    }
    // 100 years back from the newest day: every row.
    let r = s
        .get("/api/dashboards/sales/charts/1?range=36500d", "")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let total: f64 = (1..=SALES_ROWS).filter_map(|i| sale(i).0).sum();
    let got = r.json()["rows"][0]["amount"].as_f64().unwrap();
    assert!((got - total).abs() < 1e-6, "{got} != {total}");
}

#[tokio::test]
async fn checks_are_listed_worst_first_with_a_summary() {
    let s = Served::new().await;
    let body = s.get("/api/checks", "").await.json();
    assert_eq!(body["summary"]["fail"], 1);
    assert_eq!(body["summary"]["pass"], 1);
    assert_eq!(body["checks"][0]["check_name"], "not_null_region");
    assert_eq!(body["checks"][0]["status"], "fail");
}

#[tokio::test]
async fn partitions_of_a_source_table_are_its_ingest_dates() {
    let s = Served::new().await;
    let r = s.get("/api/assets/by_region/partitions", "").await;
    assert_eq!(r.json()["columns"], serde_json::json!([]));
    let r = s.get("/api/assets/unbuilt/partitions", "").await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "an unpartitioned model lists none"
    );
    let r = s.get("/api/assets/nope/partitions", "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

async fn post_run(s: &Served, body: &str) -> crate::test_support::Reply {
    let req = Request::post("/api/runs")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    s.send(req).await
}

#[tokio::test]
async fn a_triggered_run_is_recorded_at_once_and_finishes() {
    let s = Served::new().await;
    let r = post_run(&s, r#"{"select": "by_region"}"#).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let id = r.json()["run_id"].as_str().unwrap().to_string();
    // Recorded before the answer: the first poll finds it.
    let mut run = s.get(&format!("/api/runs/{id}"), "").await;
    assert_eq!(run.status, StatusCode::OK, "{}", run.text());
    for _ in 0..200 {
        if run.json()["run"]["status"] != "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        run = s.get(&format!("/api/runs/{id}"), "").await;
    }
    let detail = run.json();
    assert_eq!(detail["run"]["status"], "success", "{detail}");
    assert_eq!(detail["run"]["command"], "api");
    assert_eq!(detail["run"]["selection"], "by_region");
    let nodes: Vec<&str> = detail["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node"].as_str().unwrap())
        .collect();
    assert_eq!(nodes, ["by_region"]);
}

#[tokio::test]
async fn a_bad_selection_or_body_is_refused_before_anything_runs() {
    let s = Served::new().await;
    let r = post_run(&s, r#"{"select": "by_regoin+"}"#).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("by_regoin"), "{}", r.text());
    let r = post_run(&s, r#"{"selection": "by_region"}"#).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("select"), "{}", r.text());
    let runs = s.get("/api/runs", "").await.json();
    assert_eq!(
        runs.as_array().unwrap().len(),
        1,
        "only the fixture's run: {runs}"
    );
}

#[test]
fn table_and_number_queries() {
    let chart: Chart = serde_json::from_value(serde_json::json!({
        "title": "t", "type": "table", "x": "d", "y": ["a", "b"], "agg": "max", "limit": 5
    }))
    .unwrap();
    assert_eq!(
        chart_sql(&chart, "gold.t", Some("x > 1")),
        "SELECT \"d\", max(\"a\") AS \"a\", max(\"b\") AS \"b\" FROM gold.t WHERE x > 1 GROUP BY \"d\" ORDER BY \"d\" DESC LIMIT 5"
    );
    let bare: Chart =
        serde_json::from_value(serde_json::json!({"title": "t", "type": "table"})).unwrap();
    assert_eq!(
        chart_sql(&bare, "gold.t", None),
        "SELECT * FROM gold.t LIMIT 50"
    );
}
