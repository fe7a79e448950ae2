//! The deliberate dirt of the clickstream and CRM files, down to tiny scales.

use std::collections::HashSet;

use serde_json::Value as Json;

use super::*;
use crate::generator::clock::START;
use crate::generator::events::{DRIFT_FROM_FILE, WINDOW};
use crate::generator::*;

#[test]
fn clickstream_has_late_bot_and_drifting_events() {
    let dir = ScratchDir::new("dirt-events");
    let report = generate(&config(0.1, 5), dir.path()).unwrap();
    assert_eq!(report.event_files, 6);
    let mut ids = HashSet::new();
    let mut total = 0;
    for file in 1..=6u64 {
        let events = events(dir.path(), file);
        total += events.len();
        let window_start = START + (file as i64 - 1) * WINDOW;
        let window_end = window_start + WINDOW;
        let times: Vec<i64> = events.iter().map(event_time).collect();
        assert!(
            times.iter().all(|&t| t >= START && t < window_end),
            "file {file}: event after its window"
        );
        let late = times.iter().filter(|&&t| t < window_start).count();
        let bots: Vec<&Json> = events.iter().filter(|e| is_bot(e)).collect();
        let late_share = late as f64 / events.len() as f64;
        let bot_share = bots.len() as f64 / events.len() as f64;
        if file == 1 {
            assert_eq!(late, 0);
        } else {
            assert!(
                (0.02..0.04).contains(&late_share),
                "file {file}: late share {late_share}"
            );
        }
        assert!(
            (0.04..0.06).contains(&bot_share),
            "file {file}: bot share {bot_share}"
        );
        assert!(bots.iter().all(|e| e["user_id"].is_null()));
        assert!(
            times.windows(2).any(|w| w[0] > w[1]),
            "file {file} is sorted by time"
        );
        for e in &events {
            assert!(
                ids.insert(e["event_id"].as_str().unwrap().to_string()),
                "duplicate event id"
            );
            let props = e["properties"].as_object().unwrap();
            assert_eq!(
                props.contains_key("campaign"),
                file >= DRIFT_FROM_FILE,
                "file {file}: {e}"
            );
            for key in ["page", "referrer", "device"] {
                assert!(props[key].is_string(), "{e}");
            }
            let kind = e["event_type"].as_str().unwrap();
            assert!(
                [
                    "page_view",
                    "product_view",
                    "add_to_cart",
                    "checkout",
                    "purchase"
                ]
                .contains(&kind)
            );
        }
        if file >= DRIFT_FROM_FILE {
            assert!(
                events
                    .iter()
                    .any(|e| e["properties"]["campaign"].is_string())
            );
        }
        let known = events.iter().filter(|e| e["user_id"].is_i64()).count();
        assert!(
            known > events.len() / 2,
            "file {file}: only {known} logged-in events"
        );
    }
    assert_eq!(total as u64, report.events);
    let purchases = (1..=6)
        .flat_map(|f| events(dir.path(), f))
        .filter(|e| e["event_type"] == "purchase")
        .count();
    assert!(purchases > 0);
}

#[test]
fn tiny_scale_still_has_every_table_file_and_kind_of_dirt() {
    let dir = ScratchDir::new("tiny");
    let r = generate(&config(0.01, 42), dir.path()).unwrap();
    for (what, n) in [
        ("customers", r.customers),
        ("products", r.products),
        ("orders", r.orders),
        ("order_items", r.order_items),
        ("payments", r.payments),
        ("events", r.events),
        ("crm_accounts", r.crm_accounts),
    ] {
        assert!(n >= 1, "{what} is empty");
    }
    let db = shop_db_path(dir.path());
    let dups: i64 = scalar(
        &db,
        "SELECT COUNT(*) - COUNT(DISTINCT order_id) FROM orders",
    );
    let nulls: i64 = scalar(&db, "SELECT COUNT(*) FROM orders WHERE amount IS NULL");
    let negatives: i64 = scalar(&db, "SELECT COUNT(*) FROM orders WHERE amount < 0");
    assert!(dups >= 1 && nulls >= 1 && negatives >= 1);
    for file in 1..=6 {
        let events = events(dir.path(), file);
        assert!(events.iter().any(is_bot), "file {file} has no bot event");
        if file > 1 {
            let start = START + (file as i64 - 1) * WINDOW;
            assert!(
                events.iter().any(|e| event_time(e) < start),
                "file {file} has no late event"
            );
        }
    }
    let csv = std::fs::read_to_string(crm_accounts_path(dir.path())).unwrap();
    let bad = csv.lines().filter(|l| csv_fields(l) != 6).count();
    assert_eq!(bad, 2);
}

/// Fields of one CSV line (enough for these lines: no embedded newlines).
fn csv_fields(line: &str) -> usize {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(line.as_bytes());
    reader.records().next().unwrap().unwrap().len()
}
