//! End-to-end tests of `generate` and `append_orders`: determinism, scaling, and the deliberate dirt.
//! This file holds the shared helpers; the tests are grouped by topic in the submodules.

mod append;
mod db_dirt;
mod determinism;
mod file_dirt;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::Connection;
use rusqlite::types::Value;
use serde_json::Value as Json;

use super::clock::parse_iso;
use super::events::BOT_MARKERS;
use super::*;

/// A fresh folder under the system temp dir, removed on drop.
pub(crate) struct ScratchDir(PathBuf);

impl ScratchDir {
    pub(crate) fn new(name: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "sluice-generator-{}-{name}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) const TABLES: [&str; 5] = ["customers", "products", "orders", "order_items", "payments"];

pub(crate) fn config(scale: f64, seed: u64) -> GeneratorConfig {
    GeneratorConfig { scale, seed }
}

/// Every row of every table, in storage order, as text.
pub(crate) fn dump(db: &Path) -> Vec<String> {
    let conn = Connection::open(db).unwrap();
    let mut out = Vec::new();
    for table in TABLES {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {table} ORDER BY rowid"))
            .unwrap();
        let columns = stmt.column_count();
        let rows = stmt
            .query_map([], |row| {
                (0..columns)
                    .map(|i| row.get::<_, Value>(i))
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap();
        for row in rows {
            out.push(format!("{table}: {:?}", row.unwrap()));
        }
    }
    out
}

pub(crate) fn scalar<T: rusqlite::types::FromSql>(db: &Path, sql: &str) -> T {
    Connection::open(db)
        .unwrap()
        .query_row(sql, [], |row| row.get(0))
        .unwrap()
}

/// The generated text files (events then CRM) with their bytes.
pub(crate) fn text_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut paths: Vec<PathBuf> = (1..=6)
        .map(|i| events_dir(dir).join(format!("events-{i:04}.jsonl")))
        .collect();
    paths.push(crm_accounts_path(dir));
    paths
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p.strip_prefix(dir).unwrap().to_path_buf(), bytes)
        })
        .collect()
}

/// The events of file `i` (1-based), parsed.
pub(crate) fn events(dir: &Path, i: u64) -> Vec<Json> {
    let text =
        std::fs::read_to_string(events_dir(dir).join(format!("events-{i:04}.jsonl"))).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub(crate) fn event_time(e: &Json) -> i64 {
    parse_iso(e["event_timestamp"].as_str().unwrap()).unwrap()
}

pub(crate) fn is_bot(e: &Json) -> bool {
    let ua = e["user_agent"].as_str().unwrap().to_lowercase();
    BOT_MARKERS.iter().any(|m| ua.contains(m))
}
