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
///
/// The fields every source shares (`name`, `kind`, `owner`, `description`, `schedule`, `catchup`,
/// `freshness`, `policy`; per table `description`, `tags`, `schedule`, `freshness`) are read once
/// by `sluice_core::SourceDecl`; this struct is the rest of the file (`SourceDecl::config`).
#[serde(deny_unknown_fields)]
pub struct MysqlConfig {
    /// A connection URL, `mysql://user:password@host:3306/database`; `${ENV}` is expanded, so keep
    /// the password in the environment. TLS is not supported yet.
    pub connection: String,
    /// The database (schema) of tables that do not name their own; default: the URL's database.
    #[serde(default)]
    pub database: Option<String>,
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
            .field("connection", &"<redacted>")
            .field("database", &self.database)
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
}
