//! Column lineage of the ShopFlow models (`sluice lineage ASSET.COLUMN`), checked against what each
//! model's SQL says (examples/shopflow/models).

mod common;

use serde_json::{Value, json};

use common::{sluice, sluice_ok};

/// The direct (depth 1) inputs of a column: `asset.column: SUBTYPE,…`, sorted.
fn inputs(project: &std::path::Path, target: &str) -> Vec<String> {
    let out: Value = serde_json::from_str(&sluice_ok(project, &["lineage", target, "--json"]))
        .unwrap_or_else(|e| panic!("lineage {target} --json: {e}"));
    let mut steps: Vec<String> = out["upstream"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["depth"] == 1)
        .map(|s| {
            let how: Vec<&str> = s["transformations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap())
                .collect();
            format!(
                "{}.{}: {}",
                s["asset"].as_str().unwrap(),
                s["column"].as_str().unwrap(),
                how.join(",")
            )
        })
        .collect();
    steps.sort();
    steps
}

#[test]
fn shopflow_columns_trace_to_their_sources() {
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("shopflow");
    common::demo(&project, "0.2", "11");

    let cases: &[(&str, &[&str])] = &[
        // `select *` through two CTEs, then the column by name.
        (
            "stg_orders.order_id",
            &["shop_app.orders.order_id: IDENTITY"],
        ),
        (
            "stg_orders.is_cancelled_or_abandoned",
            &["shop_app.orders.status: TRANSFORMATION"],
        ),
        (
            "stg_orders._loaded_at",
            &["shop_app.orders._ingested_at: IDENTITY"],
        ),
        // A column of a joined, deduplicated CTE.
        (
            "fct_orders.category",
            &["shop_app.products.category: IDENTITY"],
        ),
        // Map access is a computation on the map column.
        (
            "stg_events.page",
            &["clickstream.events.properties: TRANSFORMATION"],
        ),
        // coalesce over a left-joined CTE's aggregate: still an aggregation.
        (
            "dim_customer.lifetime_net_revenue",
            &["fct_orders.net_amount: AGGREGATION"],
        ),
        (
            "dim_customer.email_hash",
            &["stg_customers.email_hash: IDENTITY"],
        ),
        // A grouping expression selected again above the aggregate.
        (
            "mart_revenue.month",
            &["fct_orders.order_ts: TRANSFORMATION"],
        ),
        (
            "daily_active_users.active_users",
            &["stg_events.user_id: AGGREGATION"],
        ),
        // `sum(case when … then 1 else 0 end)`: the inputs only pick the branch.
        (
            "user_activity_features.views_7d",
            &[
                "stg_events.event_ts: CONDITIONAL",
                "stg_events.event_type: CONDITIONAL",
            ],
        ),
        // max over a cross-joined scalar aggregate.
        (
            "user_activity_features.feature_ts",
            &["stg_events.event_ts: AGGREGATION"],
        ),
        (
            "stg_customers.segment",
            &["crm.accounts.segment: TRANSFORMATION"],
        ),
    ];
    for (target, expected) in cases {
        assert_eq!(
            inputs(&project, target),
            expected.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            "inputs of {target}"
        );
    }

    // The whole path down from a source column, and the readers of it.
    let out: Value = serde_json::from_str(&sluice_ok(
        &project,
        &["lineage", "fct_orders.net_amount", "--json"],
    ))
    .unwrap();
    let upstream = out["upstream"].as_array().unwrap();
    // net_amount = line_amount - refunded share: the line's quantity and price (also summed per order
    // for the share, and deciding the CASE), the refunds summed per order, picked by kind.
    for expected in [
        json!({"depth": 1, "asset": "shop_app.order_items", "column": "quantity",
               "transformations": ["TRANSFORMATION", "AGGREGATION", "CONDITIONAL"]}),
        json!({"depth": 1, "asset": "shop_app.payments", "column": "amount", "transformations": ["AGGREGATION"]}),
        json!({"depth": 1, "asset": "shop_app.payments", "column": "kind", "transformations": ["CONDITIONAL"]}),
        json!({"depth": 2, "asset": "shop_app.orders", "column": "order_id", "transformations": ["IDENTITY"]}),
    ] {
        assert!(
            upstream.contains(&expected),
            "{expected} not in {upstream:#?}"
        );
    }
    let downstream: Vec<(String, String)> = out["downstream"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["asset"].as_str().unwrap().to_string(),
                s["column"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for reader in [
        ("daily_sales_by_category", "net_revenue"),
        ("mart_revenue", "net_revenue"),
        ("dim_customer", "lifetime_net_revenue"),
    ] {
        assert!(
            downstream.contains(&(reader.0.to_string(), reader.1.to_string())),
            "{reader:?} not in {downstream:?}"
        );
    }

    // The text form indents by depth; a source column is `source.table.column`.
    let text = sluice_ok(&project, &["lineage", "shop_app.orders.status"]);
    assert!(text.starts_with("shop_app.orders.status\n"), "{text}");
    assert!(
        text.contains("\n    stg_orders.status  TRANSFORMATION\n"),
        "{text}"
    );
    assert!(
        text.contains("\n      fct_orders.status  IDENTITY\n"),
        "{text}"
    );

    // Asset lineage is unchanged.
    let assets = sluice_ok(&project, &["lineage", "stg_orders"]);
    assert!(
        assets.starts_with("upstream of stg_orders:\n") && assets.contains("\n  shop_app.orders\n"),
        "{assets}"
    );

    // Unknown columns and assets are named, with what exists.
    let bad = sluice(&project, &["lineage", "stg_orders.order_idd"]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("`stg_orders` has no column `order_idd`")
            && err.contains("order_id, customer_id"),
        "{err}"
    );
    let bad = sluice(&project, &["lineage", "stg_ordrs.order_id"]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("no asset `stg_ordrs.order_id`"), "{err}");
}
