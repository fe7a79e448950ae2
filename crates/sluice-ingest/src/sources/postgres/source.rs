//! The `postgres` connector: a [`Driver`] of the relational kit, plus change data capture.

use std::path::Path;

use async_trait::async_trait;
use sluice_core::SourceDecl;
use sluice_core::env::expand_env;
use tokio_postgres::Client;

use tokio::task::JoinHandle;

use super::client::{PgFailure, connect, quote};
use super::config::{PgMode, PostgresConfig, PostgresTable};
use super::read::read_chunks;
use super::types::{PgColumn, columns_of};
use crate::error::IngestError;
use crate::source::{IngestContext, IngestReport, find_table};
use crate::sources::relational::{self, ChunkTx, Driver, LoadMode, ReadRequest};
use crate::sources::table_load::Mode;

/// Lands tables of a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresSource {
    name: String,
    /// The parsed connection settings (its `Debug` hides the password).
    pg: tokio_postgres::Config,
    config: PostgresConfig,
}

impl PostgresSource {
    /// Parses and validates a source file of kind `postgres`. Does not connect.
    pub fn from_decl(decl: &SourceDecl, _root: &Path) -> Result<Self, IngestError> {
        let config: PostgresConfig = decl.config()?;
        let invalid =
            |field: String, message: String| IngestError::Config(decl.invalid(&field, message));
        for (i, t) in config.tables.iter().enumerate() {
            if t.mode == PgMode::Cdc && (t.query.is_some() || t.cursor.is_some()) {
                return Err(invalid(
                    format!("tables[{i}].mode"),
                    format!(
                        "table `{}` is captured with `mode: cdc`, which reads the table itself: \
                         remove `query:` and `cursor:`",
                        t.name
                    ),
                ));
            }
            if t.mode != PgMode::Cdc && (t.slot.is_some() || t.publication.is_some()) {
                return Err(invalid(
                    format!("tables[{i}].slot"),
                    format!(
                        "`slot:` and `publication:` apply to `mode: cdc` only (table `{}`)",
                        t.name
                    ),
                ));
            }
        }
        relational::validate(decl, &config)?;
        let connect_timeout = sluice_core::duration::parse_duration(&config.connect_timeout)
            .map_err(|e| invalid("connect_timeout".into(), e))?;
        let conn = expand_env(&config.connection, &decl.path)?;
        // The parse error never quotes the string, which may hold a password.
        let mut pg: tokio_postgres::Config = conn.parse().map_err(|e| {
            invalid(
                "connection".into(),
                format!(
                    "not a PostgreSQL connection URL or key=value string ({e}); expected e.g. \
                     `postgres://user@host:5432/db` or `host=… user=… dbname=…`"
                ),
            )
        })?;
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(connect_timeout);
        }
        if pg.get_application_name().is_none() {
            pg.application_name("sluice");
        }
        Ok(Self {
            name: decl.name.clone(),
            pg,
            config,
        })
    }

    fn table(&self, name: &str) -> Result<&PostgresTable, IngestError> {
        find_table(&self.name, &self.config.tables, name, |t| &t.name)
    }

    fn schema_of<'a>(&'a self, t: &'a PostgresTable) -> &'a str {
        t.schema.as_deref().unwrap_or(&self.config.schema)
    }

    /// Captures `table` (which must be `mode: cdc`) until `until`: [`super::cdc::Until::CaughtUp`]
    /// is one bounded run (what [`crate::Source::ingest`] does); [`super::cdc::Until::Stopped`] streams
    /// continuously, committing at least every `flush_interval`, until told to stop.
    pub async fn capture(
        &self,
        table: &str,
        cx: &IngestContext,
        until: super::cdc::Until,
    ) -> Result<IngestReport, IngestError> {
        let t = self.table(table)?;
        if t.mode != PgMode::Cdc {
            return Err(relational::read_error(
                &self.name,
                &t.name,
                "`capture` needs a table with `mode: cdc`",
            ));
        }
        super::cdc::capture(&self.cdc_table(t), cx, until).await
    }

    /// What CDC needs to know about table `t`.
    pub(crate) fn cdc_table(&self, t: &PostgresTable) -> super::cdc::CdcTable {
        let slot = t
            .slot
            .clone()
            .unwrap_or_else(|| super::cdc::default_slot_name(&self.name, &t.name));
        super::cdc::CdcTable {
            source: self.name.clone(),
            publication: t.publication.clone().unwrap_or_else(|| slot.clone()),
            slot,
            origin: self.origin(t),
            schema: self.schema_of(t).to_string(),
            table: t.name.clone(),
            primary_key: t.primary_key.clone(),
            pii: t.pii.clone(),
            pg: self.pg.clone(),
            batch_size: self.config.batch_size,
            commit_rows: self.config.commit_rows,
        }
    }
}

#[async_trait]
impl Driver for PostgresSource {
    const KIND: &'static str = "postgres";
    type Config = PostgresConfig;
    type Column = PgColumn;
    type Conn = Client;

    fn source_name(&self) -> &str {
        &self.name
    }

    fn config(&self) -> &PostgresConfig {
        &self.config
    }

    fn qualified(&self, t: &PostgresTable) -> String {
        format!("{}.{}", self.schema_of(t), t.name)
    }

    fn table_sql(&self, t: &PostgresTable) -> String {
        format!("{}.{}", quote(self.schema_of(t)), quote(&t.name))
    }

