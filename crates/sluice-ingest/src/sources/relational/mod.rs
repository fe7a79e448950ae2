//! The kit the relational connectors (`sqlite`, `postgres`, `mysql`) are built from.
//!
//! A relational driver supplies what differs between databases: how to connect, how a result's
//! columns map to Arrow (its type mapping), its SQL dialect (identifier quoting, the comparison
//! with a watermark) and a row reader ([`RowReader`]) that yields the rows of one statement and
//! takes their values apart. The kit owns the rest:
//!
//! - the config fields every relational source shares ([`relational_config!`] for the file,
//!   [`relational_table!`] for each table: `name`, `mode`, `cursor`, `primary_key`, `pii`, `query`,
//!   `batch_size`, `commit_rows`) and their validation ([`validate`]);
//! - the read plan ([`load`]): the relation or `query:` read, the cursor column checked against the
//!   result, `WHERE cursor > watermark ORDER BY cursor` for an incremental read;
//! - the chunked read loop ([`read_rows`] driving a [`ChunkWriter`]): rows into Arrow batches, the
//!   cursor's high-water mark, a row that fails conversion into quarantine with its reason,
//!   commit-sized chunks cut only between cursor values;
//! - landing ([`crate::sources::table_load`]): each chunk with its high-water mark in one Delta
//!   commit, so the mark advances only with the rows it covers; a full load in one overwrite commit.
//!
//! # Adding a relational source
//!
//! 1. a folder `sources/<kind>/` with `config.rs` declaring the file and table shapes through
//!    [`relational_config!`] and [`relational_table!`] (only the driver's own fields are written
//!    out), `source.rs` with the connector type implementing [`Driver`] (and [`crate::Source`]
//!    through `relational_source!`), and a reader: its column type implementing [`ColumnType`]
//!    (Arrow type and builder), a [`RowReader`] over the client's rows, and [`Driver::read`]
//!    running the statement and handing the reader to [`read_rows`] (or [`read_rows_blocking`]
//!    for a blocking client);
//! 2. `pub const KIND` in its `mod.rs` and one line in [`crate::SOURCE_KINDS`];
//! 3. a row in `tests/support/databases.rs` (the driver table of `tests/relational.rs`), so that
//!    the shared suite runs against it.

mod chunks;
mod config;
mod load;
mod rows;

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::mpsc::Sender;
use tokio::task::JoinHandle;

pub(crate) use chunks::{ChunkWriter, ColumnBuilder, ColumnType, ReadRequest, decode_row};
pub(crate) use config::{
    LoadMode, RelationalConfig, TableConfig, default_batch_size, default_commit_rows, relation_sql,
    validate,
};
pub(crate) use config::{relational_config, relational_table};
pub(crate) use load::{ingest, load, table_names};
pub(crate) use rows::{RowReader, read_rows, read_rows_blocking};

use crate::error::IngestError;
use crate::source::{IngestContext, IngestReport};
use crate::sources::table_load::{Chunk, Mode};

/// Where a reader sends its chunks (a channel of one: the reader waits while a chunk commits).
pub(crate) type ChunkTx = Sender<Result<Chunk, IngestError>>;

/// The table entries of driver `D`.
pub(crate) type TableOf<D> = <<D as Driver>::Config as RelationalConfig>::Table;

/// What a relational database driver supplies; [`load`] does the rest.
#[async_trait]
pub(crate) trait Driver: Send + Sync + Sized {
    /// The `kind:` name (also the prefix of `_source`).
    const KIND: &'static str;
    /// The connector's parsed file.
    type Config: RelationalConfig;
    /// How one result column is read and which Arrow type it lands as (the type mapping).
    type Column: ColumnType;
    /// An open connection.
    type Conn: Send + 'static;

    /// The source name.
    fn source_name(&self) -> &str;
    /// The parsed file.
    fn config(&self) -> &Self::Config;
    /// The table as messages name it (`schema.table`).
    fn qualified(&self, t: &TableOf<Self>) -> String;
    /// The table as SQL names it, quoted (`"public"."orders"`).
    fn table_sql(&self, t: &TableOf<Self>) -> String;
    /// `_source` of the landed rows.
    fn origin(&self, t: &TableOf<Self>) -> String {
        format!("{}:{}", Self::KIND, self.qualified(t))
    }
    /// `ident` as a quoted identifier of this dialect.
    fn quote(ident: &str) -> String;
    /// The condition selecting rows after the watermark, bound as the statement's one parameter.
    fn after_watermark(quoted_cursor: &str, column: &Self::Column) -> String;
    /// The condition of an incremental read before any watermark (rows with a NULL cursor are never
    /// selected: `cursor > watermark` could not select them later either).
    fn before_watermark(quoted_cursor: &str) -> Option<String> {
        Some(format!("{quoted_cursor} IS NOT NULL"))
    }
    /// Why column `name` cannot be a cursor, if it cannot (the whole message).
    fn cursor_problem(name: &str, column: &Self::Column) -> Option<String>;

