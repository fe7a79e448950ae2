//! `kind: files` — CSV, JSON lines and Parquet files matched by a glob, each landed exactly once.

mod config;
mod land;
mod parallel;
mod source;

pub use config::{FilesConfig, FilesTable};
pub use source::FilesSource;

/// The registry entry (see [`crate::SOURCE_KINDS`]).
pub const KIND: crate::source::SourceKind = crate::source::SourceKind {
    name: "files",
    description: "CSV, JSON-lines and Parquet files matched by a glob, each landed once.",
    example: "kind: files\ntables:\n  - name: events\n    path: data/events/*.jsonl\n",
    build: |decl, root| Ok(Box::new(FilesSource::from_decl(decl, root)?)),
};
