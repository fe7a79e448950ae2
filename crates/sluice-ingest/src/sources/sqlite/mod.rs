//! `kind: sqlite` — tables of a SQLite database, `full` or `incremental` by a cursor column.

mod config;
mod read;
mod source;

pub use config::{Mode, SqliteConfig, SqliteTable};
pub use source::SqliteSource;

/// The registry entry (see [`crate::SOURCE_KINDS`]).
pub const KIND: crate::source::SourceKind = crate::source::SourceKind {
    name: "sqlite",
    description: "Tables of a SQLite database, in full or incrementally by a cursor column.",
    example: "kind: sqlite\nconnection: data/app.db\ntables:\n  - name: orders\n",
    build: |decl, root| Ok(Box::new(SqliteSource::from_decl(decl, root)?)),
};
