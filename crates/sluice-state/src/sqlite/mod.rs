//! The SQLite backend: `.sluice/state.db` by default.
//!
//! Several processes share one file (a scheduler, `sluice serve`, a `sluice run` next to them), so
//! every connection waits for locks instead of failing (`busy_timeout`), the journal is WAL (readers
//! never block the writer), and a migration runs under `BEGIN IMMEDIATE` (the write lock is taken
//! before the version is re-read, so two processes opening a new database at once cannot both apply
//! it). The schema version is `PRAGMA user_version`, which lives in the database header and changes
//! in the same transaction as the migration's tables.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

mod audit;
mod auth;
mod control;
mod incidents;
mod partitions;
mod processes;
mod queue;
mod runs;
mod schedule;

use crate::StateError;
use crate::migration::{Dialect, MIGRATIONS, Migration, StateBackend, migrate};

/// How long a connection waits for another process's lock before it reports `database is locked`.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens (creating it and its folder if needed) the state database at `path`, configured for
/// sharing between processes and migrated to the schema this binary knows.
///
/// Fails with [`StateError::NewerSchema`] when a newer sluice migrated the database further.
pub fn open(path: &Path) -> Result<Connection, StateError> {
    let display = path.display().to_string();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| StateError::Io {
            path: display.clone(),
            source,
        })?;
    }
    let sqlite = |source| StateError::Sqlite {
        path: display.clone(),
        source,
    };
    let conn = Connection::open(path).map_err(sqlite)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sqlite)?;
    set_wal(&conn).map_err(sqlite)?;
    // In WAL mode NORMAL still never corrupts the database; a power cut may only lose the last
    // records. Data lives in the lake (whose commits carry their own positions), and FULL would
    // cost an fsync per node event: most of a small node's scheduling time.
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(sqlite)?;
    migrate(&mut SqliteBackend::new(&conn, &display), MIGRATIONS)?;
    Ok(conn)
}

/// Switches the journal to WAL. While another connection is creating the file or switching it too,
/// SQLite answers `SQLITE_BUSY` at once for this pragma, without calling the busy handler, so the
/// switch is retried here within [`BUSY_TIMEOUT`] (seen with several processes opening a new
/// database at the same moment).
fn set_wal(conn: &Connection) -> rusqlite::Result<()> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    let mut pause = Duration::from_millis(2);
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

/// An in-memory state database with the current schema (tests, and tools that keep no history).
pub fn open_in_memory() -> Result<Connection, StateError> {
    let sqlite = |source| StateError::Sqlite {
        path: ":memory:".into(),
        source,
    };
    let conn = Connection::open_in_memory().map_err(sqlite)?;
    migrate(&mut SqliteBackend::new(&conn, ":memory:"), MIGRATIONS)?;
    Ok(conn)
}

/// A state database on SQLite, shared by the threads of one process: one connection behind a mutex
/// (SQLite serialises writers anyway; readers are short). Every store trait, and so
/// [`crate::State`], is implemented on it.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
    path: String,
}

impl SqliteStore {
    /// Opens (creating and migrating as needed) the database at `path`: see [`open`].
    pub fn open(path: &Path) -> Result<SqliteStore, StateError> {
        Ok(SqliteStore {
            conn: Mutex::new(open(path)?),
            path: path.display().to_string(),
        })
    }

    /// An in-memory database with the current schema.
    pub fn in_memory() -> Result<SqliteStore, StateError> {
        Ok(SqliteStore {
            conn: Mutex::new(open_in_memory()?),
            path: ":memory:".into(),
        })
    }

    /// The database file (`:memory:` for an in-memory one).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Runs `f` on the connection, turning its error into [`StateError::Sqlite`] with the path.
    /// A panic in an earlier `f` does not poison the store: SQLite rolled back what it left open.
    ///
    /// For this backend's own queries, and for tests and tools that must write rows no store
    /// operation writes (a database as an older sluice or a killed process left it).
    pub fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StateError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn).map_err(|source| StateError::Sqlite {
            path: self.path.clone(),
            source,
        })
    }
}

impl crate::State for SqliteStore {
    fn location(&self) -> String {
        self.path.clone()
    }
}

/// [`StateBackend`] over one SQLite connection.
pub struct SqliteBackend<'c> {
    conn: &'c Connection,
    location: String,
}

impl<'c> SqliteBackend<'c> {
    /// The backend over `conn`, which is the database at `location` (for messages).
    pub fn new(conn: &'c Connection, location: &str) -> SqliteBackend<'c> {
        SqliteBackend {
            conn,
            location: location.to_string(),
        }
    }

    fn sqlite(&self, source: rusqlite::Error) -> StateError {
        StateError::Sqlite {
            path: self.location.clone(),
            source,
        }
    }
}

fn user_version(conn: &Connection) -> rusqlite::Result<u32> {
    // Stored as a signed 32-bit integer; a negative value (written by hand) reads as huge, which
    // is refused as newer rather than silently migrated over.
    conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        .map(|v| u32::try_from(v).unwrap_or(u32::MAX))
}

impl StateBackend for SqliteBackend<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn location(&self) -> String {
        self.location.clone()
    }

    fn schema_version(&mut self) -> Result<u32, StateError> {
        user_version(self.conn).map_err(|e| self.sqlite(e))
    }

    fn apply(&mut self, migration: &Migration) -> Result<bool, StateError> {
        let sql = migration.sql(Dialect::Sqlite)?;
        let tx = rusqlite::Transaction::new_unchecked(self.conn, TransactionBehavior::Immediate)
            .map_err(|e| self.sqlite(e))?;
        if user_version(&tx).map_err(|e| self.sqlite(e))? >= migration.version {
            return Ok(false);
        }
        let failed = |source: rusqlite::Error| StateError::Migration {
            path: self.location.clone(),
            version: migration.version,
            name: migration.name,
            source: Box::new(source),
        };
        tx.execute_batch(sql).map_err(failed)?;
        // A pragma takes no parameters; the version is a number, never text from outside.
        tx.execute_batch(&format!("PRAGMA user_version = {}", migration.version))
            .map_err(failed)?;
        tx.commit().map_err(|e| self.sqlite(e))?;
        Ok(true)
    }
}

/// The schema version of the database behind `conn` (`PRAGMA user_version`).
pub fn schema_version(conn: &Connection) -> Result<u32, StateError> {
    SqliteBackend::new(conn, "").schema_version()
}
