//! The YAML shape of a `kind: sqlite` source.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::landing::Pii;

/// A SQLite source file.
///
/// ```yaml
/// kind: sqlite
/// connection: data/shop.db        # path relative to the project, or ${ENV_VAR}
/// tables:
///   - name: orders
///     mode: incremental
///     cursor: updated_at
///     primary_key: [order_id]
///   - name: customers
///     mode: full
///     pii: {email: hash}
/// ```
#[derive(Debug, Clone, Deserialize)]
///
/// The fields every source shares (`name`, `kind`, `owner`, `description`, `schedule`, `catchup`,
/// `freshness`, `policy`; per table `description`, `tags`, `schedule`, `freshness`) are read once
/// by `sluice_core::SourceDecl`; this struct is the rest of the file (`SourceDecl::config`).
#[serde(deny_unknown_fields)]
pub struct SqliteConfig {
    /// Path of the database file (relative to the project), `${ENV}` allowed.
    pub connection: String,
    /// Rows per Arrow batch.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Incremental loads commit every this many rows (at a change of cursor value), so a large backlog
    /// lands in bounded memory and a crash resumes from the last commit.
    #[serde(default = "default_commit_rows")]
    pub commit_rows: usize,
    /// How long to wait for a lock held by the application before giving up (then the error is
    /// transient and the run retries with backoff).
    #[serde(default = "default_busy_timeout")]
    pub busy_timeout: String,
    /// The tables to land.
    pub tables: Vec<SqliteTable>,
}

fn default_busy_timeout() -> String {
    "5s".to_string()
}

fn default_batch_size() -> usize {
    8192
}

fn default_commit_rows() -> usize {
    500_000
}

pub use crate::sources::table_load::Mode;

/// One table of a SQLite source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqliteTable {
    /// Table name in the database and in bronze.
    pub name: String,
    /// `full` or `incremental`.
    #[serde(default)]
    pub mode: Mode,
    /// The column whose growth marks new or changed rows (required for `incremental`).
    #[serde(default)]
    pub cursor: Option<String>,
    /// Primary key columns (documentation; silver models deduplicate on it).
    #[serde(default)]
    pub primary_key: Vec<String>,
    /// PII handling before landing: column → hash | mask | drop.
    #[serde(default)]
    pub pii: BTreeMap<String, Pii>,
    /// Read this SELECT instead of the whole table.
    #[serde(default)]
    pub query: Option<String>,
}
