//! `sluice demo --source postgres`: ShopFlow's application database in the local PostgreSQL,
//! captured with CDC, and kept changing while the demo serves.
//!
//! The generated `shop.db` tables are copied into the `shopflow` schema; the demo's
//! `sources/shop_app.yml` then reads them with `mode: cdc` (a snapshot, then the changes), and a
//! silver model `orders_live` (`materialized: merge`) keeps the current orders. While the demo serves,
//! a [`LiveShop`] writes new orders, status updates, refunds and deleted carts: `sluice run` (or the
//! scheduler) lands them, and `select * from silver.orders_live` follows the source.

use std::path::Path;

use anyhow::{Context, Result};
use sluice_ingest::generator::{APP_TABLES, LiveShop, load_postgres, shop_db_path};

/// `--source postgres`: where the application database goes and how fast it changes.
pub struct LiveSettings {
    /// The PostgreSQL database (needs `wal_level = logical`).
    pub url: String,
    /// Shop transactions per second while the demo serves.
    pub rate: f64,
}

/// The PostgreSQL schema the demo's application tables live in.
pub const SCHEMA: &str = "shopflow";

/// The `shop_app` source of the PostgreSQL demo: every application table captured.
fn source_file(url: &str) -> String {
    let mut text = format!(
        "# The shop's application database, live in PostgreSQL (`sluice demo --source postgres`):\n\
         # every table captured with CDC (a snapshot, then each insert, update and delete).\n\
         kind: postgres\nconnection: {}\nschema: {SCHEMA}\nowner: app-team@shopflow.example\n\
         description: ShopFlow application database (PostgreSQL, CDC)\ntables:\n",
        serde_json::to_string(url).unwrap_or_default()
    );
    for table in APP_TABLES {
        text.push_str(&format!("  - name: {table}\n    mode: cdc\n"));
        if table == "customers" {
            text.push_str("    pii:\n      email: hash\n      full_name: mask\n");
        }
    }
    text
}

const ORDERS_LIVE: &str = "-- The orders as they are in the application database right now: the CDC change stream of\n\
-- `shop_app.orders` applied in commit order (inserts and updates upsert, deletes delete).\n\
{{ config(materialized='merge', unique_key='order_id') }}\n\
select order_id, customer_id, status, amount, order_ts, updated_at, _op, _lsn, _seq\n\
from {{ source('shop_app', 'orders') }}\n";

/// Loads the generated application tables into PostgreSQL and points the demo project at them.
pub async fn prepare(dir: &Path, url: &str) -> Result<()> {
    let loaded = load_postgres(url, SCHEMA, &shop_db_path(&dir.join("data")))
        .await
        .with_context(|| format!("loading ShopFlow into PostgreSQL ({SCHEMA} schema)"))?;
    let counts: Vec<String> = loaded.iter().map(|(t, n)| format!("{n} {t}")).collect();
    println!(
        "Loaded into PostgreSQL schema `{SCHEMA}`: {}",
        counts.join(", ")
    );
    std::fs::write(dir.join("sources/shop_app.yml"), source_file(url))
        .context("writing sources/shop_app.yml")?;
    let model = dir.join("models/silver/orders_live.sql");
    std::fs::write(&model, ORDERS_LIVE).with_context(|| format!("writing {}", model.display()))?;
    Ok(())
}

/// Keeps the shop changing (`rate` transactions per second) in the background.
pub fn spawn_live_shop(url: String, rate: f64, seed: u64) {
    tokio::spawn(async move {
        let (_stop, rx) = tokio::sync::watch::channel(false);
        match LiveShop::connect(&url, SCHEMA, seed).await {
            Ok(mut shop) => {
                if let Err(e) = shop.run(rate, rx).await {
                    tracing::warn!(error = %e, "the live shop stopped");
                }
            }
            Err(e) => tracing::warn!(error = %e, "the live shop could not start"),
        }
    });
    println!(
        "The shop keeps changing (~{rate} transactions/s): `sluice run --select shop_app.orders+` lands the changes"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_file_captures_every_table() {
        let text = source_file("host=h user=u dbname=d");
        assert_eq!(text.matches("mode: cdc").count(), APP_TABLES.len());
        assert!(
            text.contains("connection: \"host=h user=u dbname=d\""),
            "{text}"
        );
    }
}
