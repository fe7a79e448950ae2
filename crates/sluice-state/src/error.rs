//! The one error type of the state database, shared by every crate that uses it (orchestrate and
//! monitor re-export or wrap it).

/// What can go wrong opening, migrating or using the state database.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// SQLite failed.
    #[error("state database {path}: {source}")]
    Sqlite {
        /// The database file.
        path: String,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// PostgreSQL failed (connecting, or a statement).
    #[error("state database {location}: {source}")]
    Postgres {
        /// The database, without its password.
        location: String,
        /// The driver's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A queued run was to start, but it is no longer queued (it was cancelled meanwhile).
    #[error("run {run_id} is no longer queued (it was cancelled before it started)")]
    NotQueued {
        /// The run.
        run_id: String,
    },
    /// The folder for the database could not be created.
    #[error("state database {path}: {source}")]
    Io {
        /// The database file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The database was migrated by a newer sluice: its tables may mean things this binary does not
    /// know, so it is not used (reading could misreport, writing could corrupt).
    #[error(
        "state database {path} has schema version {found}, newer than the {known} this sluice knows: \
         upgrade sluice, or point `state:` at another database"
    )]
    NewerSchema {
        /// The database.
        path: String,
        /// Its schema version.
        found: u32,
        /// The newest version this binary has a migration for.
        known: u32,
    },
    /// A migration failed; it was rolled back, so the database stays at the version before it.
    #[error("state database {path}: migration {version:04}_{name} failed: {source}")]
    Migration {
        /// The database.
        path: String,
        /// The migration's number.
        version: u32,
        /// The migration's name.
        name: &'static str,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A migration has no SQL for this backend's dialect (a bug: every migration must cover every
    /// dialect in [`crate::Dialect`]).
    #[error("internal error: migration {version:04}_{name} has no {dialect} SQL")]
    MissingDialect {
        /// The migration's number.
        version: u32,
        /// The migration's name.
        name: &'static str,
        /// The dialect.
        dialect: crate::Dialect,
    },
}