    /// Connects to the database holding `t`.
    async fn connect(&self, t: &TableOf<Self>) -> Result<Self::Conn, IngestError>;
    /// The columns of `select` (`SELECT * FROM …`) and how each lands; an unsupported type is an
    /// error naming the column ([`unsupported`]).
    async fn describe(
        &self,
        conn: Self::Conn,
        t: &TableOf<Self>,
        select: &str,
    ) -> Result<(Self::Conn, Vec<(String, Self::Column)>), IngestError>;
    /// Starts reading `read.sql` (with `read.watermark` as its parameter) into chunks sent to `tx`,
    /// normally a task running [`read_rows`] on the driver's [`RowReader`]; the task ends when
    /// reading does. An error before the first row (preparing the statement) may be returned at
    /// once.
    async fn read(
        &self,
        conn: Self::Conn,
        t: &TableOf<Self>,
        mode: Mode,
        read: ReadRequest<Self::Column>,
        tx: ChunkTx,
    ) -> Result<JoinHandle<()>, IngestError>;

    /// Lands what is new in `table` ([`crate::Source::ingest`]); a driver with modes of its own
    /// (PostgreSQL's `cdc`) dispatches them here.
    async fn ingest_table(
        &self,
        table: &str,
        cx: &IngestContext,
    ) -> Result<IngestReport, IngestError> {
        ingest(self, table, cx).await
    }
}

/// Implements [`crate::Source`] for a [`Driver`] (kind, name, tables, and
/// [`Driver::ingest_table`]).
macro_rules! relational_source {
    ($ty:ty) => {
        #[async_trait::async_trait]
        impl $crate::source::Source for $ty {
            fn kind(&self) -> &'static str {
                <Self as $crate::sources::relational::Driver>::KIND
            }

            fn name(&self) -> &str {
                $crate::sources::relational::Driver::source_name(self)
            }

            fn tables(&self) -> Vec<String> {
                $crate::sources::relational::table_names(self)
            }

            async fn ingest(
                &self,
                table: &str,
                cx: &$crate::source::IngestContext,
            ) -> Result<$crate::source::IngestReport, $crate::error::IngestError> {
                $crate::sources::relational::Driver::ingest_table(self, table, cx).await
            }
        }
    };
}

pub(crate) use relational_source;

/// A connection failure or SQL error of a driver, with whether a retry may help (each driver
/// classifies its own errors into one).
#[derive(Debug)]
pub(crate) struct DbFailure {
    /// The server's message with its error code, or the client error and its cause.
    pub message: String,
    /// Whether retrying may help: the server is restarting, out of connections, the connection
    /// broke, a deadlock; not a missing table, a syntax error or a wrong password.
    pub transient: bool,
}

impl DbFailure {
    /// Turns the failure into the crate error for `source.table`, saying what was being done.
    pub fn into_error(self, source: &str, table: &str, doing: &str) -> IngestError {
        IngestError::Read {
            source_name: source.to_string(),
            table: table.to_string(),
            message: format!("{doing}: {}", self.message),
            transient: self.transient,
        }
    }
}

/// The error for a column whose database type the driver does not map.
pub(crate) fn unsupported(
    kind: &'static str,
    source: &str,
    table: &str,
    column: &str,
    type_name: &str,
) -> IngestError {
    IngestError::UnsupportedType {
        kind,
        source_name: source.to_string(),
        table: table.to_string(),
        column: column.to_string(),
        type_name: type_name.to_string(),
    }
}

/// A non-transient read error of `source.table`.
pub(crate) fn read_error(source: &str, table: &str, message: impl Into<String>) -> IngestError {
    IngestError::Read {
        source_name: source.to_string(),
        table: table.to_string(),
        message: message.into(),
        transient: false,
    }
}

/// The quarantined row's JSON: each column's value exactly as read.
pub(crate) type RawRow = serde_json::Map<String, Value>;
