//! The `postgres` connector.

use std::path::Path;

use async_trait::async_trait;
use sluice_core::SourceDecl;
use sluice_core::env::expand_env;
use tokio_postgres::Client;

use super::client::{connect, quote};
use super::config::{PgMode, PostgresConfig, PostgresTable};
use super::read::{ReadRequest, read_chunks};
use super::types::PgKind;
use crate::error::IngestError;
use crate::source::{IngestContext, IngestReport, Source, find_table};
use crate::sources::table_load::{Target, land_chunks, position};

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
            if t.mode == PgMode::Incremental && t.cursor.is_none() {
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

    /// `schema.table` as written in messages.
    fn qualified(&self, t: &PostgresTable) -> String {
        format!(
            "{}.{}",
            t.schema.as_deref().unwrap_or(&self.config.schema),
            t.name
        )
    }

    /// The relation read: the table, or the table's `query:` as a subquery.
    fn relation_sql(&self, t: &PostgresTable) -> String {
        match &t.query {
            // The newline ends a trailing `-- comment` before the closing parenthesis.
            Some(q) => format!(
                "({}\n) AS q",
                q.trim()
                    .trim_end_matches(|c: char| c == ';' || c.is_whitespace())
            ),
            None => format!(
                "{}.{}",
                quote(t.schema.as_deref().unwrap_or(&self.config.schema)),
                quote(&t.name)
            ),
        }
    }

    /// Prepares the read, maps every column to Arrow and builds the request for [`read_chunks`].
    async fn plan(
        &self,
        t: &PostgresTable,
        client: Client,
        watermark: Option<serde_json::Value>,
    ) -> Result<ReadRequest, IngestError> {
        let qualified = self.qualified(t);
        let fail = |e: tokio_postgres::Error, doing: &str| {
            super::client::PgFailure::from(e).into_error(&self.name, &t.name, doing)
        };
        let from = self.relation_sql(t);
        let base = client
            .prepare(&format!("SELECT * FROM {from}"))
            .await
            .map_err(|e| fail(e, &format!("cannot read `{qualified}`")))?;
        let mut columns = Vec::with_capacity(base.columns().len());
        for c in base.columns() {
            let kind = PgKind::of(c.type_(), c.type_modifier()).ok_or_else(|| {
                IngestError::UnsupportedType {
                    kind: "postgres",
                    source_name: self.name.clone(),
                    table: qualified.clone(),
                    column: c.name().to_string(),
                    type_name: c.type_().name().to_string(),
                }
            })?;
            columns.push((c.name().to_string(), kind));
        }
        let cursor = match (t.mode, &t.cursor) {
            (PgMode::Incremental, Some(name)) => {
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
                let ty = base.columns()[idx].type_();
                if !columns[idx].1.can_be_cursor() {
                    return Err(self.read_error(
                        t,
                        format!(
                            "cursor column `{name}` has type `{}`, which cannot be a cursor; use \
                             an integer, numeric, float, text, uuid, date, time, timestamp or \
                             timestamptz column",
                            ty.name()
                        ),
                    ));
                }
                Some((
                    idx,
                    name,
                    format!("{}.{}", quote(ty.schema()), quote(ty.name())),
                ))
            }
            _ => None,
        };
        let (statement, commit_rows) = match &cursor {
            Some((_, name, type_sql)) => {
                let c = quote(name);
                let filter = if watermark.is_some() {
                    format!("{c} > CAST($1::text AS {type_sql})")
                } else {
                    format!("{c} IS NOT NULL")
                };
                let sql = format!("SELECT * FROM {from} WHERE {filter} ORDER BY {c}");
                let stmt = client
                    .prepare(&sql)
                    .await
                    .map_err(|e| fail(e, &format!("cannot read `{qualified}`")))?;
                (stmt, self.config.commit_rows)
            }
            // A full load streams into one commit (see table_load.rs): a chunk per batch.
            None => (base, self.config.batch_size),
        };
        Ok(ReadRequest {
            client,
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

    /// Captures `table` (which must be `mode: cdc`) until `until`: [`super::cdc::Until::CaughtUp`]
    /// is one bounded run (what [`Source::ingest`] does); [`super::cdc::Until::Stopped`] streams
    /// continuously, committing at least every `flush_interval`, until told to stop.
    pub async fn capture(
        &self,
        table: &str,
        cx: &IngestContext,
        until: super::cdc::Until,
    ) -> Result<IngestReport, IngestError> {
        let t = self.table(table)?;
        if t.mode != PgMode::Cdc {
            return Err(self.read_error(t, "`capture` needs a table with `mode: cdc`".into()));
        }
        super::cdc::capture(&self.cdc_table(t), cx, until).await
    }

    /// What CDC needs to know about table `t`.
    pub(crate) fn cdc_table(&self, t: &PostgresTable) -> super::cdc::CdcTable {
        let schema = t
            .schema
            .clone()
            .unwrap_or_else(|| self.config.schema.clone());
        let slot = t
            .slot
            .clone()
            .unwrap_or_else(|| super::cdc::default_slot_name(&self.name, &t.name));
        super::cdc::CdcTable {
            source: self.name.clone(),
            publication: t.publication.clone().unwrap_or_else(|| slot.clone()),
            slot,
            origin: format!("postgres:{schema}.{}", t.name),
            schema,
            table: t.name.clone(),
            primary_key: t.primary_key.clone(),
            pii: t.pii.clone(),
            pg: self.pg.clone(),
            batch_size: self.config.batch_size,
            commit_rows: self.config.commit_rows,
        }
    }

    fn read_error(&self, t: &PostgresTable, message: String) -> IngestError {
        IngestError::Read {
            source_name: self.name.clone(),
            table: t.name.clone(),
            message,
            transient: false,
        }
    }
}

#[async_trait]
impl Source for PostgresSource {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn tables(&self) -> Vec<String> {
        self.config.tables.iter().map(|t| t.name.clone()).collect()
    }

    async fn ingest(&self, table: &str, cx: &IngestContext) -> Result<IngestReport, IngestError> {
        let t = self.table(table)?;
        let Some(mode) = t.mode.load_mode() else {
            return super::cdc::ingest(&self.cdc_table(t), cx).await;
        };
        let start = position(cx, &self.name, &t.name, mode).await?;
        let watermark = start.watermark.clone();
        let client = connect(&self.pg)
            .await
            .map_err(|e| e.into_error(&self.name, &t.name, "cannot connect"))?;
        let request = self.plan(t, client, watermark.clone()).await?;
        tracing::debug!(
            source = %self.name,
            table = %t.name,
            watermark = ?watermark,
            "reading postgres table"
        );
        // A channel of one gives backpressure: the reader waits while a chunk is being committed.
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let reader = if mode == crate::sources::table_load::Mode::Full && t.query.is_none() {
            // Large tables with an integer key are read in parallel ranges (see parallel.rs).
            let schema = t.schema.as_deref().unwrap_or(&self.config.schema);
            super::parallel::spawn_full_read(&self.pg, request, schema, &t.name, tx).await?
        } else {
            tokio::spawn(read_chunks(request, tx))
        };
        let origin = format!("postgres:{}", self.qualified(t));
        let target = Target {
            source: &self.name,
            table: &t.name,
            mode,
            pii: &t.pii,
            origin: &origin,
        };
        land_chunks(cx, target, start, rx, reader).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(s.relation_sql(orders), "\"public\".\"Orders\"");
        let refunds = s.table("refunds").unwrap();
        assert_eq!(s.qualified(refunds), "billing.refunds");
        assert_eq!(
            s.relation_sql(refunds),
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
