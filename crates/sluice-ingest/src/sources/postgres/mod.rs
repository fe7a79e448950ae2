//! `kind: postgres` — tables of a PostgreSQL database, `full` or `incremental` by a cursor column.
//!
//! Rows are streamed with bounded memory, decoded from PostgreSQL's binary format with a faithful
//! type mapping (`types.rs` decides it per column before any row is read) and landed through
//! [`crate::landing::land`], the high-water mark travelling in the same Delta commit as its rows.
//! The user guide is `docs/sources/postgres.md`.

pub mod cdc;
mod client;
mod config;
mod decode;
mod numeric;
mod parallel;
mod read;
mod source;
mod types;

pub use config::{PgMode, PostgresConfig, PostgresTable};
pub use source::PostgresSource;

/// The registry entry (see [`crate::SOURCE_KINDS`]).
pub const KIND: crate::source::SourceKind = crate::source::SourceKind {
    name: "postgres",
    description: "Tables of a PostgreSQL database: full (in parallel), incremental by a cursor column, or change data capture.",
    example: "kind: postgres\nconnection: postgres://localhost/app\ntables:\n  - name: orders\n",
    build: |decl, root| Ok(Box::new(PostgresSource::from_decl(decl, root)?)),
};
