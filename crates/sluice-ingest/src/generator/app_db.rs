//! The application database `shop.db` (SQLite): schema and bulk writing.
//!
//! Declared column types matter: the SQLite ingester maps INTEGER → int64, REAL → float64 and
//! TEXT → string. `orders` deliberately has no primary key, so that its exact duplicate rows can exist
//! (as they do in real replicas that were re-synced); it has an index on `updated_at`, the cursor of
//! incremental ingestion. Each table is filled in one transaction through one prepared statement.

use std::path::Path;

use rusqlite::{Connection, Transaction, params};

use super::clock::iso;
use super::orders::{self, Sales};
use super::world::World;
use super::{GeneratorError, publish, tmp_path};

/// The tables of `shop.db`.
pub(crate) const SCHEMA: &str = "
CREATE TABLE customers (
    customer_id INTEGER PRIMARY KEY,
    email TEXT,
    full_name TEXT,
    country TEXT,
    acquisition_channel TEXT,
    created_at TEXT,
    updated_at TEXT
);
CREATE TABLE products (
    product_id INTEGER PRIMARY KEY,
    sku TEXT,
    name TEXT,
    category TEXT,
    price REAL,
    updated_at TEXT
);
CREATE TABLE orders (
    order_id INTEGER NOT NULL,
    customer_id INTEGER,
    status TEXT,
    amount REAL,
    order_ts TEXT,
    updated_at TEXT
);
CREATE TABLE order_items (
    order_item_id INTEGER PRIMARY KEY,
    order_id INTEGER,
    product_id INTEGER,
    quantity INTEGER,
    unit_price REAL
);
CREATE TABLE payments (
    payment_id INTEGER PRIMARY KEY,
    order_id INTEGER,
    kind TEXT,
    method TEXT,
    amount REAL,
    paid_at TEXT,
    updated_at TEXT
);
";

/// Created after the bulk insert (cheaper than maintaining it row by row).
const INDEXES: &str = "CREATE INDEX orders_updated_at ON orders (updated_at);";

pub(crate) const INSERT_ORDER: &str = "INSERT INTO orders (order_id, customer_id, status, amount, order_ts, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
pub(crate) const INSERT_ITEM: &str = "INSERT INTO order_items (order_item_id, order_id, product_id, quantity, unit_price) VALUES (?1, ?2, ?3, ?4, ?5)";
pub(crate) const INSERT_PAYMENT: &str = "INSERT INTO payments (payment_id, order_id, kind, method, amount, paid_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

/// Row counts written to `shop.db`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DbCounts {
    /// Distinct orders (the table also holds the duplicates).
    pub orders: u64,
    pub order_items: u64,
    pub payments: u64,
}

/// Generates the sales of `world` and writes the whole database to `path` (through `path.tmp`).
pub(crate) fn write(
    path: &Path,
    world: &World,
    n_orders: u64,
    seed: u64,
) -> Result<DbCounts, GeneratorError> {
    let sales = orders::generate(world, n_orders, seed);
    let tmp = tmp_path(path);
    let mut conn = Connection::open(&tmp).map_err(GeneratorError::sqlite(&tmp, "opening"))?;
    // A fresh file that is renamed only when complete: no need for a crash-safe journal.
    conn.execute_batch("PRAGMA journal_mode = MEMORY; PRAGMA synchronous = OFF;")
        .map_err(GeneratorError::sqlite(&tmp, "setting pragmas"))?;
    conn.execute_batch(SCHEMA)
        .map_err(GeneratorError::sqlite(&tmp, "creating tables"))?;

    in_transaction(&mut conn, &tmp, "inserting into customers", |tx| {
        let mut stmt = tx.prepare("INSERT INTO customers (customer_id, email, full_name, country, acquisition_channel, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?;
        for c in &world.customers {
            stmt.execute(params![
                c.id,
                c.email,
                c.full_name,
                c.country,
                c.acquisition_channel,
                iso(c.created_at)?,
                iso(c.updated_at)?
            ])?;
        }
        Ok(())
    })?;
    in_transaction(&mut conn, &tmp, "inserting into products", |tx| {
        let mut stmt = tx.prepare("INSERT INTO products (product_id, sku, name, category, price, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
        for p in &world.products {
            stmt.execute(params![
                p.id,
                p.sku,
                p.name,
                p.category,
                p.price,
                iso(p.updated_at)?
            ])?;
        }
        Ok(())
    })?;
    in_transaction(&mut conn, &tmp, "inserting into orders", |tx| {
        insert_orders(tx, &sales)
    })?;
    in_transaction(&mut conn, &tmp, "inserting into order_items", |tx| {
        let mut stmt = tx.prepare(INSERT_ITEM)?;
        for i in &sales.items {
            stmt.execute(params![
                i.order_item_id,
                i.order_id,
                i.product_id,
                i.quantity,
                i.unit_price
            ])?;
        }
        Ok(())
    })?;
    in_transaction(&mut conn, &tmp, "inserting into payments", |tx| {
        let mut stmt = tx.prepare(INSERT_PAYMENT)?;
        for p in &sales.payments {
            stmt.execute(params![
                p.payment_id,
                p.order_id,
                p.kind,
                p.method,
                p.amount,
                iso(p.paid_at)?,
                iso(p.updated_at)?
            ])?;
        }
        Ok(())
    })?;
    conn.execute_batch(INDEXES)
        .map_err(GeneratorError::sqlite(&tmp, "creating indexes"))?;
    conn.close()
        .map_err(|(_, e)| GeneratorError::sqlite(&tmp, "closing")(e))?;
    publish(path)?;

    let counts = DbCounts {
        orders: sales.orders.len() as u64,
        order_items: sales.items.len() as u64,
        payments: sales.payments.len() as u64,
    };
    tracing::debug!(
        path = %path.display(),
        ?counts,
        duplicate_rows = sales.duplicates.len(),
        "wrote shop.db"
    );
    Ok(counts)
}

/// The orders, then the duplicated ones again (as a re-synced replica would append them).
fn insert_orders(tx: &Transaction<'_>, sales: &Sales) -> Result<(), StepError> {
    let mut stmt = tx.prepare(INSERT_ORDER)?;
    let duplicates = sales.duplicates.iter().filter_map(|&i| sales.orders.get(i));
    for o in sales.orders.iter().chain(duplicates) {
        stmt.execute(params![
            o.order_id,
            o.customer_id,
            o.status,
            o.amount,
            iso(o.order_ts)?,
            iso(o.updated_at)?
        ])?;
    }
    Ok(())
}

/// An error inside a transaction body: SQLite's, or one of ours (a timestamp out of range).
pub(crate) enum StepError {
    Sqlite(rusqlite::Error),
    Generator(GeneratorError),
}

impl From<rusqlite::Error> for StepError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sqlite(e)
    }
}

impl From<GeneratorError> for StepError {
    fn from(e: GeneratorError) -> Self {
        Self::Generator(e)
    }
}

/// Runs `body` in one transaction on `conn` and commits it; SQLite errors name `path` and `action`.
pub(crate) fn in_transaction<T>(
    conn: &mut Connection,
    path: &Path,
    action: &str,
    body: impl FnOnce(&Transaction<'_>) -> Result<T, StepError>,
) -> Result<T, GeneratorError> {
    let wrap = GeneratorError::sqlite(path, action);
    let tx = conn.transaction().map_err(&wrap)?;
    let value = body(&tx).map_err(|e| match e {
        StepError::Sqlite(e) => wrap(e),
        StepError::Generator(e) => e,
    })?;
    tx.commit().map_err(&wrap)?;
    Ok(value)
}
