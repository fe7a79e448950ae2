//! `kind: http` against a local JSON API (axum on 127.0.0.1:0, see `support/api.rs`): the four
//! pagination styles with their auth, nested JSON, retries that honor `Retry-After`, the rate limit,
//! clear errors for malformed pages, and incremental windows that land every record exactly once.

mod support;

use std::time::{Duration, Instant};

use arrow::datatypes::DataType;
use sluice_core::SourceDecl;
use sluice_ingest::{IngestContext, Source, build_source};
use sluice_lake::{Lake, TableId};
use support::api::{Fault, record, start};
use support::lake::{count, lake, query};

/// `n` records with ids 1..=n, `updated_at` one minute apart from midnight.
fn records(n: i64) -> Vec<serde_json::Value> {
    (1..=n)
        .map(|i| record(i, &format!("2024-01-01T00:{i:02}:00Z")))
        .collect()
}

fn source(base: &str, body: &str) -> Box<dyn Source> {
    let decl = SourceDecl::parse(
        std::path::Path::new("sources/api.yml"),
        &format!("kind: http\nbase_url: {base}\nretry_backoff: 10ms\nmax_retry_wait: 3s\n{body}"),
    )
    .unwrap();
    build_source(&decl, ".".as_ref()).unwrap()
}

/// The four styles, each with the auth its endpoint demands.
const ALL_STYLES: &str = "
tables:
  - name: by_page
    path: /v1/page
    records: data.items
    pagination: {type: page, size_param: per_page, size: 5}
  - name: by_offset
    path: /v1/offset
    records: results
    pagination: {type: offset, size: 5}
  - name: by_cursor
    path: /v1/cursor
    records: items
    pagination: {type: cursor, next: meta.next}
  - name: by_link
    path: /v1/link
    pagination: {type: link}
";

#[tokio::test]
async fn every_pagination_style_lands_every_record_once() {
    let (api, base) = start(records(23)).await;
    let (_dir, lake) = lake();
    // One auth per source: each table gets its own source file with the auth its endpoint needs.
    let auths = [
        ("by_page", "auth: {type: bearer, token: tok-123}\n"),
        (
            "by_offset",
            "auth: {type: api_key, header: X-Api-Key, key: k-456}\n",
        ),
        (
            "by_cursor",
            "auth: {type: basic, username: u, password: p}\n",
        ),
        ("by_link", ""),
    ];
    for (table, auth) in auths {
        api.clear_log();
        let s = source(&base, &format!("{auth}{ALL_STYLES}"));
        let report = s
            .ingest(table, &IngestContext::new(lake.clone(), "run-1"))
            .await
            .unwrap();
        assert_eq!(
            (report.rows_read, report.rows_written, report.commits),
            (23, 23, 1),
            "{table}"
        );
        let id = TableId::bronze("api", table);
        let got = query(
            &lake,
            &id,
            "SELECT count(*), count(DISTINCT id), sum(amount) FROM t",
        )
        .await;
        assert_eq!(got, [["23", "23", "2760"]], "{table}");
        // 5 pages of 5, 5, 5, 5, 3; the page and offset styles stop at the short page.
        let pages = api.requests();
        assert_eq!(pages.len(), 5, "{table}: {pages:?}");
        assert!(pages.iter().all(|p| p.status == 200), "{table}: {pages:?}");
        // A re-run replaces the snapshot: still 23.
        s.ingest(table, &IngestContext::new(lake.clone(), "run-2"))
            .await
            .unwrap();
        assert_eq!(count(&lake, &id).await, 23, "{table}");
    }
    // Wrong credentials: a clear, permanent error.
    let s = source(
        &base,
        &format!("auth: {{type: bearer, token: nope}}\n{ALL_STYLES}"),
    );
    let err = s
        .ingest("by_page", &IngestContext::new(lake.clone(), "run-3"))
        .await
        .unwrap_err();
    assert!(!err.is_transient(), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("page 1 (") && msg.contains("HTTP 401 Unauthorized"),
        "{msg}"
    );
    assert!(!msg.contains("nope"), "the token never shows: {msg}");

    // Nested JSON lands as structs and lists.
    let id = TableId::bronze("api", "by_cursor");
    let table = lake.load(&id).await.unwrap().unwrap();
    let schema = sluice_lake::arrow_schema(&table).unwrap();
    let customer = schema
        .field_with_name("customer")
        .unwrap()
        .data_type()
        .clone();
    let DataType::Struct(fields) = customer else {
        panic!("customer is {customer}")
    };
    assert!(matches!(
        fields.find("address").unwrap().1.data_type(),
        DataType::Struct(_)
    ));
    let tags = schema.field_with_name("tags").unwrap().data_type().clone();
    assert!(
        matches!(&tags, DataType::List(f) if f.data_type() == &DataType::Utf8),
        "{tags}"
    );
    let got = query(
        &lake,
        &id,
        "SELECT customer['name'], customer['address']['city'], array_length(tags) FROM t WHERE id = 6",
    )
    .await;
    assert_eq!(got, [["c6", "Oslo", "2"]]);
}

