//! Loading the `dbt_shop` fixture (shared with the CLI's end-to-end tests): config precedence, layers,
//! docs, snapshots, seeds, macros, singular tests — without running anything.

use std::path::{Path, PathBuf};

use sluice_core::ModelLayer;
use sluice_transform::Materialized;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../sluice/tests/fixtures")
        .join(name)
}

#[test]
fn loads_and_compiles_the_shop_fixture() {
    let dbt = sluice_dbt::load(&fixture("dbt_shop")).unwrap();
    assert!(dbt.unsupported.is_empty(), "{:?}", dbt.unsupported);
    assert_eq!(dbt.docs_blocks, 2);
    assert_eq!(dbt.project.macros.len(), 1);
    assert_eq!(dbt.singular_tests.len(), 2);
    let orders = dbt.project.model("orders").unwrap();
    assert_eq!(
        orders.properties.description.as_deref(),
        Some("One row per order, with the amount paid by each payment method.")
    );
    let amount = orders
        .properties
        .columns
        .iter()
        .find(|c| c.name == "amount")
        .unwrap();
    assert_eq!(
        amount.description.as_deref(),
        Some("Total amount paid, in dollars.")
    );

    let compiled = sluice_dbt::compile(dbt).unwrap();
    let m = |name: &str| compiled.models.get(name).unwrap();
    // Layers by folder.
    assert_eq!(m("stg_orders").layer, ModelLayer::Silver);
    assert_eq!(m("orders").layer, ModelLayer::Gold);
    assert_eq!(m("raw_customers").layer, ModelLayer::Silver);
    // Precedence: dbt_project.yml < properties < config().
    assert_eq!(m("stg_orders").config.materialized, Materialized::View);
    assert_eq!(m("stg_customers").config.materialized, Materialized::Table);
    assert_eq!(
        m("stg_payments").config.materialized,
        Materialized::Ephemeral
    );
    assert_eq!(m("orders").config.materialized, Materialized::Table);
    assert_eq!(m("raw_customers").config.materialized, Materialized::Seed);
    assert_eq!(
        m("customers_snapshot").config.materialized,
        Materialized::Snapshot
    );
    assert_eq!(m("customers_snapshot").config.unique_key, ["customer_id"]);
    // Tags add up across the tree; config() replaces them.
    assert_eq!(m("stg_orders").config.tags, ["staging"]);
    assert_eq!(m("orders").config.tags, ["marts"]);
    assert_eq!(m("customers").config.tags, ["finance"]);
    // The ephemeral model is inlined as a CTE (merged with the model's own WITH).
    assert!(
        m("orders")
            .sql
            .trim_start()
            .starts_with("with __dbt__cte__stg_payments as ("),
        "{}",
        m("orders").sql
    );
    assert!(
        m("orders")
            .sql
            .contains("round(cast(amount as double) / 100, 2)"),
        "{}",
        m("orders").sql
    );
    // Macros, adapter.dispatch and return().
    assert!(
        m("customers").sql.contains("'EUR' as currency"),
        "{}",
        m("customers").sql
    );
    // Singular tests become checks of the model they read that is built last.
    let singular: Vec<(&str, &str)> = compiled
        .project
        .checks
        .iter()
        .filter(|c| c.kind == "singular")
        .map(|c| (c.name.as_str(), c.model.as_str()))
        .collect();
    assert_eq!(
        singular,
        [
            ("assert_no_big_spenders", "customers"),
            ("assert_payments_match_orders", "orders")
        ]
    );
    // `data_tests:` in dbt_project.yml: tests declared under models/marts/ warn, others stay errors.
    let severity = |name: &str| {
        compiled
            .project
            .checks
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.severity)
    };
    assert_eq!(
        severity("unique_orders_order_id"),
        Some(sluice_core::Severity::Warn)
    );
    assert_eq!(
        severity("unique_stg_orders_order_id"),
        Some(sluice_core::Severity::Error)
    );
    // The relationships test carries its thresholds.
    let rel = compiled
        .project
        .checks
        .iter()
        .find(|c| c.kind == "relationships")
        .unwrap();
    assert_eq!(rel.error_if.as_deref(), Some(">10"));
    assert_eq!(rel.warn_if.as_deref(), Some(">0"));
    // Graph: the ephemeral model is a node between its seed and `orders`.
    assert!(
        compiled
            .graph
            .parents("orders")
            .any(|p| p == "stg_payments")
    );
    assert!(
        compiled
            .graph
            .parents("stg_payments")
            .any(|p| p == "raw_payments")
    );
}

#[test]
fn reports_every_unsupported_use() {
    let err = sluice_dbt::load(&fixture("dbt_unsupported"))
        .and_then(sluice_dbt::compile)
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("dbt_utils.star"), "{text}");
    assert!(text.contains("Python models"), "{text}");
    // Template errors caused by the unsupported macros are not repeated.
    assert!(!text.contains("template error"), "{text}");
}

