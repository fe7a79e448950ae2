//! Ordered migrations and the backend-neutral runner that applies them.
//!
//! A migration is a number, a name and its SQL per [`Dialect`]. The list [`MIGRATIONS`] is the whole
//! history of the state schema, oldest first; a database records the number of the last migration
//! applied to it (its *schema version*), and opening it applies the ones after that, each in its own
//! transaction together with the new version. The runner ([`migrate`]) knows nothing of SQLite or
//! PostgreSQL: it asks a [`StateBackend`] for the version and to apply one migration.

use std::fmt;

use crate::StateError;

/// The SQL dialect a backend speaks (which text of a [`Migration`] it runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// SQLite (the embedded default, `.sluice/state.db`).
    Sqlite,
    /// PostgreSQL (`state: postgres://…`, issue 15).
    Postgres,
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        })
    }
}

/// One step of the state schema's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// Its number: 1, 2, … in order, no gaps. The schema version after it is applied.
    pub version: u32,
    /// A short name (`baseline`); the files are `migrations/<dialect>/<version:04>_<name>.sql`.
    pub name: &'static str,
    /// The SQLite text (several statements).
    pub sqlite: &'static str,
    /// The PostgreSQL text (several statements); `None` only while a dialect lags behind, which
    /// [`StateBackend::apply`] reports as [`StateError::MissingDialect`] rather than skipping.
    pub postgres: Option<&'static str>,
}

impl Migration {
    /// The text for `dialect`.
    pub fn sql(&self, dialect: Dialect) -> Result<&'static str, StateError> {
        match dialect {
            Dialect::Sqlite => Some(self.sqlite),
            Dialect::Postgres => self.postgres,
        }
        .ok_or(StateError::MissingDialect {
            version: self.version,
            name: self.name,
            dialect,
        })
    }
}

/// Every migration of the state schema, oldest first. Append only: an applied migration is never
/// edited (databases in the field have run the old text), so a change is always a new entry.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "baseline",
        sqlite: include_str!("../migrations/sqlite/0001_baseline.sql"),
        postgres: Some(include_str!("../migrations/postgres/0001_baseline.sql")),
    },
    Migration {
        version: 2,
        name: "node_runs_by_start",
        sqlite: include_str!("../migrations/sqlite/0002_node_runs_by_start.sql"),
        postgres: Some(include_str!(
            "../migrations/postgres/0002_node_runs_by_start.sql"
        )),
    },
    Migration {
        version: 3,
        name: "run_queue",
        sqlite: include_str!("../migrations/sqlite/0003_run_queue.sql"),
        postgres: Some(include_str!("../migrations/postgres/0003_run_queue.sql")),
    },
    Migration {
        version: 4,
        name: "auth_tokens",
        sqlite: include_str!("../migrations/sqlite/0004_auth_tokens.sql"),
        postgres: Some(include_str!("../migrations/postgres/0004_auth_tokens.sql")),
    },
    Migration {
        version: 5,
        name: "audit_log",
        sqlite: include_str!("../migrations/sqlite/0005_audit_log.sql"),
        postgres: Some(include_str!("../migrations/postgres/0005_audit_log.sql")),
    },
];

/// The schema version this binary brings a database to: the last migration's number.
pub fn latest_version() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// What a state database engine provides so that [`migrate`] can bring it up to date.
///
/// An implementation stores the schema version where its engine keeps such things (SQLite: `PRAGMA
/// user_version`, in the database header; PostgreSQL: a one-row table), and applies a migration and
/// the new version in **one** transaction that first takes a write lock and re-reads the version:
/// two processes opening one database at once then apply each migration exactly once, the second
/// finding it done.
pub trait StateBackend {
    /// The dialect of the SQL this backend runs.
    fn dialect(&self) -> Dialect;

    /// Where the database is, for messages (a file path, or a URL without its password).
    fn location(&self) -> String;

    /// The schema version recorded in the database: 0 for a new database, and for one made before
    /// schema versions existed (its tables are what migration 1 creates, so it upgrades in place).
    fn schema_version(&mut self) -> Result<u32, StateError>;

    /// Applies `migration` and records `migration.version` as the schema version, in one transaction
    /// under a write lock. Returns false, changing nothing, when the database is already at
    /// `migration.version` or later (another process applied it meanwhile).
    fn apply(&mut self, migration: &Migration) -> Result<bool, StateError>;
}

/// Brings the database behind `backend` up to the last of `migrations` (normally [`MIGRATIONS`]),
/// applying the missing ones in order, and returns its schema version.
///
/// A database at a version newer than the last known one is refused ([`StateError::NewerSchema`]):
/// an older binary must not read or write tables whose meaning changed after it was built.
pub fn migrate(
    backend: &mut dyn StateBackend,
    migrations: &[Migration],
) -> Result<u32, StateError> {
    let known = migrations.last().map_or(0, |m| m.version);
    let refuse_newer = |found: u32, backend: &dyn StateBackend| {
        if found > known {
            Err(StateError::NewerSchema {
                path: backend.location(),
                found,
                known,
            })
        } else {
            Ok(found)
        }
    };
    let found = refuse_newer(backend.schema_version()?, backend)?;
    for m in migrations.iter().filter(|m| m.version > found) {
        if backend.apply(m)? {
            tracing::info!(
                database = %backend.location(),
                version = m.version,
                name = m.name,
                "applied state migration"
            );
        }
    }
    // Read again: another process may have gone further while this one waited for its lock.
    refuse_newer(backend.schema_version()?, backend)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_one_up_without_gaps_and_cover_every_dialect() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1, "{} is out of order", m.name);
            assert!(m.sql(Dialect::Sqlite).is_ok_and(|s| !s.trim().is_empty()));
            assert!(m.sql(Dialect::Postgres).is_ok_and(|s| !s.trim().is_empty()));
        }
        assert_eq!(latest_version() as usize, MIGRATIONS.len());
    }

    #[test]
    fn every_migration_file_is_in_the_list() {
        // A file added to `migrations/` but not to `MIGRATIONS` would silently never run.
        for dialect in ["sqlite", "postgres"] {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(dialect);
            let mut files: Vec<String> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            files.sort();
            let listed: Vec<String> = MIGRATIONS
                .iter()
                .map(|m| format!("{:04}_{}.sql", m.version, m.name))
                .collect();
            assert_eq!(files, listed, "migrations/{dialect}");
        }
    }

    #[test]
    fn a_missing_dialect_is_an_error_not_a_skip() {
        let m = Migration {
            version: 9,
            name: "later",
            sqlite: "SELECT 1",
            postgres: None,
        };
        assert!(matches!(
            m.sql(Dialect::Postgres),
            Err(StateError::MissingDialect { version: 9, .. })
        ));
    }
}
