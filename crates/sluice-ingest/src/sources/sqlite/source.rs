//! The `sqlite` connector.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use sluice_core::SourceDecl;
use sluice_core::env::expand_env;

use super::config::{Mode, SqliteConfig, SqliteTable};
use super::read::{ReadRequest, read_chunks};
use crate::error::IngestError;
use crate::source::{IngestContext, IngestReport, Source, find_table};
use crate::sources::table_load::{Target, land_chunks, position};

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
        let invalid =
            |field: String, message: String| IngestError::Config(decl.invalid(&field, message));
        for (i, t) in config.tables.iter().enumerate() {
            if t.mode == Mode::Incremental && t.cursor.is_none() {
                return Err(invalid(
                    format!("tables[{i}].cursor"),
                    format!(
                        "table `{}` is incremental and needs a `cursor` column",
                        t.name
                    ),
                ));
            }
        }
        let busy_timeout = sluice_core::duration::parse_duration(&config.busy_timeout)
            .map_err(|e| invalid("busy_timeout".into(), e))?;
        if config.batch_size == 0 || config.commit_rows == 0 {
            return Err(invalid(
                "batch_size".into(),
                "batch_size and commit_rows must be at least 1".into(),
            ));
        }
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

    fn table(&self, name: &str) -> Result<&SqliteTable, IngestError> {
        find_table(&self.name, &self.config.tables, name, |t| &t.name)
    }
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

fn json_to_sql(v: &serde_json::Value) -> rusqlite::types::Value {
    match v {
        serde_json::Value::Number(n) if n.is_i64() => {
            rusqlite::types::Value::Integer(n.as_i64().unwrap_or_default())
        }
        serde_json::Value::Number(n) => {
            rusqlite::types::Value::Real(n.as_f64().unwrap_or_default())
        }
        serde_json::Value::String(s) => rusqlite::types::Value::Text(s.clone()),
        serde_json::Value::Null => rusqlite::types::Value::Null,
        other => rusqlite::types::Value::Text(other.to_string()),
    }
}

#[async_trait]
impl Source for SqliteSource {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn tables(&self) -> Vec<String> {
        self.config.tables.iter().map(|t| t.name.clone()).collect()
    }

    async fn ingest(&self, table: &str, cx: &IngestContext) -> Result<IngestReport, IngestError> {
        let t = self.table(table)?;
        let start = position(cx, &self.name, &t.name, t.mode).await?;
        let watermark = start.watermark.clone();
        let from = match &t.query {
            Some(q) => format!("({q}) AS q"),
            None => quote(&t.name),
        };
        let (sql, params, commit_rows) = match (t.mode, &t.cursor, &watermark) {
            (Mode::Incremental, Some(c), Some(w)) => (
                format!(
                    "SELECT * FROM {from} WHERE {} > ?1 ORDER BY {}",
                    quote(c),
                    quote(c)
                ),
                vec![json_to_sql(w)],
                self.config.commit_rows,
            ),
            (Mode::Incremental, Some(c), None) => (
                format!("SELECT * FROM {from} ORDER BY {}", quote(c)),
                vec![],
                self.config.commit_rows,
            ),
            // A full load streams into one commit (see table_load.rs): a chunk per batch.
            _ => (
                format!("SELECT * FROM {from}"),
                vec![],
                self.config.batch_size,
            ),
        };
        let request = ReadRequest {
            db: self.db.clone(),
            sql,
            params,
            cursor: if t.mode == Mode::Incremental {
                t.cursor.clone()
            } else {
                None
            },
            batch_size: self.config.batch_size,
            commit_rows,
            source: self.name.clone(),
            table: t.name.clone(),
            busy_timeout: self.busy_timeout,
        };
        // A channel of one gives backpressure: the reader waits while a chunk is being committed.
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let reader = tokio::task::spawn_blocking(move || read_chunks(request, tx));
        let origin = format!(
            "sqlite:{}",
            self.db
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        let target = Target {
            source: &self.name,
            table: &t.name,
            mode: t.mode,
            pii: &t.pii,
            origin: &origin,
        };
        land_chunks(cx, target, start, rx, reader).await
    }
}