#[tokio::test]
async fn retries_honor_retry_after_and_the_rate_limit_spaces_requests() {
    let (api, base) = start(records(12)).await;
    let (_dir, lake) = lake();
    // The server itself allows one request per 25 ms; the source's 20/s (one per 50 ms) keeps
    // under it with room for the scheduling jitter of a loaded machine.
    *api.min_gap.lock().unwrap() = Some(Duration::from_millis(25));
    api.fault("offset", "0", Fault::TooMany("1"));
    api.fault("offset", "5", Fault::ServerError);
    api.fault("offset", "5", Fault::ServerError);
    let s = source(
        &base,
        &format!("auth: {{type: api_key, key: k-456}}\nrate_limit: 20/s\n{ALL_STYLES}"),
    );
    let started = Instant::now();
    let report = s
        .ingest("by_offset", &IngestContext::new(lake.clone(), "run-1"))
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(report.rows_written, 12);
    let got = query(
        &lake,
        &TableId::bronze("api", "by_offset"),
        "SELECT count(DISTINCT id) FROM t",
    )
    .await;
    assert_eq!(got, [["12"]], "every record once, despite the retries");
    let seen = api.requests();
    let statuses: Vec<u16> = seen.iter().map(|r| r.status).collect();
    // The only 429 is the injected one: the rate limit never tripped the server's.
    assert_eq!(statuses, [429, 200, 500, 500, 200, 200]);
    // The 429 asked for one second; the retry waited for it.
    let waited = seen[1].at - seen[0].at;
    assert!(waited >= Duration::from_millis(990), "{waited:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    // 20/s: no two requests closer than 50 ms (minus scheduling slack).
    for pair in seen.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(gap >= Duration::from_millis(25), "{gap:?} between {pair:?}");
    }

    // A server that keeps failing: a transient error after the configured retries.
    *api.min_gap.lock().unwrap() = None;
    for _ in 0..3 {
        api.fault("page", "1", Fault::ServerError);
    }
    let s = source(
        &base,
        &format!("retries: 2\nauth: {{type: bearer, token: tok-123}}\n{ALL_STYLES}"),
    );
    let err = s
        .ingest("by_page", &IngestContext::new(lake.clone(), "run-2"))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(
            "HTTP 500 Internal Server Error: upstream exploded (gave up after 3 attempts)"
        ),
        "{msg}"
    );
    assert!(
        !lake
            .exists(&TableId::bronze("api", "by_page"))
            .await
            .unwrap(),
        "nothing landed"
    );
}

#[tokio::test]
async fn malformed_pages_are_clear_errors_naming_the_page() {
    let (api, base) = start(records(12)).await;
    let (_dir, lake) = lake();
    let body = format!("auth: {{type: bearer, token: tok-123}}\n{ALL_STYLES}");
    api.fault("page", "2", Fault::NotJson);
    let err = source(&base, &body)
        .ingest("by_page", &IngestContext::new(lake.clone(), "run-1"))
        .await
        .unwrap_err();
    assert!(!err.is_transient(), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "api.by_page: page 2 ({base}/v1/page?per_page=5&page=2): the body is not JSON (expected \
             value at line 1 column 1); expected an object with an array of records at \
             `data.items`; it starts with \"<html>gateway oops</html>\""
        )
    );
    api.fault("page", "3", Fault::WrongShape);
    let err = source(&base, &body)
        .ingest("by_page", &IngestContext::new(lake.clone(), "run-2"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "api.by_page: page 3 ({base}/v1/page?per_page=5&page=3): expected an array of records \
             at `data.items`, found an object"
        )
    );
    // A full load that would stop early at `max_pages` fails instead of landing a partial snapshot.
    let capped = body.replace("size: 5}\n", "size: 5}\n    max_pages: 2\n");
    let err = source(&base, &capped)
        .ingest("by_page", &IngestContext::new(lake.clone(), "run-3"))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("stopped at max_pages = 2 with more pages left"),
        "{err}"
    );
    // A full load is one commit: the failed runs landed nothing.
    assert!(
        !lake
            .exists(&TableId::bronze("api", "by_page"))
            .await
            .unwrap()
    );
}

