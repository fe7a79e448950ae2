//! Incremental ingestion by a cursor column: only new rows land, the high-water mark travels in the
//! same Delta commit as the rows, and the incremental silver model merges the changes.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{query_f64, query_json, sluice_ok};

fn latest_commit_info(table: &Path) -> serde_json::Value {
    let mut logs: Vec<_> = std::fs::read_dir(table.join("_delta_log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    logs.sort();
    let text = std::fs::read_to_string(logs.last().unwrap()).unwrap();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| v.get("commitInfo").cloned())
        .unwrap()
}

#[test]
fn incremental_ingestion_lands_only_new_rows_and_merges_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shop");
    common::demo(&dir, "0.05", "3");
    let db = dir.join("data/shop.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let old_max: String = conn
        .query_row("SELECT max(updated_at) FROM orders", [], |r| r.get(0))
        .unwrap();

    // The watermark is recorded in the same commit as the rows it covers.
    let table = dir.join("lake/bronze/shop_app/orders");
    let info = latest_commit_info(&table);
    assert_eq!(info["sluice.watermark"], old_max, "{info}");
    let bronze_before = query_f64(&dir, "select count(*) from bronze.shop_app__orders");

    // The application writes new orders and updates some existing ones.
    let touched = sluice_ingest::generator::append_orders(&db, 25, 99).unwrap();
    assert!(touched > 25);
    let changed: i64 = conn
        .query_row(
            "SELECT count(*) FROM orders WHERE updated_at > ?1",
            [&old_max],
            |r| r.get(0),
        )
        .unwrap();
    let new_max: String = conn
        .query_row("SELECT max(updated_at) FROM orders", [], |r| r.get(0))
        .unwrap();

    sluice_ok(&dir, &["run", "--select", "shop_app.orders+"]);
    let bronze_after = query_f64(&dir, "select count(*) from bronze.shop_app__orders");
    assert_eq!(
        bronze_after - bronze_before,
        changed as f64,
        "exactly the changed rows land"
    );
    assert_eq!(latest_commit_info(&table)["sluice.watermark"], new_max);

    // silver.stg_orders equals the source's current state, order by order.
    let mut stmt = conn
        .prepare(
            "SELECT order_id, status FROM (SELECT order_id, status, ROW_NUMBER() OVER (PARTITION BY order_id ORDER BY updated_at DESC) rn FROM orders) WHERE rn = 1",
        )
        .unwrap();
    let source: BTreeMap<i64, String> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let silver: BTreeMap<i64, String> =
        query_json(&dir, "select order_id, status from silver.stg_orders")
            .into_iter()
            .map(|r| {
                (
                    r["order_id"].as_i64().unwrap(),
                    r["status"].as_str().unwrap().to_string(),
                )
            })
            .collect();
    assert_eq!(silver, source);

    // Running again lands nothing and changes nothing.
    sluice_ok(&dir, &["run", "--select", "shop_app.orders+"]);
    assert_eq!(
        query_f64(&dir, "select count(*) from bronze.shop_app__orders"),
        bronze_after
    );
    assert_eq!(
        query_f64(&dir, "select count(*) from silver.stg_orders"),
        source.len() as f64
    );
}
