//! `target/manifest.json` and `target/run_results.json`: written by `sluice run` (also after a failed
//! run), `test`, `compile` and `ls`, and valid against dbt's published JSON schemas (manifest v12, run
//! results v6, vendored in `fixtures/dbt-schemas`).

mod common;
mod json_schema;

use std::path::Path;

use common::{sluice, sluice_ok};
use serde_json::Value;

fn schema(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/dbt-schemas")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn read(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn assert_valid(schema_file: &str, artifact: &Value) {
    let errors = json_schema::validate(&schema(schema_file), artifact);
    assert!(
        errors.is_empty(),
        "{} violation(s) of {schema_file}:\n{}",
        errors.len(),
        errors
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn ids(v: &Value, key: &str) -> Vec<String> {
    v[key].as_object().unwrap().keys().cloned().collect()
}

#[test]
fn a_run_writes_a_manifest_and_run_results_in_dbts_schemas() {
    let (_tmp, dir) = common::init_project();
    let out = sluice_ok(&dir, &["run"]);
    assert!(out.contains("Done. PASS="), "{out}");
    assert!(
        !out.contains('\u{1b}'),
        "no colour when stdout is not a terminal:\n{out}"
    );

    let manifest = read(&dir.join("target/manifest.json"));
    assert_valid("manifest-v12.json", &manifest);
    assert_eq!(
        manifest["metadata"]["dbt_schema_version"],
        "https://schemas.getdbt.com/dbt/manifest/v12.json"
    );
    let nodes = ids(&manifest, "nodes");
    assert!(
        nodes.contains(&"model.my_project.stg_sales".to_string()),
        "{nodes:?}"
    );
    assert!(nodes.contains(&"model.my_project.sales_by_region".to_string()));
    assert_eq!(
        nodes
            .iter()
            .filter(|n| n.starts_with("test.my_project."))
            .count(),
        4,
        "{nodes:?}"
    );
    assert_eq!(ids(&manifest, "sources"), ["source.my_project.files.sales"]);
    assert_eq!(
        manifest["parent_map"]["model.my_project.sales_by_region"],
        serde_json::json!(["model.my_project.stg_sales"])
    );
    let children = manifest["child_map"]["source.my_project.files.sales"].clone();
    assert_eq!(children, serde_json::json!(["model.my_project.stg_sales"]));
    let stg = &manifest["nodes"]["model.my_project.stg_sales"];
    assert_eq!(stg["original_file_path"], "models/silver/stg_sales.sql");
    assert_eq!(
        stg["fqn"],
        serde_json::json!(["my_project", "silver", "stg_sales"])
    );
    assert_eq!(
        stg["depends_on"]["nodes"],
        serde_json::json!(["source.my_project.files.sales"])
    );
    assert!(
        stg["compiled_code"]
            .as_str()
            .unwrap()
            .contains("bronze.files__sales")
    );

    let results = read(&dir.join("target/run_results.json"));
    assert_valid("run-results-v6.json", &results);
    let by_id = |id: &str| {
        results["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["unique_id"] == id)
            .unwrap_or_else(|| panic!("no result for {id}"))
            .clone()
    };
    let stg = by_id("model.my_project.stg_sales");
    assert_eq!(stg["status"], "success");
    assert_eq!(stg["adapter_response"]["rows_affected"], 4);
    assert_eq!(stg["timing"][0]["name"], "execute");
    assert_eq!(by_id("source.my_project.files.sales")["status"], "success");
    let tests: Vec<&Value> = results["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["unique_id"].as_str().unwrap().starts_with("test."))
        .collect();
    assert_eq!(tests.len(), 4);
    assert!(
        tests
            .iter()
            .all(|t| t["status"] == "pass" && t["failures"] == 0)
    );
    assert_eq!(results["args"]["which"], "run");
}

#[test]
fn a_failed_run_still_writes_run_results() {
    let (_tmp, dir) = common::init_project();
    std::fs::write(
        dir.join("models/silver/stg_sales.sql"),
        "select no_such_column from {{ source('files', 'sales') }}\n",
    )
    .unwrap();
    let out = sluice(&dir, &["run"]);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ERROR=1"), "{stdout}");
    let results = read(&dir.join("target/run_results.json"));
    assert_valid("run-results-v6.json", &results);
    let status = |id: &str| {
        results["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["unique_id"] == id)
            .map(|r| r["status"].clone())
    };
    assert_eq!(status("model.my_project.stg_sales"), Some("error".into()));
    assert_eq!(
        status("model.my_project.sales_by_region"),
        Some("skipped".into())
    );
    let message = results["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["unique_id"] == "model.my_project.stg_sales")
        .map(|r| r["message"].as_str().unwrap_or_default().to_string())
        .unwrap();
    assert!(message.contains("no_such_column"), "{message}");
}

#[test]
fn a_dbt_projects_artifacts_follow_the_schemas_too() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dbt_shop"),
        tmp.path(),
    );
    sluice_ok(tmp.path(), &["run"]);
    let manifest = read(&tmp.path().join("target/manifest.json"));
    assert_valid("manifest-v12.json", &manifest);
    let types: std::collections::BTreeSet<String> = manifest["nodes"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n["resource_type"].as_str().unwrap().to_string())
        .collect();
    for t in ["model", "seed", "snapshot", "test"] {
        assert!(types.contains(t), "no {t} node: {types:?}");
    }
    assert_valid(
        "run-results-v6.json",
        &read(&tmp.path().join("target/run_results.json")),
    );
    // `sluice compile` and `ls` write a manifest as well.
    std::fs::remove_file(tmp.path().join("target/manifest.json")).unwrap();
    sluice_ok(tmp.path(), &["compile"]);
    assert_valid(
        "manifest-v12.json",
        &read(&tmp.path().join("target/manifest.json")),
    );
    assert_valid(
        "run-results-v6.json",
        &read(&tmp.path().join("target/run_results.json")),
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A webhook that accepts every request; its URL.
async fn accepting_webhook() -> String {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(|| async { axum::http::StatusCode::OK }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// Exports are dbt exposures in the manifest, with their run's result in run_results.json, and both
/// files stay valid against the schemas; a changed export file is `state:modified`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_are_exposures_with_run_results() {
    let url = accepting_webhook().await;
    let (tmp, dir) = common::init_project();
    common::write(
        &dir,
        "exports/regions_hook.yml",
        &format!(
            "asset: gold.sales_by_region\nkind: webhook\nurl: {url}\nowner: finance@example.com\n\
             description: Revenue per region to the CRM.\ntags: [crm]\n"
        ),
    );
    // A macro and a contract, so that `macros`, `columns` and `contract` are checked by the schema too.
    common::write(
        &dir,
        "macros/money.sql",
        "{% macro cents(c) %}{{ c }} * 100{% endmacro %}\n",
    );
    common::write(
        &dir,
        "models/gold/sales_cents.sql",
        "select region, {{ cents('revenue') }} as revenue_cents from {{ ref('sales_by_region') }}\n",
    );
    common::write(
        &dir,
        "models/gold/cents.yml",
        "version: 2\nmodels:\n  - name: sales_cents\n    config:\n      contract: {enforced: true}\n    \
         columns:\n      - name: region\n        data_type: varchar\n        description: The region.\n",
    );
    common::write(
        &dir,
        "exports/broken_hook.yml",
        "asset: stg_sales\nkind: webhook\nurl: http://127.0.0.1:9/hook\nretries: 0\n",
    );
    let d = dir.clone();
    let out = tokio::task::spawn_blocking(move || sluice(&d, &["run"]))
        .await
        .unwrap();
    assert!(!out.status.success(), "the broken export fails the run");

    let manifest = read(&dir.join("target/manifest.json"));
    assert_valid("manifest-v12.json", &manifest);
    let cents = &manifest["nodes"]["model.my_project.sales_cents"];
    assert_eq!(cents["contract"]["enforced"], true);
    assert!(cents["contract"]["checksum"].is_string());
    assert_eq!(cents["columns"]["region"]["data_type"], "varchar");
    assert_eq!(
        manifest["macros"]["macro.my_project.cents"]["macro_sql"],
        "{% macro cents(c) %}{{ c }} * 100{% endmacro %}"
    );
    let hook = &manifest["exposures"]["exposure.my_project.regions_hook"];
    assert_eq!(hook["type"], "application");
    assert_eq!(hook["owner"]["email"], "finance@example.com");
    assert_eq!(hook["description"], "Revenue per region to the CRM.");
    assert_eq!(hook["tags"], serde_json::json!(["crm"]));
    assert_eq!(hook["meta"]["sluice_kind"], "webhook");
    assert_eq!(
        hook["depends_on"]["nodes"],
        serde_json::json!(["model.my_project.sales_by_region"])
    );
    assert_eq!(
        manifest["parent_map"]["exposure.my_project.regions_hook"],
        serde_json::json!(["model.my_project.sales_by_region"])
    );
    assert!(
        manifest["child_map"]["model.my_project.sales_by_region"]
            .as_array()
            .unwrap()
            .contains(&"exposure.my_project.regions_hook".into())
    );

    let results = read(&dir.join("target/run_results.json"));
    assert_valid("run-results-v6.json", &results);
    let by_id = |id: &str| {
        results["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["unique_id"] == id)
            .unwrap_or_else(|| panic!("no result for {id}"))
            .clone()
    };
    assert_eq!(
        by_id("exposure.my_project.regions_hook")["status"],
        "success"
    );
    let broken = by_id("exposure.my_project.broken_hook");
    assert_eq!(broken["status"], "error");
    assert!(broken["message"].as_str().is_some_and(|m| !m.is_empty()));

    // `export:` nodes compare with the previous manifest like any other.
    let state = tmp.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::copy(
        dir.join("target/manifest.json"),
        state.join("manifest.json"),
    )
    .unwrap();
    let hook_file = dir.join("exports/regions_hook.yml");
    let text = std::fs::read_to_string(&hook_file).unwrap();
    std::fs::write(
        &hook_file,
        text.replace("tags: [crm]", "tags: [crm, daily]"),
    )
    .unwrap();
    let out = sluice_ok(
        &dir,
        &[
            "ls",
            "-s",
            "state:modified",
            "--state",
            state.to_str().unwrap(),
            "-o",
            "name",
        ],
    );
    assert_eq!(out.trim(), "export:regions_hook");
}
