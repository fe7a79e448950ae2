//! The YAML shape of a `kind: postgres` source.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::landing::Pii;

/// A PostgreSQL source file.
///
/// ```yaml
/// kind: postgres
/// connection: ${SHOP_PG_URL}      # postgres://user@host:5432/db or "host=… user=… dbname=…"
/// schema: public                  # default for every table
/// tables:
///   - name: orders
///     mode: incremental
///     cursor: updated_at
///     primary_key: [order_id]
///   - name: customers
///     mode: full
///     pii: {email: hash}
///   - name: big_refunds
///     query: SELECT * FROM refunds WHERE amount > 100
///   - name: payments
///     mode: cdc                   # snapshot, then inserts/updates/deletes from the WAL
/// ```
#[derive(Clone, Deserialize)]
///
/// The fields every source shares (`name`, `kind`, `owner`, `description`, `schedule`, `catchup`,
/// `freshness`, `policy`; per table `description`, `tags`, `schedule`, `freshness`) are read once
/// by `sluice_core::SourceDecl`; this struct is the rest of the file (`SourceDecl::config`).
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// A libpq connection URL (`postgres://user:pw@host:5432/db`) or key/value string
    /// (`host=… port=… user=… password=… dbname=…`); `${ENV}` is expanded, so keep the password in
    /// the environment. TLS is not supported yet (`sslmode=require` fails).
    pub connection: String,
    /// The PostgreSQL schema of tables that do not name their own.
    #[serde(default = "default_schema")]
    pub schema: String,
    /// Rows per Arrow batch.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Incremental loads commit every this many rows (at a change of cursor value), so a large backlog
    /// lands in bounded memory and a crash resumes from the last commit.
    #[serde(default = "default_commit_rows")]
    pub commit_rows: usize,
    /// How long to wait for the server to accept a connection (unless the connection string sets
    /// `connect_timeout`); a timeout is a transient error, retried with backoff.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: String,
    /// The tables to land.
    pub tables: Vec<PostgresTable>,
}

/// Hand-written so that a connection string holding a password never reaches a log.
impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("connection", &"<redacted>")
            .field("schema", &self.schema)
            .field("batch_size", &self.batch_size)
            .field("commit_rows", &self.commit_rows)
            .field("connect_timeout", &self.connect_timeout)
            .field("tables", &self.tables)
            .finish()
    }
}

fn default_schema() -> String {
    "public".to_string()
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

use crate::sources::table_load::Mode;

/// How a PostgreSQL table is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PgMode {
    /// Every run lands the whole table, replacing the previous snapshot in one commit.
    #[default]
    Full,
    /// Every run lands rows whose cursor is greater than the high-water mark.
    Incremental,
    /// Change data capture: an initial snapshot, then every insert, update and delete from the
    /// write-ahead log (logical replication, `pgoutput`), as change rows. See `cdc/`.
    Cdc,
}

impl PgMode {
    /// The shared table-load mode of a batch read; `None` for CDC.
    pub(crate) fn load_mode(self) -> Option<Mode> {
        match self {
            PgMode::Full => Some(Mode::Full),
            PgMode::Incremental => Some(Mode::Incremental),
            PgMode::Cdc => None,
        }
    }
}

/// One table of a PostgreSQL source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresTable {
    /// Table name in the database (unquoted, case-sensitive as stored) and in bronze.
    pub name: String,
    /// The PostgreSQL schema holding the table (default: the source's `schema`).
    #[serde(default)]
    pub schema: Option<String>,
    /// `full`, `incremental` or `cdc`.
    #[serde(default)]
    pub mode: PgMode,
    /// The column whose growth marks new or changed rows (required for `incremental`): an integer,
    /// numeric, float, text, uuid, date, time, timestamp or timestamptz column, ideally indexed and
    /// NOT NULL (rows whose cursor is NULL are never selected).
    #[serde(default)]
    pub cursor: Option<String>,
    /// Primary key columns (documentation; silver models deduplicate on it).
    #[serde(default)]
    pub primary_key: Vec<String>,
    /// PII handling before landing: column → hash | mask | drop.
    #[serde(default)]
    pub pii: BTreeMap<String, Pii>,
    /// Read this SELECT instead of the whole table (e.g. to cast unsupported types:
    /// `SELECT id, doc::text AS doc FROM t`). The cursor must be one of its columns.
    #[serde(default)]
    pub query: Option<String>,
    /// CDC: the logical replication slot (default `sluice_<source>_<table>`, created if missing).
    #[serde(default)]
    pub slot: Option<String>,
    /// CDC: the publication (default: the slot's name, created `FOR TABLE` this table if missing).
    #[serde(default)]
    pub publication: Option<String>,
}