#[test]
fn template_errors_point_into_macro_files() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("dbt_project.yml"), "name: p\n").unwrap();
    std::fs::create_dir_all(d.join("macros")).unwrap();
    std::fs::create_dir_all(d.join("models")).unwrap();
    std::fs::write(
        d.join("macros/m.sql"),
        "\n\n{% macro broken() %}\n{{ undefined_thing.x }}\n{% endmacro %}\n",
    )
    .unwrap();
    std::fs::write(d.join("models/a.sql"), "select 1 as x\n").unwrap();
    std::fs::write(d.join("models/b.sql"), "select\n  {{ broken() }} as y\n").unwrap();
    std::fs::write(d.join("models/c.sql"), "select 1\n\n{{ nope( }}\n").unwrap();
    let err = sluice_dbt::load(d)
        .and_then(sluice_dbt::compile)
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("macros/m.sql:4:4: template error"), "{text}");
    assert!(text.contains("models/c.sql:3:10: template error"), "{text}");
}

/// Unknown `ref` / `source` calls are reported at the call, with the closest existing name.
#[test]
fn unknown_refs_and_sources_point_at_the_call() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("dbt_project.yml"), "name: p\n").unwrap();
    std::fs::create_dir_all(d.join("models")).unwrap();
    std::fs::write(d.join("models/orders.sql"), "select 1 as id\n").unwrap();
    std::fs::write(
        d.join("models/report.sql"),
        "select o.id\nfrom {{ ref('ordrs') }} o\n  join {{ source('raw', 'payments') }} p on p.id = o.id\n",
    )
    .unwrap();
    let err = sluice_dbt::load(d)
        .and_then(sluice_dbt::compile)
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("models/report.sql:2:9: unknown ref `ordrs` (did you mean `orders`?)"),
        "{text}"
    );
    assert!(
        text.contains("models/report.sql:3:11: unknown source `raw.payments`"),
        "{text}"
    );
}

/// Problems of `dbt_project.yml` and properties files carry the line and column of their key or
/// entry, all reported together.
#[test]
fn project_and_properties_problems_are_positioned() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(
        d.join("dbt_project.yml"),
        "name: p\non-run-start: [\"select 1\"]\nmodels:\n  p:\n    +materialized: table\n    +pre-hook: \"x\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(d.join("models")).unwrap();
    std::fs::write(d.join("models/a.sql"), "select 1 as id\n").unwrap();
    std::fs::write(
        d.join("models/schema.yml"),
        "version: 2\nmodels:\n  - name: a\n    config:\n      materialized: fancy\n  - name: ghost\nmetrics: []\n",
    )
    .unwrap();
    let err = sluice_dbt::load(d).unwrap_err();
    let text = err.to_string();
    for expected in [
        "dbt_project.yml:2:1: unsupported: `on-run-start` (project hooks)",
        "dbt_project.yml:6:5: unsupported: `pre-hook` (hooks run warehouse SQL)",
        "models/schema.yml:5:7: unsupported: materialization `fancy`",
        "models/schema.yml:6:5: field `models[name=ghost]`: describes a model that does not exist",
        "models/schema.yml:7:1: unsupported: `metrics:` in properties files",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }
    // A YAML problem of a properties file stops only that file, at its place.
    std::fs::write(
        d.join("models/schema.yml"),
        "models:\n  - name: a\n    colums: []\n",
    )
    .unwrap();
    let text = sluice_dbt::load(d).unwrap_err().to_string();
    assert!(
        text.contains("models/schema.yml:3:5: field `models[0].colums`: unknown field `colums` (did you mean `columns`?)"),
        "{text}"
    );
}

/// The jaffle_shop-like fixture names dbt-duckdb in its profile: it compiles under DuckDB's dialect,
/// and the one expression whose DuckDB meaning Sluice does not reproduce is reported with its line.
#[test]
fn the_jaffle_fixture_is_planned_as_duckdb_and_its_unmatched_semantics_are_reported() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jaffle_dialect");
    let dbt = sluice_dbt::load(&dir).unwrap();
    assert_eq!(dbt.dialect.dialect, Some(sluice_transform::Dialect::DuckDb));
    assert_eq!(dbt.dialect.adapter.as_deref(), Some("duckdb"));
    assert!(
        dbt.dialect
            .from
            .ends_with("profiles.yml: jaffle_shop.outputs.dev"),
        "{}",
        dbt.dialect.from
    );
    let compiled = sluice_dbt::compile(dbt).unwrap();
    assert_eq!(compiled.dialect, sluice_transform::Dialect::DuckDb);
    let notes: Vec<String> = sluice_transform::dialect_review::review(&compiled)
        .iter()
        .map(ToString::to_string)
        .collect();
    let orders = dir.join("models/marts/orders.sql");
    assert_eq!(
        notes,
        [format!(
            "{}:12: duckdb semantics not matched: `to_char(…)`: a format template such as \
             'YYYY-MM-DD' is printed literally by DataFusion's to_char, which takes strftime \
             patterns ('%Y-%m-%d'); write the strftime pattern",
            std::path::absolute(&orders).unwrap().display()
        )]
    );
}

/// A project without a profile keeps DataFusion's semantics (and `sluice_dialect` names one).
#[test]
fn the_shop_fixture_has_no_profile_and_keeps_datafusion_semantics() {
    let dbt = sluice_dbt::load(&fixture("dbt_shop")).unwrap();
    assert_eq!(dbt.dialect.dialect, None);
    let compiled = sluice_dbt::compile(dbt).unwrap();
    assert_eq!(compiled.dialect, sluice_transform::Dialect::DataFusion);
    assert!(sluice_transform::dialect_review::review(&compiled).is_empty());
}
