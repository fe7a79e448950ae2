//! `sources/*.yml`: the envelope every source file shares.
//!
//! Each source kind (sqlite, files, postgres, …) owns the full shape of its file and parses it itself
//! (in `sluice-ingest`), so that its own fields are validated with line numbers. The project model only
//! needs the parts every kind has: the name, the kind, the owner and the table names, to build the graph.

use std::path::PathBuf;

use serde::Deserialize;

/// One `sources/<name>.yml` file.
#[derive(Debug, Clone)]
pub struct SourceDecl {
    /// Source name (the `name:` field, or the file stem). Bronze tables live at `bronze/<name>/<table>`.
    pub name: String,
    /// The connector kind, e.g. `sqlite` or `files`.
    pub kind: String,
    /// Who is alerted when it breaks.
    pub owner: Option<String>,
    /// The tables (or topics, or file sets) this source lands.
    pub tables: Vec<SourceTableDecl>,
    /// The file it came from.
    pub path: PathBuf,
    /// The raw file text, for the connector to parse with its own config struct.
    pub text: String,
}

impl SourceDecl {
    /// The asset name of one of its tables: `<source>.<table>`.
    pub fn asset_name(&self, table: &str) -> String {
        format!("{}.{}", self.name, table)
    }
}

/// The part of a table entry every kind shares.
#[derive(Debug, Clone, Deserialize)]
pub struct SourceTableDecl {
    /// Table name inside the source.
    pub name: String,
    /// Free-text description.
    #[serde(default)]
    pub description: Option<String>,
    /// Tags for selection (`tag:x`).
    #[serde(default)]
    pub tags: Vec<String>,
}

/// What the loader reads of a source file (unknown fields are left to the connector).
#[derive(Debug, Deserialize)]
pub(crate) struct SourceEnvelope {
    pub name: Option<String>,
    pub kind: String,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub tables: Vec<SourceTableDecl>,
}

/// Whether `name` is usable as a source, table or model name (it becomes a folder and a SQL identifier).
pub fn is_valid_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
