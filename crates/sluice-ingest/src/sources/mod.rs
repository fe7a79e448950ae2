//! The connectors, one folder each: `config.rs` (the YAML shape, with a doc comment per field) and
//! `source.rs` (the [`crate::Source`] implementation).

pub mod files;
pub mod http;
pub mod mysql;
pub mod postgres;
pub mod sqlite;
pub mod table_load;
