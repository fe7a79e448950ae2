//! ShopFlow's application database, live in PostgreSQL: the tables of `shop.db` copied into a
//! PostgreSQL schema ([`load_postgres`]), then kept changing like a running shop ([`LiveShop`]): new
//! orders with their items and payment, status updates, refunds and deleted carts, so that CDC can be
//! watched (and measured) while it happens.
//!
//! Unlike `shop.db`, every table has a primary key (CDC needs one): the ~1% duplicated order rows of
//! the SQLite file are loaded once. Column types follow the SQLite declarations (INTEGER → bigint,
//! REAL → double precision, TEXT → text), so the example project's models read either database.

use std::path::Path;
use std::time::{Duration, Instant};

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tokio_postgres::{Client, NoTls};

use super::{GeneratorError, rng_for};

/// The application tables, in load order.
pub const APP_TABLES: [&str; 5] = ["customers", "products", "orders", "order_items", "payments"];

const DDL: &str = "
CREATE TABLE customers (customer_id bigint PRIMARY KEY, email text, full_name text, country text,
    acquisition_channel text, created_at text, updated_at text);
CREATE TABLE products (product_id bigint PRIMARY KEY, sku text, name text, category text,
    price double precision, updated_at text);
CREATE TABLE orders (order_id bigint PRIMARY KEY, customer_id bigint, status text,
    amount double precision, order_ts text, updated_at text);
CREATE TABLE order_items (order_item_id bigint PRIMARY KEY, order_id bigint, product_id bigint,
    quantity bigint, unit_price double precision);
CREATE INDEX order_items_order ON order_items (order_id);
CREATE TABLE payments (payment_id bigint PRIMARY KEY, order_id bigint, kind text, method text,
    amount double precision, paid_at text, updated_at text);
";

/// The random stream of the live changes.
const STREAM_LIVE: u64 = 6;
/// Rows per INSERT while loading.
const LOAD_CHUNK: usize = 5_000;

fn pg_error(action: &str) -> impl Fn(tokio_postgres::Error) -> GeneratorError + '_ {
    move |e| GeneratorError::Postgres {
        action: action.to_string(),
        message: e
            .as_db_error()
            .map(|d| format!("{} ({})", d.message(), d.code().code()))
            .unwrap_or_else(|| e.to_string()),
    }
}

async fn connect(url: &str) -> Result<Client, GeneratorError> {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(pg_error("connecting"))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::warn!(error = %e, "generator connection ended");
        }
    });
    Ok(client)
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Copies the application tables of `shop_db` (written by [`super::generate`]) into `schema` of the
/// PostgreSQL database at `url`, replacing the schema. Returns the rows loaded per table.
pub async fn load_postgres(
    url: &str,
    schema: &str,
    shop_db: &Path,
) -> Result<Vec<(String, u64)>, GeneratorError> {
    let client = connect(url).await?;
    let s = quote(schema);
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {s} CASCADE; CREATE SCHEMA {s}; SET search_path = {s}; {DDL}"
        ))
        .await
        .map_err(pg_error("creating the schema"))?;
    let mut loaded = Vec::new();
    for table in APP_TABLES {
        let action = format!("loading {table}");
        // Read first (SQLite handles are not `Send`), then insert chunk by chunk.
        let chunks = read_json_chunks(shop_db, table, &action)?;
        let insert = format!(
            "INSERT INTO {s}.{table} SELECT * FROM json_populate_recordset(NULL::{s}.{table}, $1::text::json) \
             ON CONFLICT DO NOTHING"
        );
        let mut n = 0u64;
        for json in chunks {
            n += client
                .execute(&insert, &[&json])
                .await
                .map_err(pg_error(&action))?;
        }
        loaded.push((table.to_string(), n));
    }
    Ok(loaded)
}

