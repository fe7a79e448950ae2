//! ShopFlow: a deterministic generator for the raw data of a small online shop.
//!
//! Sluice's demo, tests and benchmarks need source data that looks like a real company's, including
//! the dirt that real sources carry, so that bronze → silver cleaning, quality checks and quarantine
//! have something to do. ShopFlow has three source systems:
//!
//! | source | file under `data_dir` | dirt on purpose |
//! |---|---|---|
//! | application database (SQLite) | `shop.db`: customers, products, orders, order_items, payments | `orders` has no key and ~1% exact duplicate rows; ~0.5% NULL and ~0.3% negative order amounts |
//! | clickstream (JSON lines) | `landing/events/events-0001.jsonl` … `events-0006.jsonl` | unsorted lines, ~3% late events, ~5% bot traffic, a `campaign` property only in files 4–6 |
//! | CRM export (CSV) | `landing/crm/accounts.csv` | exactly 2 malformed lines (wrong field count) in the middle |
//!
//! Everything is a pure function of ([`GeneratorConfig::scale`], [`GeneratorConfig::seed`]): the only
//! randomness is a `ChaCha8Rng` seeded from the seed (one stream per part), and the time range is the
//! fixed 90 days starting 2026-01-01T00:00:00Z, never "now". So the same config writes byte-identical
//! JSONL/CSV files and identical SQLite rows, which makes tests and benchmarks reproducible.
//! [`append_orders`] then grows `shop.db` to exercise incremental (cursor-based) ingestion.
//!
//! Module map: `world` (customers and products, shared by all sources), `orders` (orders, items and
//! payments as rows), `app_db` (the SQLite file), `append` (incremental orders), `events` (clickstream), `crm` (CSV),
//! `clock` (the time range and timestamp text), `error`.

mod app_db;
mod append;
mod clock;
mod crm;
mod error;
mod events;
mod orders;
mod postgres;
mod world;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub use append::append_orders;
pub use error::GeneratorError;
pub use postgres::{APP_TABLES, LiveShop, load_postgres};

/// Largest accepted [`GeneratorConfig::scale`]: 1000 means 10 million orders and 50 million events,
/// far beyond what one machine generates in reasonable time; larger values are almost surely typos.
pub const MAX_SCALE: f64 = 1000.0;

/// Customers at scale 1.0.
const BASE_CUSTOMERS: f64 = 2_000.0;
/// Products at scale 1.0.
const BASE_PRODUCTS: f64 = 100.0;
/// Distinct orders at scale 1.0.
const BASE_ORDERS: f64 = 10_000.0;
/// Clickstream events at scale 1.0.
const BASE_EVENTS: f64 = 50_000.0;

/// One independent random stream per part, so that changing how one part draws numbers does not
/// change the data of the others.
const STREAM_WORLD: u64 = 1;
const STREAM_ORDERS: u64 = 2;
const STREAM_EVENTS: u64 = 3;
const STREAM_CRM: u64 = 4;
const STREAM_APPEND: u64 = 5;

/// What to generate: how much data and from which seed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeneratorConfig {
    /// Size multiplier; every count is linear in it (1.0 = 2,000 customers, 10,000 orders,
    /// 50,000 events). Must be finite, greater than 0 and at most [`MAX_SCALE`]. Counts never drop
    /// below 1, so tiny scales (0.01) still produce every table and file.
    pub scale: f64,
    /// Seed of the random streams: the same (scale, seed) always writes the same data.
    pub seed: u64,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        Self {
            scale: 1.0,
            seed: 42,
        }
    }
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationReport {
    /// Rows in `customers`.
    pub customers: u64,
    /// Rows in `products`.
    pub products: u64,
    /// Distinct orders (distinct `order_id`s); `orders` holds ~1% more rows, the exact duplicates.
    pub orders: u64,
    /// Rows in `order_items`.
    pub order_items: u64,
    /// Rows in `payments`, payments and refunds together.
    pub payments: u64,
    /// Clickstream events over all files (bot and late events included).
    pub events: u64,
    /// Clickstream files written (always 6).
    pub event_files: u64,
    /// Well-formed rows in `accounts.csv`; the file holds 2 malformed lines besides these.
    pub crm_accounts: u64,
    /// Wall-clock time the generation took, in seconds (the only value that is not deterministic).
    pub seconds: f64,
}

/// Row counts derived from a scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    pub customers: u64,
    pub products: u64,
    pub orders: u64,
    pub events: u64,
}

