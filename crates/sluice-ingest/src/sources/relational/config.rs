//! The config fields every relational source shares, and their validation.
//!
//! The shared fields are written once, in the two macros below, and spliced into each driver's own
//! struct between the driver's fields. A `#[serde(flatten)]` struct would be the obvious tool, but
//! serde cannot combine it with `deny_unknown_fields`, and a flattened value is buffered before it
//! is read, which loses the line and column `sluice validate` reports; splicing keeps one plain
//! struct per driver, so its YAML, its field order in "expected one of" and every position stay as
//! they were.

use std::collections::BTreeMap;

use sluice_core::SourceDecl;

use crate::error::IngestError;
use crate::landing::Pii;
use crate::sources::table_load::Mode;

/// Rows per Arrow batch unless `batch_size:` says otherwise.
pub(crate) fn default_batch_size() -> usize {
    8192
}

/// Rows per incremental commit unless `commit_rows:` says otherwise.
pub(crate) fn default_commit_rows() -> usize {
    500_000
}

/// A table mode: the batch read it stands for, or `None` for a driver's own mode (PostgreSQL's
/// `cdc`).
pub(crate) trait LoadMode: Copy {
    /// The shared load mode.
    fn load_mode(self) -> Option<Mode>;
}

impl LoadMode for Mode {
    fn load_mode(self) -> Option<Mode> {
        Some(self)
    }
}

/// The shared fields of one table entry (implemented by [`relational_table!`]).
pub(crate) trait TableConfig: Send + Sync {
    /// `full | incremental` or the driver's own modes.
    type Mode: LoadMode;
    /// Table name in the database and in bronze.
    fn name(&self) -> &str;
    /// How the table is read.
    fn mode(&self) -> Self::Mode;
    /// The cursor column.
    fn cursor(&self) -> Option<&str>;
    /// The SELECT read instead of the table.
    fn query(&self) -> Option<&str>;
    /// PII rules.
    fn pii(&self) -> &BTreeMap<String, Pii>;
}

/// The shared fields of a relational source file (implemented by [`relational_config!`]).
pub(crate) trait RelationalConfig: Send + Sync {
    /// One table entry.
    type Table: TableConfig;
    /// Rows per Arrow batch.
    fn batch_size(&self) -> usize;
    /// Rows per incremental commit.
    fn commit_rows(&self) -> usize;
    /// The tables to land.
    fn tables(&self) -> &[Self::Table];
}

