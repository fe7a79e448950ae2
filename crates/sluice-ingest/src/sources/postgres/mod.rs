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
