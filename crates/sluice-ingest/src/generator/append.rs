//! Growing an existing `shop.db`, to test incremental (cursor-based) ingestion.
//!
//! An incremental source reads `WHERE updated_at > last watermark`. To exercise that, new orders and
//! status changes must carry an `updated_at` strictly after everything already in the database, even
//! when that lies beyond the generator's 90-day range. Everything is a function of the database's
//! current content, `n` and the seed.

use std::path::Path;

use rand::Rng;
use rand::seq::index;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::app_db::{INSERT_ITEM, INSERT_ORDER, INSERT_PAYMENT, StepError, in_transaction};
use super::clock::{HOUR, MINUTE, START, iso, parse_iso};
use super::orders::{Order, draw_items, is_paid, payment_for};
use super::world::weighted;
use super::{GeneratorError, STREAM_APPEND, rng_for};

/// Statuses of freshly placed orders and their relative weights.
const NEW_STATUSES: [(&str, u32); 3] = [("placed", 85), ("abandoned", 10), ("cancelled", 5)];

/// Appends new orders (with items and payments) and status updates to an existing shop.db, for testing
/// incremental ingestion: `n` new orders with order_ts/updated_at AFTER every existing updated_at, plus
/// updates of `n/5` existing orders' status with a fresh updated_at. Deterministic for the seed.
///
/// "Every existing updated_at" covers `orders` and `payments` (and `orders.order_ts`,
/// `payments.paid_at`). The updated orders are placed or shipped ones, moved one step forward
/// (placed → shipped, shipped → delivered); fewer than `n/5` when fewer exist. New orders follow each
/// other by 1 to 120 seconds. Returns the rows touched: inserted orders, items and payments plus
/// updated order rows (an order with a duplicate row counts twice). All changes are one transaction.
pub fn append_orders(db_path: &Path, n: u64, seed: u64) -> Result<u64, GeneratorError> {
    let mut conn = Connection::open_with_flags(
        db_path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(GeneratorError::sqlite(
        db_path,
        "opening an existing shop.db (generate it first)",
    ))?;
    let state = read_state(&conn, db_path)?;
    let mut rng = rng_for(seed, STREAM_APPEND);

    let touched = in_transaction(&mut conn, db_path, "appending orders", |tx| {
        let mut insert_order = tx.prepare(INSERT_ORDER)?;
        let mut insert_item = tx.prepare(INSERT_ITEM)?;
        let mut insert_payment = tx.prepare(INSERT_PAYMENT)?;
        let mut touched = 0u64;
        let mut now = state.latest;
        let mut next_item_id = state.max_item_id + 1;
        let mut next_payment_id = state.max_payment_id + 1;
        for order_id in (state.max_order_id + 1..).take(n as usize) {
            now += rng.random_range(1..=120);
            let customer_id = state.customers[rng.random_range(0..state.customers.len())];
            let status = weighted(&mut rng, &NEW_STATUSES);
            let updated_at = match status {
                "abandoned" => now + rng.random_range(15 * MINUTE..2 * HOUR),
                "cancelled" => now + rng.random_range(MINUTE..HOUR),
                _ => now,
            };
            let (items, total) =
                draw_items(&mut rng, &state.catalogue, order_id, &mut next_item_id);
            let order = Order {
                order_id,
                customer_id,
                status,
                amount: Some(total),
                order_ts: now,
                updated_at,
            };
            touched += insert_order.execute(params![
                order.order_id,
                order.customer_id,
                order.status,
                order.amount,
                iso(order.order_ts)?,
                iso(order.updated_at)?
            ])? as u64;
            for i in &items {
                touched += insert_item.execute(params![
                    i.order_item_id,
                    i.order_id,
                    i.product_id,
                    i.quantity,
                    i.unit_price
                ])? as u64;
            }
            if is_paid(&order) {
                let mut p = payment_for(&mut rng, &order, total);
                p.payment_id = next_payment_id;
                next_payment_id += 1;
                touched += insert_payment.execute(params![
                    p.payment_id,
                    p.order_id,
                    p.kind,
                    p.method,
                    p.amount,
                    iso(p.paid_at)?,
                    iso(p.updated_at)?
                ])? as u64;
            }
        }

        let span = (now - state.latest).max(1);
        let updates = ((n / 5) as usize).min(state.progressable.len());
        let mut picks = index::sample(&mut rng, state.progressable.len(), updates).into_vec();
        picks.sort_unstable();
        let mut update =
            tx.prepare("UPDATE orders SET status = ?1, updated_at = ?2 WHERE order_id = ?3")?;
        for pick in picks {
            let (order_id, status) = &state.progressable[pick];
            let next = if status.as_str() == "placed" {
                "shipped"
            } else {
                "delivered"
            };
            let updated_at = state.latest + rng.random_range(1..=span);
            touched += update.execute(params![next, iso(updated_at)?, order_id])? as u64;
        }
        Ok::<u64, StepError>(touched)
    })?;
    tracing::info!(path = %db_path.display(), n, seed, touched, "appended orders");
    Ok(touched)
}

/// What `append_orders` needs to know about the database before changing it.
struct State {
    /// The latest timestamp in `orders` and `payments` (seconds since the epoch).
    latest: i64,
    customers: Vec<i64>,
    /// `(product_id, price)` of the products with a price.
    catalogue: Vec<(i64, f64)>,
    max_order_id: i64,
    max_item_id: i64,
    max_payment_id: i64,
    /// `(order_id, status)` of the distinct placed or shipped orders, by order_id.
    progressable: Vec<(i64, String)>,
}

fn read_state(conn: &Connection, path: &Path) -> Result<State, GeneratorError> {
    let mut latest: Option<i64> = None;
    for (table, column) in [
        ("orders", "updated_at"),
        ("orders", "order_ts"),
        ("payments", "updated_at"),
        ("payments", "paid_at"),
    ] {
        // ISO-8601 UTC text of one shape sorts like the instants it names.
        let sql = format!("SELECT MAX({column}) FROM {table}");
        let max: Option<String> =
            conn.query_row(&sql, [], |row| row.get(0))
                .map_err(GeneratorError::sqlite(
                    path,
                    "reading the latest timestamps",
                ))?;
        if let Some(text) = max {
            let seconds = parse_iso(&text).ok_or_else(|| GeneratorError::BadTimestamp {
                path: path.to_path_buf(),
                table,
                column,
                value: text.clone(),
            })?;
            latest = latest.max(Some(seconds));
        }
    }

    let customers: Vec<i64> = query_all(
        conn,
        path,
        "SELECT customer_id FROM customers ORDER BY customer_id",
        |row| row.get(0),
    )?;
    let catalogue: Vec<(i64, f64)> = query_all(
        conn,
        path,
        "SELECT product_id, price FROM products WHERE price IS NOT NULL ORDER BY product_id",
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    if customers.is_empty() {
        return Err(GeneratorError::EmptyTable {
            path: path.to_path_buf(),
            table: "customers",
        });
    }
    if catalogue.is_empty() {
        return Err(GeneratorError::EmptyTable {
            path: path.to_path_buf(),
            table: "products",
        });
    }
    let max_id = |table: &str, column: &str| -> Result<i64, GeneratorError> {
        let sql = format!("SELECT MAX({column}) FROM {table}");
        conn.query_row(&sql, [], |row| row.get::<_, Option<i64>>(0))
            .optional()
            .map(|v| v.flatten().unwrap_or(0))
            .map_err(GeneratorError::sqlite(path, "reading the largest ids"))
    };
    Ok(State {
        latest: latest.unwrap_or(START - 1),
        customers,
        catalogue,
        max_order_id: max_id("orders", "order_id")?,
        max_item_id: max_id("order_items", "order_item_id")?,
        max_payment_id: max_id("payments", "payment_id")?,
        progressable: query_all(
            conn,
            path,
            "SELECT DISTINCT order_id, status FROM orders WHERE status IN ('placed', 'shipped') ORDER BY order_id, status",
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?,
    })
}

/// All rows of `sql`, mapped by `map`.
fn query_all<T>(
    conn: &Connection,
    path: &Path,
    sql: &str,
    map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, GeneratorError> {
    let action = format!("running `{sql}`");
    let wrap = GeneratorError::sqlite(path, &action);
    let mut stmt = conn.prepare(sql).map_err(&wrap)?;
    let rows = stmt.query_map([], map).map_err(&wrap)?;
    rows.collect::<Result<Vec<T>, _>>().map_err(&wrap)
}
