//! `append_orders`: rows after every existing update, determinism, clear errors.

use std::path::Path;

use rusqlite::Connection;

use super::*;
use crate::generator::*;

fn latest_update(db: &Path) -> String {
    scalar(
        db,
        "SELECT MAX(t) FROM (SELECT MAX(updated_at) AS t FROM orders UNION ALL SELECT MAX(updated_at) FROM payments)",
    )
}

#[test]
fn append_orders_adds_rows_after_every_existing_update() {
    let dir = ScratchDir::new("append");
    let report = generate(&config(0.05, 9), dir.path()).unwrap();
    assert_eq!(report.orders, 500);
    let db = shop_db_path(dir.path());
    let before = latest_update(&db);
    let count = |sql: &str| -> i64 { scalar(&db, sql) };
    let after = |sql: &str| -> i64 {
        Connection::open(&db)
            .unwrap()
            .query_row(sql, [&before], |r| r.get(0))
            .unwrap()
    };
    let rows_before = count("SELECT COUNT(*) FROM orders");
    let items_before = count("SELECT COUNT(*) FROM order_items");
    let payments_before = count("SELECT COUNT(*) FROM payments");

    let touched = append_orders(&db, 50, 1).unwrap();

    let new_orders = count("SELECT COUNT(*) FROM orders") - rows_before;
    assert_eq!(new_orders, 50);
    assert_eq!(
        count("SELECT COUNT(*) FROM orders WHERE order_id > 500"),
        50
    );
    assert_eq!(
        after(
            "SELECT COUNT(*) FROM orders WHERE order_id > 500 AND (order_ts <= ?1 OR updated_at <= ?1 OR updated_at < order_ts)"
        ),
        0,
        "new orders come after {before}"
    );
    let updated_rows =
        after("SELECT COUNT(*) FROM orders WHERE order_id <= 500 AND updated_at > ?1");
    let updated_orders = after(
        "SELECT COUNT(DISTINCT order_id) FROM orders WHERE order_id <= 500 AND updated_at > ?1",
    );
    assert_eq!(updated_orders, 10, "n/5 existing orders change status");
    assert_eq!(
        after(
            "SELECT COUNT(*) FROM orders WHERE order_id <= 500 AND updated_at > ?1 AND status NOT IN ('shipped', 'delivered')"
        ),
        0
    );
    let new_items = count("SELECT COUNT(*) FROM order_items") - items_before;
    let new_payments = count("SELECT COUNT(*) FROM payments") - payments_before;
    assert_eq!(
        after("SELECT COUNT(*) FROM payments WHERE updated_at > ?1"),
        new_payments
    );
    assert!(new_items >= 50 && new_payments > 0);
    assert_eq!(
        touched as i64,
        new_orders + new_items + new_payments + updated_rows
    );
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM payments p JOIN orders o USING (order_id) WHERE o.order_id > 500 AND (p.amount <> o.amount OR o.status <> 'placed')"
        ),
        0
    );
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM orders o WHERE order_id > 500 AND status = 'placed' AND amount > 0 AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.order_id = o.order_id)"
        ),
        0
    );

    // A second append again lands after everything, including the first append.
    let middle = latest_update(&db);
    append_orders(&db, 10, 2).unwrap();
    let not_later: i64 = Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM orders WHERE order_id > 550 AND updated_at <= ?1",
            [&middle],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(not_later, 0);
    assert_eq!(
        count("SELECT COUNT(*) FROM orders WHERE order_id > 550"),
        10
    );
    assert!(latest_update(&db) > middle);
}

#[test]
fn append_orders_is_deterministic_for_the_seed() {
    let (a, b, c) = (
        ScratchDir::new("app-a"),
        ScratchDir::new("app-b"),
        ScratchDir::new("app-c"),
    );
    for dir in [&a, &b, &c] {
        generate(&config(0.02, 4), dir.path()).unwrap();
    }
    let ta = append_orders(&shop_db_path(a.path()), 30, 5).unwrap();
    let tb = append_orders(&shop_db_path(b.path()), 30, 5).unwrap();
    append_orders(&shop_db_path(c.path()), 30, 6).unwrap();
    assert_eq!(ta, tb);
    assert_eq!(dump(&shop_db_path(a.path())), dump(&shop_db_path(b.path())));
    assert_ne!(dump(&shop_db_path(a.path())), dump(&shop_db_path(c.path())));
    assert_eq!(append_orders(&shop_db_path(a.path()), 0, 5).unwrap(), 0);
}

#[test]
fn append_orders_reports_a_missing_or_empty_database() {
    let dir = ScratchDir::new("append-missing");
    let missing = dir.path().join("nope.db");
    let err = append_orders(&missing, 5, 1).unwrap_err();
    assert!(matches!(err, GeneratorError::Sqlite { .. }), "{err}");
    assert!(!missing.exists(), "a missing database is not created");

    let empty = dir.path().join("empty.db");
    let conn = Connection::open(&empty).unwrap();
    conn.execute_batch(app_db::SCHEMA).unwrap();
    drop(conn);
    let err = append_orders(&empty, 5, 1).unwrap_err();
    assert!(
        matches!(
            err,
            GeneratorError::EmptyTable {
                table: "customers",
                ..
            }
        ),
        "{err}"
    );

    let conn = Connection::open(&empty).unwrap();
    conn.execute_batch("INSERT INTO customers (customer_id) VALUES (1); INSERT INTO products (product_id, price) VALUES (1, 9.99); INSERT INTO orders (order_id, updated_at) VALUES (1, 'yesterday');").unwrap();
    drop(conn);
    let err = append_orders(&empty, 5, 1).unwrap_err();
    assert!(
        err.to_string()
            .contains("orders.updated_at holds \"yesterday\""),
        "{err}"
    );
}
