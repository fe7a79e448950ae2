//! What each node of a project is, as the executor records it and dispatches on it.

use std::sync::Arc;

use sluice_core::{NodeId, NodeKind, Project};
use sluice_lake::Lake;
use sluice_transform::{Engine, compile};

use super::*;

fn write(dir: &std::path::Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

#[tokio::test]
async fn every_node_is_told_apart_by_its_typed_id() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "sluice.yml", "name: kinds\n");
    write(
        d,
        "sources/shop.yml",
        "kind: files\ntables:\n  - name: orders\n    path: data/orders/*.csv\n",
    );
    write(
        d,
        "models/silver/stg_orders.sql",
        "select * from {{ source('shop', 'orders') }}",
    );
    write(
        d,
        "exports/orders_hook.yml",
        "asset: stg_orders\nkind: webhook\nurl: http://127.0.0.1:9/hook\n",
    );
    let project = Project::load(d).unwrap_or_else(|e| panic!("{e}"));
    let compiled = Arc::new(compile(Arc::new(project)).unwrap_or_else(|e| panic!("{e:?}")));
    let lake = Lake::open(&compiled.project.lake_location()).unwrap();
    let engine = Engine::open(&lake, Some(&compiled)).await.unwrap();
    let exec = ProjectExecutor::new(compiled.clone(), engine, "r1", ExecuteOptions::default());

    let expected = [
        (
            "shop.orders",
            NodeId::source_table("shop", "orders"),
            NodeKind::Source,
        ),
        (
            "stg_orders",
            NodeId::Model("stg_orders".into()),
            NodeKind::Model,
        ),
        (
            "export:orders_hook",
            NodeId::Export("orders_hook".into()),
            NodeKind::Export,
        ),
    ];
    let mut nodes: Vec<&str> = compiled.graph.nodes().collect();
    nodes.sort_unstable();
    let mut names: Vec<&str> = expected.iter().map(|(n, _, _)| *n).collect();
    names.sort_unstable();
    assert_eq!(nodes, names);
    for (name, id, kind) in expected {
        assert_eq!(compiled.node_id(name), Some(id.clone()), "{name}");
        assert_eq!(id.to_string(), name);
        assert_eq!(exec.kind(name), kind, "{name}");
    }
    // Not a node of the project: taken for a source table, whose ingestion says it is unknown.
    assert_eq!(compiled.node_id("shop.missing"), None);
    assert_eq!(exec.kind("shop.missing"), NodeKind::Source);
    let err = exec.attempt("shop.missing", 1).await.unwrap_err().0;
    assert!(matches!(err, NodeError::Ingest(_)), "{err}");
    // An export the project does not have is no node of it.
    assert_eq!(compiled.node_id("export:gone"), None);
}
