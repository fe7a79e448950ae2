//! Keyset paging through the router: following `X-Next-Cursor` visits every row once, in order.

use axum::http::StatusCode;
use serde_json::Value;

use super::NEXT_CURSOR;
use crate::test_support::{SALES_ROWS, Served};

const ROWS: &str = "/api/assets/files.sales/rows";

/// Follows the cursors from `first` to the end; returns every row and the number of pages.
async fn walk(s: &Served, first: &str) -> (Vec<Value>, usize) {
    let mut rows = Vec::new();
    let mut pages = 0;
    let mut uri = first.to_string();
    loop {
        let r = s.get(&uri, "").await;
        assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.text());
        pages += 1;
        rows.extend(r.json().as_array().unwrap().iter().cloned());
        let Some(cursor) = r.headers.get(NEXT_CURSOR) else {
            assert!(r.headers.get("link").is_none(), "no next page, no Link");
            break;
        };
        let link = r.headers["link"].to_str().unwrap().to_string();
        let cursor = cursor.to_str().unwrap();
        assert!(link.ends_with("; rel=\"next\""), "{link}");
        assert!(link.contains(&format!("cursor={cursor}")), "{link}");
        // The Link target is the next page: the same request with the cursor.
        uri = link
            .trim_start_matches('<')
            .split('>')
            .next()
            .unwrap()
            .to_string();
        assert!(pages < 100, "the cursors do not end");
    }
    (rows, pages)
}

fn ids(rows: &[Value]) -> Vec<i64> {
    rows.iter()
        .map(|r| r["sale_id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn cursors_page_through_the_whole_table_in_order() {
    let s = Served::new().await;
    let (rows, pages) = walk(&s, &format!("{ROWS}?order=sale_id&limit=1000")).await;
    assert_eq!(pages, 3);
    assert_eq!(ids(&rows), (1..=SALES_ROWS).collect::<Vec<_>>());

    // A page that ends exactly at the end of the table has no next cursor.
    let r = s
        .get(&format!("{ROWS}?order=sale_id&limit={SALES_ROWS}"), "")
        .await;
    assert!(r.headers.get(NEXT_CURSOR).is_none());
    // Offset paging does not produce cursors.
    let r = s
        .get(&format!("{ROWS}?order=sale_id&limit=10&offset=10"), "")
        .await;
    assert!(r.headers.get(NEXT_CURSOR).is_none());
}

#[tokio::test]
async fn cursors_follow_a_descending_order_with_nulls_and_filters() {
    let s = Served::new().await;
    // `region` has nulls (first when descending) and repeats; `sale_id` breaks the ties.
    let first = format!(
        "{ROWS}?order=region.desc,sale_id&amount=gt.100&columns=sale_id,region&limit=333&format=json"
    );
    let (rows, pages) = walk(&s, &first).await;
    let all = s
        .get(
            &format!(
                "{ROWS}?order=region.desc,sale_id&amount=gt.100&columns=sale_id,region&limit=100000"
            ),
            "",
        )
        .await
        .json();
    let all = all.as_array().unwrap();
    assert!(all.len() > 1000, "{}", all.len());
    assert_eq!(pages, all.len().div_ceil(333));
    assert_eq!(
        &rows, all,
        "the pages together are the whole ordered result"
    );
    assert!(rows[0]["region"].is_null(), "nulls first when descending");
}

#[tokio::test]
async fn a_cursor_belongs_to_its_order() {
    let s = Served::new().await;
    let r = s.get(&format!("{ROWS}?order=sale_id&limit=5"), "").await;
    let cursor = r.headers[NEXT_CURSOR].to_str().unwrap().to_string();
    let next = s
        .get(&format!("{ROWS}?order=sale_id&limit=5&cursor={cursor}"), "")
        .await;
    assert_eq!(ids(next.json().as_array().unwrap()), [6, 7, 8, 9, 10]);
    let r = s
        .get(&format!("{ROWS}?order=amount&limit=5&cursor={cursor}"), "")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let err = r.json()["error"].as_str().unwrap().to_string();
    assert!(
        err.contains("made for order=sale_id.asc.nullslast"),
        "{err}"
    );
    let r = s
        .get(&format!("{ROWS}?order=sale_id&cursor=%21%21"), "")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}
