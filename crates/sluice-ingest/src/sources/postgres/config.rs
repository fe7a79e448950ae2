//! The YAML shape of a `kind: postgres` source (the fields all relational sources share come from
//! [`crate::sources::relational`]).

use serde::Deserialize;

use crate::sources::relational::{LoadMode, relational_config, relational_table};

relational_config! {
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
    ///
    /// The fields every source shares (`name`, `kind`, `owner`, `description`, `schedule`, `catchup`,
    /// `freshness`, `policy`; per table `description`, `tags`, `schedule`, `freshness`) are read once
    /// by `sluice_core::SourceDecl`; this struct is the rest of the file (`SourceDecl::config`).
    #[derive(Clone, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct PostgresConfig<PostgresTable> {
        /// A libpq connection URL (`postgres://user:pw@host:5432/db`) or key/value string
        /// (`host=… port=… user=… password=… dbname=…`); `${ENV}` is expanded, so keep the password in
        /// the environment. TLS is not supported yet (`sslmode=require` fails).
        pub connection: String,
        /// The PostgreSQL schema of tables that do not name their own.
        #[serde(default = "default_schema")]
        pub schema: String,
        ..
        /// How long to wait for the server to accept a connection (unless the connection string sets
        /// `connect_timeout`); a timeout is a transient error, retried with backoff.
        #[serde(default = "default_connect_timeout")]
        pub connect_timeout: String,
    }
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

impl LoadMode for PgMode {
    /// The shared table-load mode of a batch read; `None` for CDC.
    fn load_mode(self) -> Option<Mode> {
        match self {
            PgMode::Full => Some(Mode::Full),
            PgMode::Incremental => Some(Mode::Incremental),
            PgMode::Cdc => None,
        }
    }
}

relational_table! {
    /// One table of a PostgreSQL source. A cursor is an integer, numeric, float, text, uuid, date,
    /// time, timestamp or timestamptz column.
    #[derive(Debug, Clone, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct PostgresTable {
        mode: PgMode,
        /// The PostgreSQL schema holding the table (default: the source's `schema`).
        #[serde(default)]
        pub schema: Option<String>,
        ..
        /// CDC: the logical replication slot (default `sluice_<source>_<table>`, created if missing).
        #[serde(default)]
        pub slot: Option<String>,
        /// CDC: the publication (default: the slot's name, created `FOR TABLE` this table if missing).
        #[serde(default)]
        pub publication: Option<String>,
    }
}
