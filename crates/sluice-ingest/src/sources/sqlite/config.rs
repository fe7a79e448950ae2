//! The YAML shape of a `kind: sqlite` source (the fields all relational sources share come from
//! [`crate::sources::relational`]).

use serde::Deserialize;

use crate::sources::relational::{relational_config, relational_table};

pub use crate::sources::table_load::Mode;

relational_config! {
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
    ///
    /// The fields every source shares (`name`, `kind`, `owner`, `description`, `schedule`, `catchup`,
    /// `freshness`, `policy`; per table `description`, `tags`, `schedule`, `freshness`) are read once
    /// by `sluice_core::SourceDecl`; this struct is the rest of the file (`SourceDecl::config`).
    #[derive(Debug, Clone, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SqliteConfig<SqliteTable> {
        /// Path of the database file (relative to the project), `${ENV}` allowed.
        pub connection: String,
        ..
        /// How long to wait for a lock held by the application before giving up (then the error is
        /// transient and the run retries with backoff).
        #[serde(default = "default_busy_timeout")]
        pub busy_timeout: String,
    }
}

fn default_busy_timeout() -> String {
    "5s".to_string()
}

relational_table! {
    /// One table of a SQLite source. A cursor may have any type (SQLite compares values of mixed
    /// types by its own rules).
    #[derive(Debug, Clone, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SqliteTable {
        mode: Mode,
        ..
    }
}