impl Counts {
    /// Counts for `scale`, each at least 1 (events at least [`events::MIN_EVENTS`], so that every
    /// file can carry its bot and late events).
    pub(crate) fn for_scale(scale: f64) -> Self {
        let scaled = |base: f64| (base * scale).round().max(1.0) as u64;
        Self {
            customers: scaled(BASE_CUSTOMERS),
            products: scaled(BASE_PRODUCTS),
            orders: scaled(BASE_ORDERS),
            events: scaled(BASE_EVENTS).max(events::MIN_EVENTS),
        }
    }
}

/// The random stream `stream` of `seed`.
pub(crate) fn rng_for(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// Path of `shop.db` inside a data folder.
pub fn shop_db_path(data_dir: &Path) -> PathBuf {
    data_dir.join("shop.db")
}

/// Folder of the clickstream files inside a data folder.
pub fn events_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("landing").join("events")
}

/// Path of the CRM export inside a data folder.
pub fn crm_accounts_path(data_dir: &Path) -> PathBuf {
    data_dir.join("landing").join("crm").join("accounts.csv")
}

/// Generates the ShopFlow data set for `config`.
///
/// Writes into `data_dir`: `shop.db`, `landing/events/events-0001.jsonl ...`, `landing/crm/accounts.csv`.
/// Removes/replaces previous generated files first (idempotent for the same config). Other files in
/// `data_dir` are left alone. Each file is written under a `.tmp` name and renamed when complete, so
/// an interrupted run never leaves a truncated file under a final name.
pub fn generate(
    config: &GeneratorConfig,
    data_dir: &Path,
) -> Result<GenerationReport, GeneratorError> {
    let started = Instant::now();
    let scale = config.scale;
    if !scale.is_finite() || scale <= 0.0 || scale > MAX_SCALE {
        return Err(GeneratorError::InvalidScale {
            scale,
            max: MAX_SCALE,
        });
    }
    let counts = Counts::for_scale(scale);
    tracing::info!(scale, seed = config.seed, ?counts, dir = %data_dir.display(), "generating ShopFlow data");

    let events_dir = events_dir(data_dir);
    let crm_path = crm_accounts_path(data_dir);
    for dir in [
        Some(data_dir),
        Some(events_dir.as_path()),
        crm_path.parent(),
    ]
    .into_iter()
    .flatten()
    {
        std::fs::create_dir_all(dir).map_err(|source| GeneratorError::io(dir, source))?;
    }
    remove_previous(data_dir, &events_dir, &crm_path)?;

    let world = world::World::generate(&counts, config.seed);
    // The parts share only the read-only world and have their own random streams, so they can run
    // side by side without changing a byte of the output.
    let (db, events, crm_accounts) = std::thread::scope(|scope| {
        let events = scope.spawn(|| events::write(&events_dir, &world, counts.events, config.seed));
        let db = app_db::write(&shop_db_path(data_dir), &world, counts.orders, config.seed);
        let crm = crm::write(&crm_path, &world, config.seed);
        let events = events
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (db, events, crm)
    });
    let (db, events, crm_accounts) = (db?, events?, crm_accounts?);

    let report = GenerationReport {
        customers: world.customers.len() as u64,
        products: world.products.len() as u64,
        orders: db.orders,
        order_items: db.order_items,
        payments: db.payments,
        events: events.events,
        event_files: events.files,
        crm_accounts,
        seconds: started.elapsed().as_secs_f64(),
    };
    tracing::info!(?report, "generated ShopFlow data");
    Ok(report)
}

/// Removes the files a previous [`generate`] wrote (and leftovers of an interrupted one).
fn remove_previous(
    data_dir: &Path,
    events_dir: &Path,
    crm_path: &Path,
) -> Result<(), GeneratorError> {
    let db = shop_db_path(data_dir);
    let mut doomed: Vec<PathBuf> = ["", "-journal", "-wal", "-shm", ".tmp", ".tmp-journal"]
        .iter()
        .map(|suffix| PathBuf::from(format!("{}{suffix}", db.display())))
        .collect();
    doomed.push(crm_path.to_path_buf());
    doomed.push(tmp_path(crm_path));
    let entries = std::fs::read_dir(events_dir).map_err(|e| GeneratorError::io(events_dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| GeneratorError::io(events_dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("events-") && (name.ends_with(".jsonl") || name.ends_with(".jsonl.tmp"))
        {
            doomed.push(entry.path());
        }
    }
    for path in doomed {
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::debug!(path = %path.display(), "removed previous generated file"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(GeneratorError::io(&path, e)),
        }
    }
    Ok(())
}

/// The temporary name a file is written under before it is renamed to `path`.
pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".tmp");
    PathBuf::from(name)
}

/// Renames a completed temporary file to its final name.
pub(crate) fn publish(path: &Path) -> Result<(), GeneratorError> {
    std::fs::rename(tmp_path(path), path).map_err(|e| GeneratorError::io(path, e))
}