/// The rows of `table` as JSON arrays of objects, [`LOAD_CHUNK`] rows each.
fn read_json_chunks(
    shop_db: &Path,
    table: &str,
    action: &str,
) -> Result<Vec<String>, GeneratorError> {
    let db =
        rusqlite::Connection::open(shop_db).map_err(GeneratorError::sqlite(shop_db, "opening"))?;
    let mut stmt = db
        .prepare(&format!("SELECT * FROM {table}"))
        .map_err(GeneratorError::sqlite(shop_db, action))?;
    let names: Vec<String> = stmt.column_names().map(|n| n.to_string()).collect();
    let mut rows = stmt
        .query([])
        .map_err(GeneratorError::sqlite(shop_db, action))?;
    let mut chunks = Vec::new();
    let mut chunk = Vec::with_capacity(LOAD_CHUNK);
    while let Some(row) = rows
        .next()
        .map_err(GeneratorError::sqlite(shop_db, action))?
    {
        let mut obj = serde_json::Map::new();
        for (i, name) in names.iter().enumerate() {
            let v: rusqlite::types::Value = row
                .get(i)
                .map_err(GeneratorError::sqlite(shop_db, action))?;
            obj.insert(
                name.clone(),
                match v {
                    rusqlite::types::Value::Null | rusqlite::types::Value::Blob(_) => {
                        serde_json::Value::Null
                    }
                    rusqlite::types::Value::Integer(i) => i.into(),
                    rusqlite::types::Value::Real(f) => f.into(),
                    rusqlite::types::Value::Text(t) => t.into(),
                },
            );
        }
        chunk.push(serde_json::Value::Object(obj));
        if chunk.len() >= LOAD_CHUNK {
            chunks.push(serde_json::Value::Array(std::mem::take(&mut chunk)).to_string());
        }
    }
    if !chunk.is_empty() {
        chunks.push(serde_json::Value::Array(chunk).to_string());
    }
    Ok(chunks)
}

/// What [`LiveShop`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveReport {
    /// Transactions committed.
    pub transactions: u64,
    /// Rows inserted, updated or deleted.
    pub changes: u64,
}

/// A shop at work on its PostgreSQL database: each [`LiveShop::step`] is one application
/// transaction.
pub struct LiveShop {
    client: Client,
    schema: String,
    rng: ChaCha8Rng,
    next_order: i64,
    next_item: i64,
    next_payment: i64,
    customers: i64,
    products: i64,
}

impl LiveShop {
    /// Connects to the schema [`load_postgres`] filled.
    pub async fn connect(url: &str, schema: &str, seed: u64) -> Result<LiveShop, GeneratorError> {
        let client = connect(url).await?;
        let s = quote(schema);
        let max = |table: &str, column: &str| {
            format!("(SELECT coalesce(max({column}), 0) FROM {s}.{table})")
        };
        let row = client
            .query_one(
                &format!(
                    "SELECT {}, {}, {}, {}, {}",
                    max("orders", "order_id"),
                    max("order_items", "order_item_id"),
                    max("payments", "payment_id"),
                    max("customers", "customer_id"),
                    max("products", "product_id"),
                ),
                &[],
            )
            .await
            .map_err(pg_error("reading the shop's ids"))?;
        Ok(LiveShop {
            client,
            schema: s,
            rng: rng_for(seed, STREAM_LIVE),
            next_order: row.get::<_, i64>(0) + 1,
            next_item: row.get::<_, i64>(1) + 1,
            next_payment: row.get::<_, i64>(2) + 1,
            customers: row.get::<_, i64>(3).max(1),
            products: row.get::<_, i64>(4).max(1),
        })
    }

