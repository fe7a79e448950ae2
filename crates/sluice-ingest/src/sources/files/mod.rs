//! `kind: files` — CSV, JSON lines and Parquet files matched by a glob, each landed exactly once.

mod config;
mod source;

pub use config::{FilesConfig, FilesTable};
pub use source::FilesSource;
