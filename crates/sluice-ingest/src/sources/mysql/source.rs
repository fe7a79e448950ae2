//! The `mysql` connector (MySQL and MariaDB).

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};
use sluice_core::SourceDecl;
use sluice_core::env::expand_env;

use super::client::{MyFailure, connect, options, quote};
use super::config::{Mode, MysqlConfig, MysqlTable};
use super::read::{ReadRequest, read_chunks};
use super::types::MyKind;
use crate::error::IngestError;
use crate::source::{IngestContext, IngestReport, Source, find_table};
use crate::sources::table_load::{Target, land_chunks, position};

/// Lands tables of a MySQL or MariaDB database.
#[derive(Clone)]
pub struct MysqlSource {
    name: String,
    /// Connection options (they hold the password: never logged).
    opts: Opts,
    /// The database of tables that name none.
    database: String,
    connect_timeout: Duration,
    config: MysqlConfig,
}

impl std::fmt::Debug for MysqlSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MysqlSource")
            .field("name", &self.name)
            .field("database", &self.database)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl MysqlSource {
    /// Parses and validates a source file of kind `mysql`. Does not connect.
    pub fn from_decl(decl: &SourceDecl, _root: &Path) -> Result<Self, IngestError> {
        let config: MysqlConfig = decl.config()?;
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
            if t.query.as_deref().is_some_and(|q| q.trim().is_empty()) {
                return Err(invalid(
                    format!("tables[{i}].query"),
                    "the query is empty; remove `query:` to read the whole table".into(),
                ));
            }
        }
        if config.batch_size == 0 || config.commit_rows == 0 {
            return Err(invalid(
                "batch_size".into(),
                "batch_size and commit_rows must be at least 1".into(),
            ));
        }
        let connect_timeout = sluice_core::duration::parse_duration(&config.connect_timeout)
            .map_err(|e| invalid("connect_timeout".into(), e))?;
        let url = expand_env(&config.connection, &decl.path)?;
        // The message never quotes the URL, which may hold a password.
        let opts = options(&url).map_err(|e| {
            invalid(
                "connection".into(),
                format!(
                    "not a MySQL connection URL ({e}); expected e.g. `mysql://user@host:3306/db`"
                ),
            )
        })?;
        let database = match config
            .database
            .clone()
            .or_else(|| opts.db_name().map(str::to_string))
        {
            Some(db) => db,
            None if config
                .tables
                .iter()
                .all(|t| t.database.is_some() || t.query.is_some()) =>
            {
                String::new()
            }
            None => {
                return Err(invalid(
                    "database".into(),
                    "no database: name it in the URL (`mysql://host:3306/shop`) or as `database:`"
                        .into(),
                ));
            }
        };
        Ok(Self {
            name: decl.name.clone(),
            opts,
            database,
            connect_timeout,
            config,
        })
    }

    fn table(&self, name: &str) -> Result<&MysqlTable, IngestError> {
        find_table(&self.name, &self.config.tables, name, |t| &t.name)
    }

    fn database_of<'a>(&'a self, t: &'a MysqlTable) -> &'a str {
        t.database.as_deref().unwrap_or(&self.database)
    }

    /// `database.table` as written in messages.
    fn qualified(&self, t: &MysqlTable) -> String {
        format!("{}.{}", self.database_of(t), t.name)
    }

    /// The relation read: the table, or the table's `query:` as a derived table.
    fn relation_sql(&self, t: &MysqlTable) -> String {
        match &t.query {
            // The newline ends a trailing `-- comment` before the closing parenthesis.
            Some(q) => format!(
                "({}\n) AS q",
                q.trim()
                    .trim_end_matches(|c: char| c == ';' || c.is_whitespace())
            ),
            None => format!("{}.{}", quote(self.database_of(t)), quote(&t.name)),
        }
    }

    fn read_error(&self, t: &MysqlTable, message: String) -> IngestError {
        IngestError::Read {
            source_name: self.name.clone(),
            table: t.name.clone(),
            message,
            transient: false,
        }
    }

    /// Prepares the read, maps every column to Arrow and builds the request for [`read_chunks`].
    async fn plan(
        &self,
        t: &MysqlTable,
        conn: &mut Conn,
        watermark: Option<serde_json::Value>,
    ) -> Result<ReadRequest, IngestError> {
        let qualified = self.qualified(t);
        let fail = |e: mysql_async::Error| {
            MyFailure::from(e).into_error(
                &self.name,
                &t.name,
                &format!("cannot read `{qualified}`"),
            )
        };
        let from = self.relation_sql(t);
        let base = conn
            .prep(format!("SELECT * FROM {from}"))
            .await
            .map_err(fail)?;
        let mut columns = Vec::with_capacity(base.columns().len());
        for c in base.columns().iter() {
            let kind = MyKind::of(c).map_err(|type_name| IngestError::UnsupportedType {
                kind: "mysql",
                source_name: self.name.clone(),
                table: qualified.clone(),
                column: c.name_str().into_owned(),
                type_name,
            })?;
            columns.push((c.name_str().into_owned(), kind));
        }
        let cursor = match (t.mode, &t.cursor) {
            (Mode::Incremental, Some(name)) => {
                let Some(idx) = columns.iter().position(|(n, _)| n == name) else {
                    return Err(self.read_error(
                        t,
                        format!(
                            "cursor column `{name}` is not in `{qualified}` (columns: {})",
                            columns
                                .iter()
                                .map(|c| c.0.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                };
                if !columns[idx].1.can_be_cursor() {
                    return Err(self.read_error(
                        t,
                        format!(
                            "cursor column `{name}` lands as {}, which cannot be a cursor; use an \
                             integer, decimal, float, text, date, datetime, timestamp or time column",
                            columns[idx].1.arrow_type()
                        ),
                    ));
                }
                Some((idx, name))
            }
            _ => None,
        };
        let (statement, commit_rows) = match &cursor {
            Some((idx, name)) => {
                let c = quote(name);
                let filter = if watermark.is_some() {
                    columns[*idx].1.after_watermark(&c)
                } else {
                    format!("{c} IS NOT NULL")
                };
                let sql = format!("SELECT * FROM {from} WHERE {filter} ORDER BY {c}");
                (conn.prep(sql).await.map_err(fail)?, self.config.commit_rows)
            }
            // A full load streams into one commit (see table_load.rs): a chunk per batch.
            None => (base, self.config.batch_size),
        };
        Ok(ReadRequest {
            statement,
            watermark: if cursor.is_some() { watermark } else { None },
            columns,
            cursor: cursor.map(|c| c.0),
            batch_size: self.config.batch_size,
            commit_rows,
            source: self.name.clone(),
            table: t.name.clone(),
        })
    }
}

#[async_trait]
impl Source for MysqlSource {
    fn kind(&self) -> &'static str {
        "mysql"
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
        let mut conn = connect(&self.opts, self.connect_timeout)
            .await
            .map_err(|e| e.into_error(&self.name, &t.name, "cannot connect"))?;
        let request = self.plan(t, &mut conn, watermark.clone()).await?;
        tracing::debug!(source = %self.name, table = %t.name, watermark = ?watermark, "reading mysql table");
        // A channel of one gives backpressure: the reader waits while a chunk is being committed.
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let reader = tokio::spawn(read_chunks(conn, request, tx));
        let origin = format!("mysql:{}", self.qualified(t));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<MysqlSource, IngestError> {
        let decl = SourceDecl::parse(std::path::Path::new("sources/shop.yml"), text).unwrap();
        MysqlSource::from_decl(&decl, Path::new("."))
    }

    #[test]
    fn defaults_and_relations() {
        let s = parse(
            "kind: mysql\nconnection: mysql://u:secret@db:3307/shop\ntables:\n  - name: orders\n  \
             - name: refunds\n    database: billing\n    query: \"SELECT * FROM billing.refunds;\"\n",
        )
        .unwrap();
        assert_eq!(s.database, "shop");
        assert_eq!(s.connect_timeout, Duration::from_secs(10));
        assert!(
            !format!("{s:?}").contains("secret"),
            "Debug hides the password"
        );
        let orders = s.table("orders").unwrap();
        assert_eq!(s.relation_sql(orders), "`shop`.`orders`");
        let refunds = s.table("refunds").unwrap();
        assert_eq!(s.qualified(refunds), "billing.refunds");
        assert_eq!(
            s.relation_sql(refunds),
            "(SELECT * FROM billing.refunds\n) AS q"
        );
    }

    #[test]
    fn invalid_files_name_the_field() {
        let err = |text: &str| parse(text).err().unwrap().to_string();
        let e = err(
            "kind: mysql\nconnection: mysql://h/db\ntables:\n  - name: a\n    mode: incremental\n",
        );
        assert!(e.contains("tables[0].cursor"), "{e}");
        let e = err("kind: mysql\nconnection: mysql://h/db\ntables:\n  - name: a\n    cursr: id\n");
        assert!(e.contains("cursr"), "{e}");
        let e = err("kind: mysql\nconnection: \"pg://u:hunter2@h/db\"\ntables: []\n");
        assert!(
            e.contains("field `connection`") && !e.contains("hunter2"),
            "{e}"
        );
        let e = err("kind: mysql\nconnection: mysql://h\ntables:\n  - name: a\n");
        assert!(e.contains("no database"), "{e}");
    }
}
