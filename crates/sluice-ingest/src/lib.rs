//! Ingestion: sources → Arrow batches → bronze Delta tables, exactly once.
//!
//! Every connector implements [`Source`] and is listed in [`source::SOURCE_KINDS`] / [`build_source`].
//! A connector reads its system, turns rows into Arrow batches (rows it cannot parse go to quarantine
//! with the reason), and hands them to [`landing::land`], which applies PII rules, adds the bronze
//! metadata columns (`_ingested_at`, `_ingest_date`, `_batch_id`, `_source`) and commits them with the
//! connector's new position (high-water mark, file name) in one atomic Delta commit.
//!
//! Modules: [`sources`] (one folder per connector: `sqlite`, `files`, `postgres`, `mysql`, `http`), [`formats`] (CSV,
//! JSON lines and Parquet readers with row-level rejection), [`landing`], [`generator`] (the ShopFlow
//! data generator behind `sluice demo`).
//!
//! Adding a connector: create `sources/<kind>/{mod,config,source}.rs` with a `<Kind>Config` that
//! deserializes the whole source file (`#[serde(deny_unknown_fields)]`, a doc comment per field) and a
//! type implementing [`Source`]; add it to [`source::SOURCE_KINDS`] and [`build_source`].

pub mod error;
pub mod formats;
pub mod generator;
pub mod landing;
pub mod source;
pub mod sources;

pub use error::IngestError;
pub use source::{IngestContext, IngestReport, SOURCE_KINDS, Source, build_source};
