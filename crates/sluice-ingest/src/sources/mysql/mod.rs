//! `kind: mysql` — tables of a MySQL or MariaDB database, `full` or `incremental` by a cursor column.
//!
//! Rows are read with the binary protocol (a prepared statement), so integers, floats, dates and
//! times arrive typed; `types.rs` maps every column to Arrow from the statement's metadata before any
//! row is read, `read.rs` streams rows into commit-sized chunks, and the shared table-load loop
//! (`sources/table_load.rs`) lands each chunk with its high-water mark in one Delta commit.
//! The user guide is `docs/sources/mysql.md`.

mod client;
mod config;
mod read;
mod source;
mod types;

pub use config::{MysqlConfig, MysqlTable};
pub use source::MysqlSource;

/// The registry entry (see [`crate::SOURCE_KINDS`]).
pub const KIND: crate::source::SourceKind = crate::source::SourceKind {
    name: "mysql",
    description: "Tables or queries of a MySQL or MariaDB database, in full or incrementally by a cursor column.",
    example: "kind: mysql\nconnection: mysql://root@localhost/app\ntables:\n  - name: orders\n",
    build: |decl, root| Ok(Box::new(MysqlSource::from_decl(decl, root)?)),
};
