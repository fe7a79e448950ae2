//! The YAML shape of a `kind: mysql` source.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::landing::Pii;
pub use crate::sources::table_load::Mode;

/// A MySQL / MariaDB source file.
///
/// ```yaml
/// kind: mysql
/// connection: ${SHOP_MYSQL_URL}   # mysql://user:password@host:3306/shop
/// tables:
///   - name: orders
///     mode: incremental
///     cursor: updated_at
///     primary_key: [order_id]
///   - name: customers
///     pii: {email: hash}
/// ```
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MysqlConfig {
    /// Source name (default: the file name).
    #[serde(default)]
    pub name: Option<String>,
    /// Always `mysql` (MariaDB is the same kind).
    pub kind: String,
    /// A connection URL, `mysql://user:password@host:3306/database`; `${ENV}` is expanded, so keep
    /// the password in the environment. TLS is not supported yet.
    pub connection: String,
    /// The database (schema) of tables that do not name their own; default: the URL's database.
    #[serde(default)]
    pub database: Option<String>,
    /// Who is alerted when it breaks.
    #[serde(default)]
    pub owner: Option<String>,
    /// What the source is.
    #[serde(default)]
    pub description: Option<String>,
    /// When to ingest (cron or `@daily`), used by `sluice serve`.
    #[serde(default)]
    pub schedule: Option<String>,
    /// Freshness SLA (`{warn_after, error_after}`); read by sluice-monitor, see docs/alerts.md.
    #[serde(default)]
    pub freshness: Option<serde_json::Value>,
    /// Ticks missed while `sluice serve` was down: `latest` (run once, the default) or `all`.
    #[serde(default)]
    pub catchup: Option<String>,
    /// Retries, backoff, timeout and failure mode of this source's tables (`retries`, `retry_backoff`,
    /// `max_retry_backoff`, `timeout`, `on_failure`); read by the orchestrator, see docs/scheduling.md.
    #[serde(default)]
    pub policy: Option<serde_json::Value>,
    /// Rows per Arrow batch.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Incremental loads commit every this many rows (at a change of cursor value), so a large backlog
    /// lands in bounded memory and a crash resumes from the last commit.
    #[serde(default = "default_commit_rows")]
    pub commit_rows: usize,
    /// How long to wait for the server to accept a connection; a timeout is a transient error.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: String,
    /// The tables to land.
    pub tables: Vec<MysqlTable>,
}

/// Hand-written so that a connection URL holding a password never reaches a log.
impl std::fmt::Debug for MysqlConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MysqlConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("connection", &"<redacted>")
            .field("database", &self.database)
            .field("owner", &self.owner)
            .field("schedule", &self.schedule)
            .field("policy", &self.policy)
            .field("batch_size", &self.batch_size)
            .field("commit_rows", &self.commit_rows)
            .field("connect_timeout", &self.connect_timeout)
            .field("tables", &self.tables)
            .finish()
    }
}

fn default_batch_size() -> usize {
    8192
}

fn default_commit_rows() -> usize {
    500_000
}

fn default_connect_timeout() -> String {
    "10s".to_string()
}

/// One table of a MySQL source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MysqlTable {
    /// Table name in the database and in bronze.
    pub name: String,
    /// The database holding the table (default: the source's `database`).
    #[serde(default)]
    pub database: Option<String>,
    /// What the table holds.
    #[serde(default)]
    pub description: Option<String>,
    /// Tags for selection.
    #[serde(default)]
    pub tags: Vec<String>,
    /// `full` or `incremental`.
    #[serde(default)]
    pub mode: Mode,
    /// The column whose growth marks new or changed rows (required for `incremental`): an integer,
    /// decimal, float, text, date, datetime, timestamp or time column, ideally indexed and NOT NULL.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Primary key columns (documentation; silver models deduplicate on it).
    #[serde(default)]
    pub primary_key: Vec<String>,
    /// PII handling before landing: column → hash | mask | drop.
    #[serde(default)]
    pub pii: BTreeMap<String, Pii>,
    /// Read this SELECT instead of the whole table (e.g. to cast unsupported types:
    /// ``SELECT id, ST_AsText(shape) AS shape FROM t``). The cursor must be one of its columns.
    #[serde(default)]
    pub query: Option<String>,
    /// Per-table schedule override.
    #[serde(default)]
    pub schedule: Option<String>,
    /// Freshness SLA (`{warn_after, error_after}`); read by sluice-monitor, see docs/alerts.md.
    #[serde(default)]
    pub freshness: Option<serde_json::Value>,
}