/// Declares a relational table entry: `name`, then the driver's fields before `..`, then the shared
/// `mode` (of the given type), `cursor`, `primary_key`, `pii` and `query`, then the fields after `..`.
/// The caller writes the derives and `#[serde(deny_unknown_fields)]`.
macro_rules! relational_table {
    (
        $(#[$attr:meta])*
        pub struct $name:ident {
            mode: $mode:ty,
            $( $(#[$pre_attr:meta])* pub $pre:ident : $pre_ty:ty, )*
            ..
            $( $(#[$post_attr:meta])* pub $post:ident : $post_ty:ty, )*
        }
    ) => {
        $(#[$attr])*
        pub struct $name {
            /// Table name in the database (as stored: case-sensitive where the database is) and in
            /// bronze.
            pub name: String,
            $( $(#[$pre_attr])* pub $pre: $pre_ty, )*
            /// How the table is read: `full` (the default) or `incremental` (or the connector's own
            /// modes).
            #[serde(default)]
            pub mode: $mode,
            /// The column whose growth marks new or changed rows (required for `incremental`),
            /// ideally indexed and NOT NULL; the types it may have are listed in the connector's
            /// guide. Rows whose cursor is NULL are never selected.
            #[serde(default)]
            pub cursor: Option<String>,
            /// Primary key columns (documentation; silver models deduplicate on it).
            #[serde(default)]
            pub primary_key: Vec<String>,
            /// PII handling before landing: column → hash | mask | drop.
            #[serde(default)]
            pub pii: std::collections::BTreeMap<String, $crate::landing::Pii>,
            /// Read this SELECT instead of the whole table (e.g. to cast a type the connector does
            /// not map). The cursor must be one of its columns.
            #[serde(default)]
            pub query: Option<String>,
            $( $(#[$post_attr])* pub $post: $post_ty, )*
        }

        impl $crate::sources::relational::TableConfig for $name {
            type Mode = $mode;
            fn name(&self) -> &str {
                &self.name
            }
            fn mode(&self) -> $mode {
                self.mode
            }
            fn cursor(&self) -> Option<&str> {
                self.cursor.as_deref()
            }
            fn query(&self) -> Option<&str> {
                self.query.as_deref()
            }
            fn pii(&self) -> &std::collections::BTreeMap<String, $crate::landing::Pii> {
                &self.pii
            }
        }
    };
}

/// Declares a relational source file: the driver's fields before `..` (`connection` first), the
/// shared `batch_size` and `commit_rows`, the driver's fields after `..`, then `tables` (entries of
/// the given type). The caller writes the derives and `#[serde(deny_unknown_fields)]`.
macro_rules! relational_config {
    (
        $(#[$attr:meta])*
        pub struct $name:ident<$table:ty> {
            $( $(#[$pre_attr:meta])* pub $pre:ident : $pre_ty:ty, )*
            ..
            $( $(#[$post_attr:meta])* pub $post:ident : $post_ty:ty, )*
        }
    ) => {
        $(#[$attr])*
        pub struct $name {
            $( $(#[$pre_attr])* pub $pre: $pre_ty, )*
            /// Rows per Arrow batch.
            #[serde(default = "crate::sources::relational::default_batch_size")]
            pub batch_size: usize,
            /// Incremental loads commit every this many rows (at a change of cursor value), so a
            /// large backlog lands in bounded memory and a crash resumes from the last commit.
            #[serde(default = "crate::sources::relational::default_commit_rows")]
            pub commit_rows: usize,
            $( $(#[$post_attr])* pub $post: $post_ty, )*
            /// The tables to land.
            pub tables: Vec<$table>,
        }

        impl $crate::sources::relational::RelationalConfig for $name {
            type Table = $table;
            fn batch_size(&self) -> usize {
                self.batch_size
            }
            fn commit_rows(&self) -> usize {
                self.commit_rows
            }
            fn tables(&self) -> &[$table] {
                &self.tables
            }
        }
    };
}

pub(crate) use {relational_config, relational_table};

/// Checks the shared fields of a parsed file: an incremental table names its cursor, a `query:` is
/// not empty, batch and commit sizes are at least 1. Errors point at the field in the file.
pub(crate) fn validate(
    decl: &SourceDecl,
    config: &impl RelationalConfig,
) -> Result<(), IngestError> {
    let invalid =
        |field: String, message: String| IngestError::Config(decl.invalid(&field, message));
    for (i, t) in config.tables().iter().enumerate() {
        if t.mode().load_mode() == Some(Mode::Incremental) && t.cursor().is_none() {
            return Err(invalid(
                format!("tables[{i}].cursor"),
                format!(
                    "table `{}` is incremental and needs a `cursor` column",
                    t.name()
                ),
            ));
        }
        if t.query().is_some_and(|q| q.trim().is_empty()) {
            return Err(invalid(
                format!("tables[{i}].query"),
                "the query is empty; remove `query:` to read the whole table".into(),
            ));
        }
    }
    if config.batch_size() == 0 || config.commit_rows() == 0 {
        return Err(invalid(
            "batch_size".into(),
            "batch_size and commit_rows must be at least 1".into(),
        ));
    }
    Ok(())
}

/// The relation a table reads: its `query:` as a subquery, else `table_sql` (already quoted).
pub(crate) fn relation_sql(query: Option<&str>, table_sql: String) -> String {
    match query {
        // The newline ends a trailing `-- comment` before the closing parenthesis.
        Some(q) => format!(
            "({}\n) AS q",
            q.trim()
                .trim_end_matches(|c: char| c == ';' || c.is_whitespace())
        ),
        None => table_sql,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_become_subqueries() {
        assert_eq!(relation_sql(None, "\"t\"".into()), "\"t\"");
        assert_eq!(
            relation_sql(Some(" SELECT 1 -- one\n;; "), String::new()),
            "(SELECT 1 -- one\n) AS q"
        );
    }
}
