//! view, table, incremental append and incremental merge, across two runs with new data.

mod common;

use common::{query_f64, query_json, sluice_ok, write};

#[test]
fn each_materialization_behaves_as_documented() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "sluice.yml", "name: m\nvars:\n  min_qty: 1\n");
    write(
        dir,
        "sources/files.yml",
        "kind: files\ntables:\n  - name: events\n    path: landing/*.jsonl\n",
    );
    write(
        dir,
        "landing/a.jsonl",
        "{\"id\": 1, \"qty\": 2, \"v\": 1}\n{\"id\": 2, \"qty\": 0, \"v\": 1}\n",
    );
    write(
        dir,
        "models/silver/clean.sql",
        "{{ config(materialized='view') }}\nselect id, qty, v, _ingested_at from {{ source('files', 'events') }} where qty >= {{ var('min_qty') }}",
    );
    write(
        dir,
        "models/silver/snapshot.sql",
        "select count(*) as n from {{ ref('clean') }}",
    );
    write(
        dir,
        "models/gold/log.sql",
        "{{ config(materialized='incremental') }}\nselect id, v, _ingested_at from {{ source('files', 'events') }}\n{% if is_incremental() %}where _ingested_at > (select max(_ingested_at) from {{ this }}){% endif %}",
    );
    write(
        dir,
        "models/gold/latest.sql",
        "{{ config(materialized='incremental', unique_key='id') }}\nselect id, max(v) as v from {{ source('files', 'events') }} group by id",
    );
    write(
        dir,
        "models/gold/schema.yml",
        "version: 2\nmodels:\n  - name: latest\n    columns:\n      - name: id\n        tests: [unique]\n",
    );

    sluice_ok(dir, &["run"]);
    assert!(
        !dir.join("lake/silver/clean").exists(),
        "a view stores nothing"
    );
    assert_eq!(query_f64(dir, "select count(*) from silver.clean"), 1.0);
    assert_eq!(query_f64(dir, "select n from silver.snapshot"), 1.0);
    assert_eq!(query_f64(dir, "select count(*) from gold.log"), 2.0);
    assert_eq!(query_f64(dir, "select count(*) from gold.latest"), 2.0);

    // New data: id 2 gets a new version, id 3 is new.
    write(
        dir,
        "landing/b.jsonl",
        "{\"id\": 2, \"qty\": 5, \"v\": 2}\n{\"id\": 3, \"qty\": 1, \"v\": 1}\n",
    );
    sluice_ok(dir, &["run"]);
    // The view sees the new rows at once; the table was rebuilt.
    assert_eq!(query_f64(dir, "select count(*) from silver.clean"), 3.0);
    assert_eq!(query_f64(dir, "select n from silver.snapshot"), 3.0);
    // Append added only the rows its incremental filter selected.
    assert_eq!(query_f64(dir, "select count(*) from gold.log"), 4.0);
    // Merge updated id 2 in place and inserted id 3.
    let rows = query_json(dir, "select id, v from gold.latest order by id");
    assert_eq!(
        rows,
        vec![
            serde_json::json!({"id": 1, "v": 1}),
            serde_json::json!({"id": 2, "v": 2}),
            serde_json::json!({"id": 3, "v": 1})
        ]
    );

    // --full-refresh rebuilds incremental models from scratch.
    sluice_ok(dir, &["run", "--select", "log", "--full-refresh"]);
    assert_eq!(query_f64(dir, "select count(*) from gold.log"), 4.0);
    // Time travel still has the old versions: the Delta log grew with each publish.
    let versions = std::fs::read_dir(dir.join("lake/gold/log/_delta_log"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "json")
        })
        .count();
    assert!(versions >= 3, "{versions}");
}

#[test]
fn bench_reports_every_stage_as_json() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["bench", "--scale", "0.02", "--dir"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for stage in ["generate", "ingest", "transform", "check"] {
        assert!(
            report["stages"][stage]["rows"].as_u64().unwrap() > 0,
            "{report}"
        );
        assert!(
            report["stages"][stage]["seconds"].as_f64().unwrap() > 0.0,
            "{report}"
        );
    }
    assert_eq!(report["failed_nodes"], 0);
}

#[test]
fn parquet_files_land_through_the_files_source() {
    use std::sync::Arc;

    use sluice_transform::arrow::array::{Int64Array, RecordBatch, StringArray};
    use sluice_transform::arrow::datatypes::{DataType, Field, Schema};

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "sluice.yml", "name: p\n");
    write(
        dir,
        "sources/files.yml",
        "kind: files\ntables:\n  - name: items\n    path: landing/*.parquet\n",
    );
    std::fs::create_dir_all(dir.join("landing")).unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3])),
            Arc::new(StringArray::from(vec![Some("a"), None, Some("c")])),
        ],
    )
    .unwrap();
    let file = std::fs::File::create(dir.join("landing/items-1.parquet")).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    sluice_ok(dir, &["run"]);
    assert_eq!(
        query_f64(dir, "select count(*) from bronze.files__items"),
        3.0
    );
    assert_eq!(
        query_f64(
            dir,
            "select count(*) from bronze.files__items where name is null"
        ),
        1.0
    );
    sluice_ok(dir, &["run"]);
    assert_eq!(
        query_f64(dir, "select count(*) from bronze.files__items"),
        3.0,
        "a landed file is not landed again"
    );
}
