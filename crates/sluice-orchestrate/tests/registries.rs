//! Walks every plug-in registry — sources, materializations, checks, export sinks — and checks that
//! each kind is described, listed in `docs/plugins.md` with the same description (and nothing else is
//! listed there), and can be built from the minimal example its entry carries; every source kind is
//! also in the conformance suite (`crates/sluice/tests/conformance`).

use std::path::{Path, PathBuf};

use sluice_core::exports::load_exports;
use sluice_core::{CheckSpec, ModelFile, ModelLayer, ModelProperties, SourceDecl};
use sluice_transform::render::RenderScope;

/// The `| `kind` | description |` rows of the table under `## {section}` in docs/plugins.md.
fn docs_table(section: &str) -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/plugins.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let heading = format!("## {section}");
    let start = text
        .lines()
        .position(|l| l.trim_end() == heading)
        .unwrap_or_else(|| panic!("docs/plugins.md has no `{heading}`"));
    text.lines()
        .skip(start + 1)
        .take_while(|l| !l.starts_with("## "))
        .filter_map(|l| {
            let row = l.strip_prefix("| `")?;
            let (name, rest) = row.split_once("` | ")?;
            let description = rest.trim_end().strip_suffix('|')?.trim_end();
            Some((name.to_string(), description.to_string()))
        })
        .collect()
}

/// Fails with the table the docs should have when they differ from the registry.
fn assert_docs_match(section: &str, registry: &[(&str, &str)]) {
    for (name, description) in registry {
        assert!(
            !description.trim().is_empty(),
            "`{name}` has no description"
        );
    }
    let expected: Vec<(String, String)> = registry
        .iter()
        .map(|(n, d)| (n.to_string(), d.to_string()))
        .collect();
    if docs_table(section) != expected {
        let table: String = registry
            .iter()
            .map(|(n, d)| format!("| `{n}` | {d} |\n"))
            .collect();
        panic!(
            "docs/plugins.md `## {section}` differs from the registry; its table should be:\n\n\
             | kind | description |\n|---|---|\n{table}"
        );
    }
}

fn model(name: &str) -> ModelFile {
    ModelFile {
        name: name.into(),
        layer: ModelLayer::Silver,
        path: PathBuf::from(format!("models/silver/{name}.sql")),
        sql: String::new(),
        properties: ModelProperties::default(),
    }
}

#[test]
fn every_source_kind_is_documented_and_builds() {
    let kinds = sluice_ingest::SOURCE_KINDS;
    let rows: Vec<(&str, &str)> = kinds.iter().map(|k| (k.name, k.description)).collect();
    assert_docs_match("Sources", &rows);
    let root = tempfile::tempdir().unwrap();
    for kind in kinds {
        let path = PathBuf::from(format!("sources/{}.yml", kind.name));
        let decl = SourceDecl::parse(&path, kind.example)
            .unwrap_or_else(|e| panic!("the example of `{}` does not parse: {e:?}", kind.name));
        let source = sluice_ingest::build_source(&decl, root.path())
            .unwrap_or_else(|e| panic!("`{}`: {e}", kind.name));
        assert_eq!(source.kind(), kind.name);
    }
}

#[test]
fn every_materialization_is_documented_and_has_its_behaviour() {
    let kinds = sluice_transform::MATERIALIZATIONS;
    let rows: Vec<(&str, &str)> = kinds.iter().map(|k| (k.name, k.description)).collect();
    assert_docs_match("Materializations", &rows);
    for kind in kinds {
        let mut config = serde_json::Map::new();
        config.insert("materialized".into(), kind.name.into());
        config.insert("unique_key".into(), "id".into());
        let parsed = sluice_transform::ModelConfig::from_map(&config, Path::new("m.sql"))
            .unwrap_or_else(|e| panic!("`{}`: {e}", kind.name));
        assert_eq!(parsed.materialized, kind.materialized);
        assert_eq!(
            sluice_transform::materialization_for(parsed.materialized).name(),
            kind.name
        );
    }
}

#[test]
fn every_check_kind_is_documented_and_builds() {
    let kinds = sluice_quality::CHECK_KINDS;
    let rows: Vec<(&str, &str)> = kinds.iter().map(|k| (k.name, k.description)).collect();
    assert_docs_match("Checks", &rows);
    let mut scope = RenderScope::default();
    scope.models.insert("orders".into(), ModelLayer::Silver);
    scope.models.insert("customers".into(), ModelLayer::Silver);
    for kind in kinds {
        let entry: serde_yaml_ng::Value = serde_yaml_ng::from_str(kind.example).unwrap();
        let spec = CheckSpec::parse(&entry, "orders", Some("id"), Path::new("orders.yml"))
            .unwrap_or_else(|e| panic!("`{}`: {e}", kind.name));
        let check = sluice_quality::build_check(&spec, &scope)
            .unwrap_or_else(|e| panic!("`{}`: {e}", kind.name));
        assert_eq!(check.spec().kind, kind.name);
    }
}

#[test]
fn every_sink_kind_is_documented_and_builds() {
    let kinds = sluice_sink::SINK_KINDS;
    let rows: Vec<(&str, &str)> = kinds.iter().map(|k| (k.name, k.description)).collect();
    assert_docs_match("Export sinks", &rows);
    let dir = tempfile::tempdir().unwrap();
    for kind in kinds {
        std::fs::write(dir.path().join(format!("{}.yml", kind.name)), kind.example).unwrap();
    }
    let mut errors = Vec::new();
    let exports = load_exports(dir.path(), &[], &[model("orders")], &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    for kind in kinds {
        let export = exports
            .iter()
            .find(|e| e.name == kind.name)
            .unwrap_or_else(|| panic!("the example of `{}` did not load", kind.name));
        let sink =
            sluice_sink::build_sink(export).unwrap_or_else(|e| panic!("`{}`: {e}", kind.name));
        assert_eq!(sink.kind(), kind.name);
    }
}

#[test]
fn the_docs_table_reader_sees_every_row() {
    // Guards the guard: a reader that found nothing would let a registry with no kinds pass.
    assert_eq!(docs_table("Export sinks").len(), 2);
    assert_eq!(
        docs_table("Sources").first().map(|(n, _)| n.as_str()),
        Some("sqlite")
    );
}

#[test]
fn every_source_kind_is_in_the_conformance_suite() {
    // The suite itself (crates/sluice/tests/conformance) compares its list with SOURCE_KINDS when it
    // runs; this keeps the registry walk complete without running it.
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sluice/tests/conformance");
    let main = std::fs::read_to_string(suite.join("main.rs")).unwrap();
    for kind in sluice_ingest::SOURCE_KINDS {
        let name = kind.name;
        assert!(
            suite.join(format!("kinds/{name}.rs")).is_file()
                && main.contains(&format!("{name} => crate::kinds::{name}::")),
            "source kind `{name}` is not in the conformance suite: add \
             crates/sluice/tests/conformance/kinds/{name}.rs and its line in `suite!` (docs/plugins.md)"
        );
    }
}
