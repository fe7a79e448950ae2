//! The schema and deliberate dirt of `shop.db`.

use rusqlite::Connection;

use super::*;
use crate::generator::*;

#[test]
fn shop_db_has_the_contracted_schema_and_dirt() {
    let dir = ScratchDir::new("dirt-db");
    let report = generate(&config(0.1, 11), dir.path()).unwrap();
    let db = shop_db_path(dir.path());
    let conn = Connection::open(&db).unwrap();

    let types: Vec<(String, String)> = conn
        .prepare("SELECT name, type FROM pragma_table_info('orders') ORDER BY cid")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let expected = [
        ("order_id", "INTEGER"),
        ("customer_id", "INTEGER"),
        ("status", "TEXT"),
        ("amount", "REAL"),
        ("order_ts", "TEXT"),
        ("updated_at", "TEXT"),
    ];
    assert_eq!(
        types,
        expected
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .to_vec()
    );
    let pk: i64 = scalar(
        &db,
        "SELECT COUNT(*) FROM pragma_table_info('orders') WHERE pk > 0",
    );
    assert_eq!(pk, 0, "orders has no primary key");
    let index: i64 = scalar(
        &db,
        "SELECT COUNT(*) FROM pragma_index_info('orders_updated_at') WHERE name = 'updated_at'",
    );
    assert_eq!(index, 1);

    let q = |sql: &str| -> i64 { scalar(&db, sql) };
    let rows = q("SELECT COUNT(*) FROM orders");
    let exact_distinct = q("SELECT COUNT(*) FROM (SELECT DISTINCT * FROM orders)");
    assert_eq!(
        exact_distinct as u64, report.orders,
        "duplicates are exact copies"
    );
    assert_eq!(rows - exact_distinct, 10, "1% of 1,000 orders appear twice");
    assert_eq!(
        q("SELECT COUNT(DISTINCT order_id) FROM orders WHERE amount IS NULL"),
        5
    );
    assert_eq!(
        q("SELECT COUNT(DISTINCT order_id) FROM orders WHERE amount < 0"),
        3
    );
    assert_eq!(
        q("SELECT COUNT(*) FROM orders WHERE updated_at < order_ts"),
        0
    );
    assert_eq!(
        q(
            "SELECT COUNT(*) FROM orders WHERE order_ts < '2026-01-01T00:00:00Z' OR updated_at >= '2026-04-01T00:00:00Z'"
        ),
        0
    );
    // Clean amounts are their items' total.
    assert_eq!(
        q(
            "SELECT COUNT(*) FROM orders o JOIN (SELECT order_id, ROUND(SUM(quantity * unit_price), 2) AS t FROM order_items GROUP BY order_id) i USING (order_id) WHERE o.amount > 0 AND ABS(o.amount - i.t) > 0.001"
        ),
        0
    );
    // Every order has items, abandoned ones included.
    assert_eq!(
        q(
            "SELECT COUNT(DISTINCT order_id) FROM orders WHERE order_id NOT IN (SELECT order_id FROM order_items)"
        ),
        0
    );
    assert!(
        q(
            "SELECT COUNT(*) FROM order_items i JOIN orders o USING (order_id) WHERE o.status = 'abandoned'"
        ) > 0
    );
    assert_eq!(
        q(
            "SELECT COUNT(*) FROM order_items i JOIN products p USING (product_id) WHERE i.unit_price <> p.price"
        ),
        0
    );

    // Payments: one per paid order, refunds only for delivered orders and never above the amount.
    let paid_orders = q(
        "SELECT COUNT(DISTINCT order_id) FROM orders WHERE status IN ('placed','shipped','delivered') AND amount > 0",
    );
    assert_eq!(
        q("SELECT COUNT(*) FROM payments WHERE kind = 'payment'"),
        paid_orders
    );
    assert_eq!(
        q(
            "SELECT COUNT(*) FROM payments p JOIN (SELECT DISTINCT order_id, status, amount FROM orders) o USING (order_id) WHERE p.kind = 'payment' AND p.amount <> o.amount"
        ),
        0
    );
    let refunds = q("SELECT COUNT(*) FROM payments WHERE kind = 'refund'");
    let delivered = q(
        "SELECT COUNT(*) FROM payments p JOIN (SELECT DISTINCT order_id, status FROM orders) o USING (order_id) WHERE p.kind = 'payment' AND o.status = 'delivered'",
    );
    let share = refunds as f64 / delivered as f64;
    assert!((0.04..0.06).contains(&share), "refund share {share}");
    assert_eq!(
        q(
            "SELECT COUNT(*) FROM payments p JOIN (SELECT DISTINCT order_id, status, amount FROM orders) o USING (order_id) WHERE p.kind = 'refund' AND (o.status <> 'delivered' OR p.amount > o.amount OR p.amount <= 0)"
        ),
        0
    );
    assert!(
        q(
            "SELECT COUNT(*) FROM payments p JOIN (SELECT DISTINCT order_id, amount FROM orders) o USING (order_id) WHERE p.kind = 'refund' AND p.amount < o.amount"
        ) > 0,
        "some refunds are partial"
    );
    assert_eq!(
        q(
            "SELECT COUNT(*) FROM payments WHERE method NOT IN ('card','paypal','bank_transfer','gift_card')"
        ),
        0
    );

    let channels = q(
        "SELECT COUNT(*) FROM customers WHERE acquisition_channel NOT IN ('organic','paid_search','social','email','referral')",
    );
    assert_eq!(channels, 0);
    assert_eq!(q("SELECT COUNT(DISTINCT category) FROM products"), 10);
    let bad_ts = q(
        "SELECT COUNT(*) FROM customers WHERE created_at NOT GLOB '2026-0[1-3]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9]Z'",
    );
    assert_eq!(bad_ts, 0);
}