/// The incremental table over the page-numbered endpoint, 5 records a page.
const INCREMENTAL: &str = "
auth: {type: bearer, token: tok-123}
tables:
  - name: orders
    path: /v1/page
    records: data.items
    primary_key: [id]
    pagination: {type: page, size_param: per_page, size: 5}
    incremental: {param: updated_since, cursor_field: updated_at}
";

async fn landed_ids(lake: &Lake) -> Vec<i64> {
    query(
        lake,
        &TableId::bronze("api", "orders"),
        "SELECT id FROM t ORDER BY id, updated_at",
    )
    .await
    .into_iter()
    .map(|r| r[0].parse().unwrap())
    .collect()
}

#[tokio::test]
async fn incremental_second_run_asks_for_and_lands_only_new_records() {
    let (api, base) = start(records(12)).await;
    let (_dir, lake) = lake();
    let s = source(&base, INCREMENTAL);
    let first = s
        .ingest("orders", &IngestContext::new(lake.clone(), "run-1"))
        .await
        .unwrap();
    assert_eq!(
        (first.rows_written, first.commits),
        (12, 3),
        "one commit per page"
    );
    assert_eq!(
        first.watermark,
        Some(serde_json::json!("2024-01-01T00:12:00Z"))
    );
    assert!(
        api.requests()
            .iter()
            .all(|r| !r.query.contains_key("updated_since"))
    );

    // Two new records, one update; the API's `>=` filter also returns record 12 again.
    {
        let mut records = api.records.lock().unwrap();
        records[4] = record(5, "2024-01-01T00:30:00Z");
        records.push(record(13, "2024-01-01T00:20:00Z"));
        records.push(record(14, "2024-01-01T00:25:00Z"));
    }
    api.clear_log();
    let second = s
        .ingest("orders", &IngestContext::new(lake.clone(), "run-2"))
        .await
        .unwrap();
    let asked: Vec<Option<String>> = api
        .requests()
        .iter()
        .map(|r| r.query.get("updated_since").cloned())
        .collect();
    assert_eq!(
        asked,
        [Some("2024-01-01T00:12:00Z".to_string())],
        "one page of 4 < 5"
    );
    assert_eq!(
        (second.rows_read, second.rows_written),
        (4, 3),
        "record 12 is not landed again"
    );
    assert_eq!(
        second.watermark,
        Some(serde_json::json!("2024-01-01T00:30:00Z"))
    );
    let mut want: Vec<i64> = (1..=14).collect();
    want.insert(5, 5);
    assert_eq!(
        landed_ids(&lake).await,
        want,
        "5 twice (two versions), every other id once"
    );

    // Nothing new: one request, nothing lands, the mark stays.
    let third = s
        .ingest("orders", &IngestContext::new(lake.clone(), "run-3"))
        .await
        .unwrap();
    assert_eq!((third.rows_written, third.commits), (0, 0));
    assert_eq!(
        third.watermark,
        Some(serde_json::json!("2024-01-01T00:30:00Z"))
    );
}

