//! Ingestion: sources → Arrow batches → bronze Delta tables, exactly once.
//!
//! Every connector implements [`Source`] and is listed once, in [`SOURCE_KINDS`]; [`build_source`], the
//! kinds `validate` names and suggests, and the table in `docs/plugins.md` derive from that list.
//! A connector reads its system, turns rows into Arrow batches (rows it cannot parse go to quarantine
//! with the reason), and hands them to [`landing::land`], which applies PII rules, adds the bronze
//! metadata columns (`_ingested_at`, `_ingest_date`, `_batch_id`, `_source`) and commits them with the
//! connector's new position (high-water mark, file name) in one atomic Delta commit.
//!
//! Modules: [`sources`] (one folder per connector: `sqlite`, `files`, `postgres`, `mysql`, `http`), [`formats`] (CSV,
//! JSON lines and Parquet readers with row-level rejection), [`landing`], [`generator`] (the ShopFlow
//! data generator behind `sluice demo`).
//!
//! Adding a connector:
//! 1. create `sources/<kind>/{mod,config,source}.rs` with a `<Kind>Config` that deserializes the whole
//!    source file (`#[serde(deny_unknown_fields)]`, a doc comment per field) and a type implementing
//!    [`Source`];
//! 2. in its `mod.rs`, define `pub const KIND: SourceKind` (name, one-line description, a minimal
//!    example file, the constructor) and add one line to [`SOURCE_KINDS`];
//! 3. add the same name and description to the sources table of `docs/plugins.md` (the registry test
//!    fails until the docs match).
//!
//! A relational database needs less: its folder implements `sources::relational::Driver` (connect,
//! type mapping, dialect, row reader) and the kit does the rest (see `docs/plugins.md`).

pub mod error;
pub mod formats;
pub mod generator;
pub mod landing;
pub mod source;
pub mod sources;

pub use error::IngestError;
pub use source::{IngestContext, IngestReport, Source, SourceKind};
pub use sources::{SOURCE_KINDS, build_source, source_kind, source_kind_names};
