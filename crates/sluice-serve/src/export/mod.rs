//! `sluice export`: a table leaves the lake as a file or on stdout, in any [`Format`](crate::Format),
//! batch by batch (one row group for Parquet), never collected.
//!
//! The reverse-ETL sinks of `exports/*.yml` (PostgreSQL upsert, webhook) live in `sluice-sink`,
//! below the orchestrator that runs them; only the file output stays here, next to the formats it
//! encodes. [`relation_of`] and [`read_asset`] are re-exported from there.
//!
//! - [`file`]: a stream to a file or stdout.

pub mod file;

use crate::format::EncodeError;

pub use sluice_sink::{read_asset, relation_of};

/// Why a file export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The engine failed to plan or read the asset.
    #[error("reading the asset failed: {0}")]
    Engine(String),
    /// A batch could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// Writing the output failed.
    #[error("writing {path}: {source}")]
    Io {
        /// The file (or `stdout`).
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Finding or reading the asset failed.
    #[error(transparent)]
    Asset(#[from] sluice_sink::SinkError),
}
