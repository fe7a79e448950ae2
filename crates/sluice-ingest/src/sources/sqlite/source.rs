//! The `sqlite` connector: a [`Driver`] of the relational kit.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use rusqlite::OpenFlags;
use sluice_core::SourceDecl;
use sluice_core::env::expand_env;
use tokio::task::JoinHandle;

use super::config::{Mode, SqliteConfig, SqliteTable};
use super::read::{Kind, describe, read_chunks, sqlite_error};
use crate::error::IngestError;
use crate::sources::relational::{self, ChunkTx, Driver, ReadRequest};

/// Lands tables of a SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteSource {
    name: String,
    db: PathBuf,
    busy_timeout: std::time::Duration,
    config: SqliteConfig,
}

impl SqliteSource {
    /// Parses and validates a source file of kind `sqlite`.
    pub fn from_decl(decl: &SourceDecl, root: &Path) -> Result<Self, IngestError> {
        let config: SqliteConfig = decl.config()?;
        relational::validate(decl, &config)?;
        let busy_timeout = sluice_core::duration::parse_duration(&config.busy_timeout)
            .map_err(|e| IngestError::Config(decl.invalid("busy_timeout", e)))?;
        let conn = expand_env(&config.connection, &decl.path)?;
        let conn = conn.strip_prefix("sqlite://").unwrap_or(&conn).to_string();
        let db = if Path::new(&conn).is_absolute() {
            PathBuf::from(conn)
        } else {
            root.join(conn)
        };
        Ok(Self {
            name: decl.name.clone(),
            db,
            busy_timeout,
            config,
        })
    }

    /// Opens the database read-only (on a blocking thread: SQLite waits for locks).
    fn open(&self, table: &str) -> Result<rusqlite::Connection, IngestError> {
        if !self.db.is_file() {
            return Err(relational::read_error(
                &self.name,
                table,
                format!("database file {} does not exist", self.db.display()),
            ));
        }
        let conn = rusqlite::Connection::open_with_flags(
            &self.db,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| {
            sqlite_error(
                &self.name,
                table,
                format!("cannot open {}: {e}", self.db.display()),
                &e,
            )
        })?;
        let _ = conn.busy_timeout(self.busy_timeout);
        Ok(conn)
    }
}

/// Runs `f` on a blocking thread (SQLite calls may wait up to `busy_timeout` for a lock).
async fn blocking<T: Send + 'static>(
    source: &str,
    table: &str,
    f: impl FnOnce() -> Result<T, IngestError> + Send + 'static,
) -> Result<T, IngestError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        relational::read_error(
            source,
            table,
            format!("the reader stopped unexpectedly: {e}"),
        )
    })?
}

#[async_trait]
impl Driver for SqliteSource {
    const KIND: &'static str = "sqlite";
    type Config = SqliteConfig;
    type Column = Kind;
    type Conn = rusqlite::Connection;

    fn source_name(&self) -> &str {
        &self.name
    }

    fn config(&self) -> &SqliteConfig {
        &self.config
    }

    fn qualified(&self, t: &SqliteTable) -> String {
        t.name.clone()
    }

    fn table_sql(&self, t: &SqliteTable) -> String {
        Self::quote(&t.name)
    }

    fn origin(&self, _t: &SqliteTable) -> String {
        format!(
            "sqlite:{}",
            self.db
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default()
        )
    }

    fn quote(ident: &str) -> String {
        format!("\"{}\"", ident.replace('"', "\"\""))
    }

    fn after_watermark(quoted_cursor: &str, _column: &Kind) -> String {
        format!("{quoted_cursor} > ?1")
    }

    /// SQLite's first incremental read has always included rows with a NULL cursor (they sort
    /// first); kept so that existing lakes see the same rows.
    fn before_watermark(_quoted_cursor: &str) -> Option<String> {
        None
    }

    fn cursor_problem(_name: &str, _column: &Kind) -> Option<String> {
        None
    }

    async fn connect(&self, t: &SqliteTable) -> Result<rusqlite::Connection, IngestError> {
        let this = self.clone();
        let table = t.name.clone();
        blocking(&self.name, &t.name, move || this.open(&table)).await
    }

    async fn describe(
        &self,
        conn: rusqlite::Connection,
        t: &SqliteTable,
        select: &str,
    ) -> Result<(rusqlite::Connection, Vec<(String, Kind)>), IngestError> {
        let (source, table, sql) = (self.name.clone(), t.name.clone(), select.to_string());
        blocking(&self.name, &t.name, move || {
            let columns = describe(&conn, &sql)
                .map_err(|e| sqlite_error(&source, &table, format!("{e} (query: {sql})"), &e))?;
            Ok((conn, columns))
        })
        .await
    }

    async fn read(
        &self,
        conn: rusqlite::Connection,
        _t: &SqliteTable,
        _mode: Mode,
        read: ReadRequest<Kind>,
        tx: ChunkTx,
    ) -> Result<JoinHandle<()>, IngestError> {
        let runtime = tokio::runtime::Handle::current();
        Ok(tokio::task::spawn_blocking(move || {
            read_chunks(&runtime, conn, read, tx)
        }))
    }
}

relational::relational_source!(SqliteSource);

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SqliteSource, IngestError> {
        let decl = SourceDecl::parse(Path::new("sources/app.yml"), text).unwrap();
        SqliteSource::from_decl(&decl, Path::new("/project"))
    }

    #[test]
    fn defaults_and_paths() {
        let s = parse("kind: sqlite\nconnection: sqlite://data/app.db\ntables:\n  - name: a\n")
            .unwrap();
        assert_eq!(s.db, Path::new("/project/data/app.db"));
        assert_eq!((s.config.batch_size, s.config.commit_rows), (8192, 500_000));
        assert_eq!(s.busy_timeout, std::time::Duration::from_secs(5));
        assert_eq!(s.config.tables[0].mode, Mode::Full);
        assert_eq!(s.origin(&s.config.tables[0]), "sqlite:app.db");
    }

    #[test]
    fn invalid_files_name_the_field() {
        let err = |text: &str| parse(text).err().unwrap().to_string();
        let e =
            err("kind: sqlite\nconnection: a.db\ntables:\n  - name: a\n    mode: incremental\n");
        assert!(e.contains("tables[0].cursor"), "{e}");
        let e = err("kind: sqlite\nconnection: a.db\nbusy_timeout: soon\ntables: []\n");
        assert!(e.contains("busy_timeout"), "{e}");
        let e = err("kind: sqlite\nconnection: a.db\ncommit_rows: 0\ntables: []\n");
        assert!(e.contains("at least 1"), "{e}");
    }
}