    fn quote(ident: &str) -> String {
        quote(ident)
    }

    /// The watermark travels as text and is cast to the cursor's own type.
    fn after_watermark(quoted_cursor: &str, column: &PgColumn) -> String {
        format!(
            "{quoted_cursor} > CAST($1::text AS {}.{})",
            quote(column.ty.schema()),
            quote(column.ty.name())
        )
    }

    fn cursor_problem(name: &str, column: &PgColumn) -> Option<String> {
        (!column.kind.can_be_cursor()).then(|| {
            format!(
                "cursor column `{name}` has type `{}`, which cannot be a cursor; use an integer, \
                 numeric, float, text, uuid, date, time, timestamp or timestamptz column",
                column.ty.name()
            )
        })
    }

    async fn connect(&self, t: &PostgresTable) -> Result<Client, IngestError> {
        connect(&self.pg)
            .await
            .map_err(|e| e.into_error(&self.name, &t.name, "cannot connect"))
    }

    async fn describe(
        &self,
        client: Client,
        t: &PostgresTable,
        select: &str,
    ) -> Result<(Client, Vec<(String, PgColumn)>), IngestError> {
        let qualified = self.qualified(t);
        let base = client.prepare(select).await.map_err(|e| {
            PgFailure::from(e).into_error(
                &self.name,
                &t.name,
                &format!("cannot read `{qualified}`"),
            )
        })?;
        let columns = columns_of(base.columns(), &self.name, &qualified)?;
        Ok((client, columns))
    }

    async fn read(
        &self,
        client: Client,
        t: &PostgresTable,
        mode: Mode,
        read: ReadRequest<PgColumn>,
        tx: ChunkTx,
    ) -> Result<JoinHandle<()>, IngestError> {
        let statement = client.prepare(&read.sql).await.map_err(|e| {
            PgFailure::from(e).into_error(
                &self.name,
                &t.name,
                &format!("cannot read `{}`", self.qualified(t)),
            )
        })?;
        if mode == Mode::Full && t.query.is_none() {
            // Large tables with an integer key are read in parallel ranges (see parallel.rs).
            let schema = self.schema_of(t);
            return super::parallel::spawn_full_read(&self.pg, client, statement, read, schema, tx)
                .await;
        }
        Ok(tokio::spawn(read_chunks(client, statement, read, tx)))
    }

    async fn ingest_table(
        &self,
        table: &str,
        cx: &IngestContext,
    ) -> Result<IngestReport, IngestError> {
        let t = self.table(table)?;
        match t.mode.load_mode() {
            Some(mode) => relational::load(self, t, mode, cx).await,
            None => super::cdc::ingest(&self.cdc_table(t), cx).await,
        }
    }
}

relational::relational_source!(PostgresSource);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::relational::relation_sql;

    fn decl(text: &str) -> SourceDecl {
        SourceDecl::parse(std::path::Path::new("sources/shop.yml"), text).unwrap()
    }

    fn parse(text: &str) -> Result<PostgresSource, IngestError> {
        PostgresSource::from_decl(&decl(text), Path::new("."))
    }

    #[test]
    fn defaults_and_relations() {
        let s = parse(
            "kind: postgres\nconnection: postgres://u:secret@db:6543/shop\ntables:\n  \
             - name: Orders\n  - name: refunds\n    schema: billing\n    \
             query: \"SELECT * FROM billing.refunds -- all of them\\n;\"\n",
        )
        .unwrap();
        assert_eq!(s.config.schema, "public");
        assert_eq!((s.config.batch_size, s.config.commit_rows), (8192, 500_000));
        assert_eq!(s.pg.get_ports(), [6543]);
        assert_eq!(s.pg.get_application_name(), Some("sluice"));
        assert_eq!(
            s.pg.get_connect_timeout(),
            Some(&std::time::Duration::from_secs(10))
        );
        assert!(
            !format!("{s:?}").contains("secret"),
            "Debug hides the password"
        );
        let orders = s.table("Orders").unwrap();
        assert_eq!(
            relation_sql(orders.query.as_deref(), s.table_sql(orders)),
            "\"public\".\"Orders\""
        );
        let refunds = s.table("refunds").unwrap();
        assert_eq!(s.qualified(refunds), "billing.refunds");
        assert_eq!(
            relation_sql(refunds.query.as_deref(), s.table_sql(refunds)),
            "(SELECT * FROM billing.refunds -- all of them\n) AS q"
        );
        assert!(matches!(
            s.table("nope"),
            Err(IngestError::UnknownTable { .. })
        ));
    }

    #[test]
    fn invalid_files_name_the_field() {
        let err =
            parse("kind: postgres\nconnection: x\ntables:\n  - name: a\n    mode: incremental\n")
                .err()
                .unwrap()
                .to_string();
        assert!(err.contains("tables[0].cursor"), "{err}");
        let err = parse("kind: postgres\nconnection: x\ntables:\n  - name: a\n    cursr: id\n")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("cursr"), "{err}");
        let err = parse("kind: postgres\nconnection: ${SLUICE_TEST_SURELY_UNSET}\ntables: []\n")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("SLUICE_TEST_SURELY_UNSET"), "{err}");
        let err = parse(
            "kind: postgres\nconnection: \"host=x port=nope password=hunter2\"\ntables: []\n",
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("field `connection`"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let err = parse("kind: postgres\nconnection: host=x\nbatch_size: 0\ntables: []\n")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("batch_size"), "{err}");
    }
}
