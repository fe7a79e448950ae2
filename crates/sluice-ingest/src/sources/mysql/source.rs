//! The `mysql` connector (MySQL and MariaDB): a [`Driver`] of the relational kit.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};
use sluice_core::SourceDecl;
use sluice_core::env::expand_env;

use tokio::task::JoinHandle;

use super::client::{MyFailure, connect, options, quote};
use super::config::{Mode, MysqlConfig, MysqlTable};
use super::read::read_chunks;
use super::types::MyKind;
use crate::error::IngestError;
use crate::sources::relational::{self, ChunkTx, Driver, ReadRequest};

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
        relational::validate(decl, &config)?;
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

    fn database_of<'a>(&'a self, t: &'a MysqlTable) -> &'a str {
        t.database.as_deref().unwrap_or(&self.database)
    }

    fn prepare_error(&self, t: &MysqlTable, e: mysql_async::Error) -> IngestError {
        MyFailure::from(e).into_error(
            &self.name,
            &t.name,
            &format!("cannot read `{}`", self.qualified(t)),
        )
    }
}

#[async_trait]
impl Driver for MysqlSource {
    const KIND: &'static str = "mysql";
    type Config = MysqlConfig;
    type Column = MyKind;
    type Conn = Conn;

    fn source_name(&self) -> &str {
        &self.name
    }

    fn config(&self) -> &MysqlConfig {
        &self.config
    }

    fn qualified(&self, t: &MysqlTable) -> String {
        format!("{}.{}", self.database_of(t), t.name)
    }

    fn table_sql(&self, t: &MysqlTable) -> String {
        format!("{}.{}", quote(self.database_of(t)), quote(&t.name))
    }

    fn quote(ident: &str) -> String {
        quote(ident)
    }

    fn after_watermark(quoted_cursor: &str, column: &MyKind) -> String {
        column.after_watermark(quoted_cursor)
    }

    fn cursor_problem(name: &str, column: &MyKind) -> Option<String> {
        (!column.can_be_cursor()).then(|| {
            format!(
                "cursor column `{name}` lands as {}, which cannot be a cursor; use an integer, \
                 decimal, float, text, date, datetime, timestamp or time column",
                column.arrow_type()
            )
        })
    }

    async fn connect(&self, t: &MysqlTable) -> Result<Conn, IngestError> {
        connect(&self.opts, self.connect_timeout)
            .await
            .map_err(|e| e.into_error(&self.name, &t.name, "cannot connect"))
    }

    async fn describe(
        &self,
        mut conn: Conn,
        t: &MysqlTable,
        select: &str,
    ) -> Result<(Conn, Vec<(String, MyKind)>), IngestError> {
        let qualified = self.qualified(t);
        let base = conn
            .prep(select)
            .await
            .map_err(|e| self.prepare_error(t, e))?;
        let mut columns = Vec::with_capacity(base.columns().len());
        for c in base.columns().iter() {
            let kind = MyKind::of(c).map_err(|type_name| {
                relational::unsupported("mysql", &self.name, &qualified, &c.name_str(), &type_name)
            })?;
            columns.push((c.name_str().into_owned(), kind));
        }
        Ok((conn, columns))
    }

    async fn read(
        &self,
        mut conn: Conn,
        t: &MysqlTable,
        _mode: Mode,
        read: ReadRequest<MyKind>,
        tx: ChunkTx,
    ) -> Result<JoinHandle<()>, IngestError> {
        let statement = conn
            .prep(&read.sql)
            .await
            .map_err(|e| self.prepare_error(t, e))?;
        Ok(tokio::spawn(read_chunks(conn, statement, read, tx)))
    }
}

relational::relational_source!(MysqlSource);

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
        let orders = &s.config.tables[0];
        assert_eq!(s.table_sql(orders), "`shop`.`orders`");
        let refunds = &s.config.tables[1];
        assert_eq!(s.qualified(refunds), "billing.refunds");
        assert_eq!(
            relational::relation_sql(refunds.query.as_deref(), s.table_sql(refunds)),
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