#[tokio::test]
async fn an_interrupted_window_resumes_without_loss_or_duplicates() {
    // Records out of cursor order: the largest `updated_at` is on page 1, so advancing the mark
    // before the window ends would skip the records of later pages.
    let mut all = records(14);
    all[0] = record(1, "2024-01-01T00:59:00Z");
    let (api, base) = start(all).await;
    let (_dir, lake) = lake();
    // A record whose amount is not a number goes to quarantine, naming its page and place.
    api.records.lock().unwrap()[6]["amount"] = serde_json::json!("lots");
    api.fault("page", "3", Fault::ServerError);
    api.fault("page", "3", Fault::NotJson);
    let s = source(&base, &format!("retries: 1\n{INCREMENTAL}"));
    let err = s
        .ingest("orders", &IngestContext::new(lake.clone(), "run-1"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("page 3 ("), "{err}");
    // Pages 1 and 2 landed (one record quarantined); the mark has not moved yet.
    assert_eq!(landed_ids(&lake).await, [1, 2, 3, 4, 5, 6, 8, 9, 10]);
    let id = TableId::bronze("api", "orders");
    let last = lake
        .commit_metadata(&id, "sluice:ingest:api.orders")
        .await
        .unwrap()
        .unwrap();
    assert!(
        !last.metadata.contains_key("sluice.watermark"),
        "{:?}",
        last.metadata
    );
    let resume = &last.metadata["sluice.http.resume"];
    assert_eq!(resume["max"], "2024-01-01T00:59:00Z");
    assert!(
        resume["next"].as_str().unwrap().ends_with("page=3"),
        "{resume}"
    );
    let quarantined = query(
        &lake,
        &TableId::quarantine("api.orders"),
        "SELECT line, reason FROM t",
    )
    .await;
    assert_eq!(quarantined.len(), 1);
    assert_eq!(quarantined[0][0], "2");
    assert!(
        quarantined[0][1].starts_with(&format!(
            "page 2 ({base}/v1/page?per_page=5&page=2): record 2: column `amount`"
        )),
        "{quarantined:?}"
    );

    // The next run starts at page 3 of the same window, then advances the mark past everything.
    api.clear_log();
    let second = s
        .ingest("orders", &IngestContext::new(lake.clone(), "run-2"))
        .await
        .unwrap();
    let pages: Vec<String> = api
        .requests()
        .iter()
        .map(|r| r.query["page"].clone())
        .collect();
    assert_eq!(pages, ["3"]);
    assert_eq!(second.rows_written, 4);
    assert_eq!(
        second.watermark,
        Some(serde_json::json!("2024-01-01T00:59:00Z"))
    );
    let mut want: Vec<i64> = (1..=14).collect();
    want.retain(|i| *i != 7);
    assert_eq!(landed_ids(&lake).await, want, "every record once");
    let last = lake
        .commit_metadata(&id, "sluice:ingest:api.orders")
        .await
        .unwrap()
        .unwrap();
    assert!(!last.metadata.contains_key("sluice.http.resume"));
}

#[tokio::test]
async fn max_pages_splits_a_window_across_runs_from_the_initial_mark() {
    let (api, base) = start(records(14)).await;
    let (_dir, lake) = lake();
    let body = INCREMENTAL.replace(
        "cursor_field: updated_at}",
        "cursor_field: updated_at, initial: \"2024-01-01T00:01:00Z\"}\n    max_pages: 2",
    );
    let s = source(&base, &body);
    let first = s
        .ingest("orders", &IngestContext::new(lake.clone(), "run-1"))
        .await
        .unwrap();
    // Record 1 sits at the initial mark: the API returns it, the source skips it.
    assert_eq!(
        (first.rows_read, first.rows_written, first.commits),
        (10, 9, 2)
    );
    assert_eq!(
        first.watermark,
        Some(serde_json::json!("2024-01-01T00:01:00Z")),
        "not yet advanced"
    );
    let asked: Vec<(String, String)> = api
        .requests()
        .iter()
        .map(|r| (r.query["page"].clone(), r.query["updated_since"].clone()))
        .collect();
    let since = "2024-01-01T00:01:00Z".to_string();
    assert_eq!(
        asked,
        [
            ("1".to_string(), since.clone()),
            ("2".to_string(), since.clone())
        ]
    );
    api.clear_log();
    let second = s
        .ingest("orders", &IngestContext::new(lake.clone(), "run-2"))
        .await
        .unwrap();
    let asked: Vec<(String, String)> = api
        .requests()
        .iter()
        .map(|r| (r.query["page"].clone(), r.query["updated_since"].clone()))
        .collect();
    assert_eq!(
        asked,
        [("3".to_string(), since)],
        "the same window, where it stopped"
    );
    assert_eq!(second.rows_written, 4);
    assert_eq!(
        second.watermark,
        Some(serde_json::json!("2024-01-01T00:14:00Z"))
    );
    assert_eq!(landed_ids(&lake).await, (2..=14).collect::<Vec<i64>>());
}