    /// One transaction: a new order with its items (and payment, unless abandoned) (40%), a status
    /// update placed → shipped → delivered (30%), a refund of a delivered order (15%) or a deleted
    /// abandoned cart with its items (15%). Statuses stay within the batch generator's. Returns the
    /// rows it changed.
    pub async fn step(&mut self) -> Result<u64, GeneratorError> {
        let now = chrono::Utc::now()
            .format("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string();
        let s = self.schema.clone();
        let roll = self.rng.random_range(0..100);
        let mut sql = Vec::new();
        match roll {
            0..40 => {
                let id = self.next_order;
                self.next_order += 1;
                let customer = self.rng.random_range(1..=self.customers);
                let mut total = 0.0;
                for _ in 0..self.rng.random_range(1..=3) {
                    let product = self.rng.random_range(1..=self.products);
                    let qty = self.rng.random_range(1..=3);
                    let price = f64::from(self.rng.random_range(100..20_000)) / 100.0;
                    total += price * f64::from(qty);
                    sql.push(format!(
                        "INSERT INTO {s}.order_items VALUES ({}, {id}, {product}, {qty}, {price})",
                        self.next_item
                    ));
                    self.next_item += 1;
                }
                // An abandoned order is a cart that was never paid for.
                let status = if self.rng.random_bool(0.7) {
                    "placed"
                } else {
                    "abandoned"
                };
                sql.insert(
                    0,
                    format!(
                        "INSERT INTO {s}.orders VALUES ({id}, {customer}, '{status}', {total:.2}, '{now}', '{now}')"
                    ),
                );
                if status == "placed" {
                    sql.push(format!(
                        "INSERT INTO {s}.payments VALUES ({}, {id}, 'payment', 'card', {total:.2}, '{now}', '{now}')",
                        self.next_payment
                    ));
                    self.next_payment += 1;
                }
            }
            40..70 => {
                let id = self.rng.random_range(1..self.next_order);
                sql.push(format!(
                    "UPDATE {s}.orders SET status = CASE status WHEN 'placed' THEN 'shipped' \
                     WHEN 'shipped' THEN 'delivered' ELSE status END, updated_at = '{now}' \
                     WHERE order_id = {id}"
                ));
            }
            70..85 => {
                // A refund of a delivered order (as the batch generator makes them).
                let id = self.rng.random_range(1..self.next_order);
                sql.push(format!(
                    "INSERT INTO {s}.payments SELECT {}, order_id, 'refund', 'card', -amount, '{now}', '{now}' \
                     FROM {s}.orders WHERE order_id = {id} AND status = 'delivered'",
                    self.next_payment
                ));
                self.next_payment += 1;
            }
            _ => {
                // An abandoned cart is deleted with its items.
                let from = self.rng.random_range(1..self.next_order);
                sql.push(format!(
                    "DELETE FROM {s}.order_items WHERE order_id = (SELECT order_id FROM {s}.orders \
                     WHERE status = 'abandoned' AND order_id >= {from} ORDER BY order_id LIMIT 1)"
                ));
                sql.push(format!(
                    "DELETE FROM {s}.orders WHERE order_id = (SELECT order_id FROM {s}.orders \
                     WHERE status = 'abandoned' AND order_id >= {from} ORDER BY order_id LIMIT 1)"
                ));
            }
        }
        let tx = self
            .client
            .transaction()
            .await
            .map_err(pg_error("starting a shop transaction"))?;
        let mut changed = 0;
        for statement in &sql {
            changed += tx
                .execute(statement.as_str(), &[])
                .await
                .map_err(pg_error("changing the shop"))?;
        }
        tx.commit()
            .await
            .map_err(pg_error("committing a shop transaction"))?;
        Ok(changed)
    }

    /// Runs [`LiveShop::step`] about `rate` times per second until `stop` turns true (or for ever).
    pub async fn run(
        &mut self,
        rate: f64,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<LiveReport, GeneratorError> {
        let mut report = LiveReport::default();
        let started = Instant::now();
        let rate = rate.max(0.001);
        loop {
            if *stop.borrow() {
                return Ok(report);
            }
            report.changes += self.step().await?;
            report.transactions += 1;
            let due = started + Duration::from_secs_f64(report.transactions as f64 / rate);
            tokio::select! {
                _ = tokio::time::sleep_until(due.into()) => {}
                _ = stop.changed() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loads_shop_db_and_changes_it() {
        let url = std::env::var("SLUICE_TEST_PG_URL")
            .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres dbname=test".to_string());
        if tokio_postgres::connect(&url, NoTls).await.is_err() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "PostgreSQL is needed under CI"
            );
            eprintln!("skipping: PostgreSQL is not reachable");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let report = super::super::generate(
            &super::super::GeneratorConfig {
                scale: 0.02,
                seed: 3,
            },
            dir.path(),
        )
        .unwrap();
        let schema = format!("sluice_gen_{}", std::process::id());
        let loaded = load_postgres(&url, &schema, &super::super::shop_db_path(dir.path()))
            .await
            .unwrap();
        let count = |t: &str| loaded.iter().find(|(n, _)| n == t).unwrap().1;
        assert_eq!(count("customers"), report.customers);
        assert_eq!(count("orders"), report.orders, "duplicates are loaded once");
        assert_eq!(count("payments"), report.payments);
        let mut shop = LiveShop::connect(&url, &schema, 1).await.unwrap();
        let mut changes = 0;
        for _ in 0..40 {
            changes += shop.step().await.unwrap();
        }
        assert!(changes > 20, "{changes}");
        let client = connect(&url).await.unwrap();
        let orders: i64 = client
            .query_one(
                &format!("SELECT count(*) FROM {}.orders", quote(&schema)),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_ne!(orders as u64, report.orders, "orders were added or deleted");
        client
            .batch_execute(&format!("DROP SCHEMA {} CASCADE", quote(&schema)))
            .await
            .unwrap();
    }
}
