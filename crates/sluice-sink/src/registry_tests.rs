//! Every sink kind: described, one per export kind the project files accept, built from its example.

use std::path::PathBuf;

use sluice_core::exports::load_exports;
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
fn a_kind_reads_only_its_own_fields() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hook.yml"), webhook::KIND.example).unwrap();
    let mut errors = Vec::new();
    let exports = load_exports(dir.path(), &[], &[orders()], &mut errors);
    // A webhook's example has no `table`/`key`/`connection`: the postgres kind says so.
    let err = (postgres::KIND.build)(&exports[0])
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("field `url`: unknown field"), "{err}");
}

fn parse(text: &str) -> ExportDecl {
    ExportDecl::parse(
        std::path::Path::new("exports/x.yml"),
        text,
        &[],
        &[orders()],
    )
    .unwrap()
}

fn problems(text: &str) -> String {
    match build_sink(&parse(text)) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn postgres_fields_are_checked_with_file_and_line() {
    let text = problems("asset: orders\nkind: postgres\nmode: replace\ntable: a.b.c\n");
    for needle in [
        "exports/x.yml:2:7: field `connection`: `kind: postgres` needs `connection`",
        "exports/x.yml:4:8: field `table`: `a.b.c` is not `table` or `schema.table`",
        "field `key`: `kind: postgres` needs `key`",
        "exports/x.yml:3:7: field `mode`: `replace` is not supported; expected upsert",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    // Another kind's field, or a typo of a shared one.
    let text = problems(
        "asset: orders\nkind: postgres\nconnection: x\ntable: t\nkey: id\nurl: http://x\n",
    );
    assert!(
        text.contains("exports/x.yml:6:1: field `url`: unknown field `url`"),
        "{text}"
    );
    let text = problems(
        "asset: orders\nkind: postgres\nconnection: x\ntable: t\nkey: id\nbatch_sise: 3\n",
    );
    assert!(text.contains("did you mean `batch_size`"), "{text}");
    assert!(
        problems("asset: orders\nkind: postgres\nconnection: x\ntable: s.t\nkey: [a, b]\n")
            .is_empty()
    );
}

#[test]
fn webhook_fields_are_checked_with_file_and_line() {
    let text = problems("asset: orders\nkind: webhook\nurl: ftp://x\n");
    assert!(
        text.contains(
            "exports/x.yml:3:6: field `url`: `ftp://x` is not an http:// or https:// URL"
        ),
        "{text}"
    );
    let text = problems(
        "asset: orders\nkind: webhook\nurl: http://x\nretry_backoff: 99999999999999999999d\n",
    );
    assert!(
        text.contains("exports/x.yml:4:16: field `retry_backoff`"),
        "{text}"
    );
    let hook = parse(
        "asset: orders\nkind: webhook\nurl: http://x\nretries: 2\nretry_backoff: 10ms\nheaders: {A: b}\n",
    );
    let target = webhook::WebhookTarget::from_decl(&hook).unwrap();
    assert_eq!(target.retries, 2);
    assert_eq!(target.retry_backoff, std::time::Duration::from_millis(10));
    assert_eq!(target.headers.get("A").map(String::as_str), Some("b"));
}

#[test]
fn an_unknown_kind_names_the_kinds_with_a_suggestion() {
    let text = problems("asset: orders\nkind: webhok\n");
    assert!(
        text.contains("exports/x.yml:2:7: field `kind`: `webhok` is not an export kind (did you mean `webhook`?); expected postgres or webhook"),
        "{text}"
    );
}
