//! The YAML shape of a `kind: mysql` source (the fields all relational sources share come from
//! [`crate::sources::relational`]).

use serde::Deserialize;

use crate::sources::relational::{relational_config, relational_table};
pub use crate::sources::table_load::Mode;

relational_config! {
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
    ///
    /// The fields every source shares (`name`, `kind`, `owner`, `description`, `schedule`, `catchup`,
    /// `freshness`, `policy`; per table `description`, `tags`, `schedule`, `freshness`) are read once
    /// by `sluice_core::SourceDecl`; this struct is the rest of the file (`SourceDecl::config`).
    #[derive(Clone, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct MysqlConfig<MysqlTable> {
        /// A connection URL, `mysql://user:password@host:3306/database`; `${ENV}` is expanded, so
        /// keep the password in the environment. TLS is not supported yet.
        pub connection: String,
        /// The database (schema) of tables that do not name their own; default: the URL's database.
        #[serde(default)]
        pub database: Option<String>,
        ..
        /// How long to wait for the server to accept a connection; a timeout is a transient error.
        #[serde(default = "default_connect_timeout")]
        pub connect_timeout: String,
    }
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

fn default_connect_timeout() -> String {
    "10s".to_string()
}

relational_table! {
    /// One table of a MySQL source. A cursor is an integer, decimal, float, text, date, datetime,
    /// timestamp or time column.
    #[derive(Debug, Clone, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct MysqlTable {
        mode: Mode,
        /// The database holding the table (default: the source's `database`).
        #[serde(default)]
        pub database: Option<String>,
        ..
    }
}
