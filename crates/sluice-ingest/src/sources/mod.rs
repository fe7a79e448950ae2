//! The connectors, one folder each: `config.rs` (the YAML shape, with a doc comment per field) and
//! `source.rs` (the [`crate::Source`] implementation). The relational ones (`sqlite`, `postgres`,
//! `mysql`) are drivers of one kit, [`relational`]: each supplies its connection, type mapping, SQL
//! dialect and row reader, and the kit owns the shared config fields, the read plan, the chunked
//! read loop, quarantine and landing.

pub mod files;
pub mod http;
pub mod mysql;
pub mod postgres;
pub(crate) mod relational;
pub mod sqlite;
pub mod table_load;
