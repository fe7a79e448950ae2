//! The connectors, one folder each, and their registry [`SOURCE_KINDS`] (one line per kind): `config.rs` (the YAML shape, with a doc comment per field) and
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

use std::path::Path;

use sluice_core::SourceDecl;

use crate::error::IngestError;
use crate::source::{Source, SourceKind};

/// Every connector kind compiled into this build, in the order the docs list them.
///
/// Adding a kind: a folder `sources/<kind>/` whose `mod.rs` defines `pub const KIND: SourceKind`,
/// and one line here.
pub const SOURCE_KINDS: &[SourceKind] = &[
    sqlite::KIND,
    files::KIND,
    postgres::KIND,
    mysql::KIND,
    http::KIND,
];

/// The registry entry of `kind`.
pub fn source_kind(kind: &str) -> Option<&'static SourceKind> {
    SOURCE_KINDS.iter().find(|k| k.name == kind)
}

/// The `kind:` names, in registry order.
pub fn source_kind_names() -> impl Iterator<Item = &'static str> {
    SOURCE_KINDS.iter().map(|k| k.name)
}

/// Builds the connector for a source declaration; `root` resolves relative paths.
pub fn build_source(decl: &SourceDecl, root: &Path) -> Result<Box<dyn Source>, IngestError> {
    match source_kind(&decl.kind) {
        Some(kind) => (kind.build)(decl, root),
        None => {
            let other = decl.kind.as_str();
            let hint = sluice_core::graph::suggest(other, source_kind_names())
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            Err(IngestError::UnknownKind {
                path: decl.path.clone(),
                kind: other.to_string(),
                hint,
                available: source_kind_names().collect::<Vec<_>>().join(", "),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn decl(kind: &str, text: &str) -> SourceDecl {
        let path = PathBuf::from(format!("sources/{kind}.yml"));
        SourceDecl::parse(&path, text)
            .unwrap_or_else(|e| panic!("the example of `{kind}` does not parse: {e:?}"))
    }

    #[test]
    fn no_duplicate_kinds() {
        let mut k: Vec<&str> = source_kind_names().collect();
        k.sort();
        k.dedup();
        assert_eq!(k.len(), SOURCE_KINDS.len());
    }

    #[test]
    fn every_kind_is_described_and_builds_from_its_example() {
        let root = tempfile::tempdir().unwrap();
        for kind in SOURCE_KINDS {
            assert!(!kind.description.trim().is_empty(), "`{}`", kind.name);
            assert!(
                kind.example.starts_with(&format!("kind: {}\n", kind.name)),
                "the example of `{}` declares its kind first",
                kind.name
            );
            let source = build_source(&decl(kind.name, kind.example), root.path())
                .unwrap_or_else(|e| panic!("`{}`: {e}", kind.name));
            assert_eq!(source.kind(), kind.name);
            assert!(!source.tables().is_empty(), "`{}`", kind.name);
        }
    }

    #[test]
    fn an_unknown_kind_lists_the_registry_and_suggests_the_nearest() {
        let err = build_source(&decl("mysq", "kind: mysq\n"), Path::new("."))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("did you mean `mysql`"), "{err}");
        assert!(
            err.contains("sqlite, files, postgres, mysql, http"),
            "{err}"
        );
    }
}
