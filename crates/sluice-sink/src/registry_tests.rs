//! Every sink kind: described, one per export kind the project files accept, built from its example.

use std::path::PathBuf;

use sluice_core::exports::{EXPORT_KINDS, load_exports};
use sluice_core::{ModelFile, ModelLayer, ModelProperties};

use super::*;

fn orders() -> ModelFile {
    ModelFile {
        name: "orders".into(),
        layer: ModelLayer::Gold,
        path: PathBuf::from("models/gold/orders.sql"),
        sql: String::new(),
        properties: ModelProperties::default(),
    }
}

#[test]
fn the_registry_has_one_sink_per_export_kind() {
    let names: Vec<&str> = SINK_KINDS.iter().map(|k| k.name).collect();
    assert_eq!(names, EXPORT_KINDS, "SINK_KINDS and core's EXPORT_KINDS");
}

#[test]
fn every_kind_is_described_and_builds_from_its_example() {
    let dir = tempfile::tempdir().unwrap();
    for kind in SINK_KINDS {
        assert!(!kind.description.trim().is_empty(), "`{}`", kind.name);
        std::fs::write(dir.path().join(format!("{}.yml", kind.name)), kind.example).unwrap();
    }
    let mut errors = Vec::new();
    let exports = load_exports(dir.path(), &[], &[orders()], &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(exports.len(), SINK_KINDS.len());
    for kind in SINK_KINDS {
        let export = exports.iter().find(|e| e.name == kind.name).unwrap();
        assert_eq!(export.kind(), kind.name, "the example of `{}`", kind.name);
        let sink = build_sink(export).unwrap_or_else(|e| panic!("`{}`: {e}", kind.name));
        assert_eq!(sink.kind(), kind.name);
    }
}

#[test]
fn a_kind_builds_only_its_own_declarations() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hook.yml"), webhook::KIND.example).unwrap();
    let mut errors = Vec::new();
    let exports = load_exports(dir.path(), &[], &[orders()], &mut errors);
    let err = (postgres::KIND.build)(&exports[0]).err().unwrap();
    assert!(matches!(err, SinkError::Internal(_)), "{err}");
}
