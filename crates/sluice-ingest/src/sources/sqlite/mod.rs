//! `kind: sqlite` — tables of a SQLite database, `full` or `incremental` by a cursor column.

mod config;
mod read;
mod source;

pub use config::{Mode, SqliteConfig, SqliteTable};
pub use source::SqliteSource;
