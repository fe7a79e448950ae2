//! Bad input gets a specific error, and a failing check never publishes.

mod common;

use std::path::Path;

use common::{query_f64, sluice, sluice_ok, write};

fn small_project(dir: &Path) {
    write(dir, "sluice.yml", "name: small\n");
    write(
        dir,
        "sources/files.yml",
        "kind: files\ntables:\n  - name: sales\n    path: landing/*.csv\n",
    );
    write(
        dir,
        "landing/sales-1.csv",
        "sale_id,region,amount\n1,north,10.5\n2,south,20\n3,north,5\n",
    );
    write(
        dir,
        "models/silver/stg_sales.sql",
        "select sale_id, region, amount from {{ source('files', 'sales') }}",
    );
    write(
        dir,
        "models/gold/by_region.sql",
        "select region, sum(amount) as revenue from {{ ref('stg_sales') }} group by region",
    );
    write(
        dir,
        "models/silver/schema.yml",
        "version: 2\nmodels:\n  - name: stg_sales\n    columns:\n      - name: region\n        tests: [not_null]\n      - name: sale_id\n        tests: [unique]\n",
    );
}

fn stderr_of(dir: &Path, args: &[&str]) -> String {
    let out = sluice(dir, args);
    assert!(!out.status.success(), "sluice {args:?} should fail");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn failing_error_check_keeps_previous_version_and_skips_downstream() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    small_project(dir);
    sluice_ok(dir, &["run"]);
    assert_eq!(query_f64(dir, "select count(*) from silver.stg_sales"), 3.0);
    assert_eq!(
        query_f64(dir, "select sum(revenue) from gold.by_region"),
        35.5
    );

    // A new file brings a row with no region: not_null (error) must block publishing.
    write(
        dir,
        "landing/sales-2.csv",
        "sale_id,region,amount\n4,,7\n5,west,1\n",
    );
    // A model that does not depend on the failing one still runs.
    write(
        dir,
        "models/gold/sale_count.sql",
        "select count(*) as n from {{ source('files', 'sales') }}",
    );
    let out = stderr_of(dir, &["run"]);
    let independent = out
        .lines()
        .find(|l| l.contains("sale_count"))
        .unwrap_or_default();
    assert!(independent.contains("success"), "{out}");
    assert_eq!(query_f64(dir, "select n from gold.sale_count"), 5.0);
    assert!(out.contains("FAIL not_null_stg_sales_region"), "{out}");
    assert!(
        out.contains("\"sale_id\":4"),
        "the offending row is shown:\n{out}"
    );
    assert!(
        out.contains("by_region") && out.contains("skipped"),
        "{out}"
    );
    // Readers still see the previous version of both tables.
    assert_eq!(query_f64(dir, "select count(*) from silver.stg_sales"), 3.0);
    assert_eq!(
        query_f64(dir, "select sum(revenue) from gold.by_region"),
        35.5
    );
    // Bronze did land the new rows (the check guards silver, not the raw layer).
    assert_eq!(
        query_f64(dir, "select count(*) from bronze.files__sales"),
        5.0
    );
    let status = sluice_ok(dir, &["status"]);
    assert!(status.contains("failed"), "{status}");
}

#[test]
fn cycle_is_reported_with_its_path() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "sluice.yml", "name: cyc\n");
    write(dir, "models/silver/a.sql", "select * from {{ ref('c') }}");
    write(dir, "models/silver/b.sql", "select * from {{ ref('a') }}");
    write(dir, "models/silver/c.sql", "select * from {{ ref('b') }}");
    let out = stderr_of(dir, &["validate"]);
    assert!(out.contains("cycle: a -> b -> c -> a"), "{out}");
}

#[test]
fn unknown_ref_is_reported_with_a_suggestion() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    small_project(dir);
    write(
        dir,
        "models/gold/by_region.sql",
        "select * from {{ ref('stg_sale') }}",
    );
    let out = stderr_of(dir, &["validate"]);
    assert!(
        out.contains("by_region.sql:1:18: unknown ref `stg_sale` (did you mean `stg_sales`?)"),
        "{out}"
    );
}

#[test]
fn malformed_yaml_names_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    small_project(dir);
    write(
        dir,
        "sources/files.yml",
        "kind: files\ntables:\n  - name: sales\n    path: [unclosed\n",
    );
    let out = stderr_of(dir, &["validate"]);
    // The parser points at the list that is never closed.
    assert!(
        out.contains("sources/files.yml:4:11: unclosed bracket '['"),
        "{out}"
    );
    write(
        dir,
        "sources/files.yml",
        "kind: files\ntables:\n  - name: sales\n    path: landing/*.csv\n    colour: red\n",
    );
    let out = stderr_of(dir, &["validate"]);
    assert!(
        out.contains("files.yml:5:") && out.contains("unknown field `colour`"),
        "{out}"
    );
}

#[test]
fn sql_error_names_the_model_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    small_project(dir);
    write(
        dir,
        "models/gold/by_region.sql",
        "select regionn, count(*) from {{ ref('stg_sales') }} group by regionn",
    );
    let out = stderr_of(dir, &["run"]);
    assert!(
        out.contains("by_region.sql: SQL error in model `by_region`"),
        "{out}"
    );
    assert!(
        out.contains("regionn"),
        "the database's message is shown:\n{out}"
    );
}

#[test]
fn bad_csv_rows_go_to_quarantine_with_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    small_project(dir);
    write(
        dir,
        "landing/sales-1.csv",
        "sale_id,region,amount\n1,north,10.5\n2,south\n3,north,5\n4,east,abc\n",
    );
    write(
        dir,
        "sources/files.yml",
        "kind: files\ntables:\n  - name: sales\n    path: landing/*.csv\n    columns: {amount: double}\n",
    );
    sluice_ok(dir, &["run"]);
    assert_eq!(
        query_f64(dir, "select count(*) from bronze.files__sales"),
        2.0
    );
    let q = common::query_json(
        dir,
        "select line, reason from quarantine.files__sales order by line",
    );
    assert_eq!(q.len(), 2, "{q:?}");
    assert_eq!(q[0]["line"], 3);
    assert!(
        q[0]["reason"]
            .as_str()
            .unwrap()
            .contains("expected 3 fields"),
        "{q:?}"
    );
    assert_eq!(q[1]["line"], 5);
    assert!(q[1]["reason"].as_str().unwrap().contains("amount"), "{q:?}");
}

#[test]
fn init_scaffold_runs_without_edits() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("new");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("init")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    sluice_ok(&dir, &["validate"]);
    sluice_ok(&dir, &["run"]);
    assert_eq!(
        query_f64(&dir, "select sum(sales) from gold.sales_by_region"),
        4.0
    );
}
