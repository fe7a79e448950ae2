//! Arrow Flight SQL from a real client: ADBC's Flight SQL driver from Python (`adbc-driver-flightsql`
//! and `pyarrow` from PyPI, a script beside this file) against `sluice serve`: the listings, results
//! as Arrow compared with `sluice query`, parameters, time travel and refused writes.
//!
//! The Python packages live in a venv that `.ci/run` creates (`/var/tmp/sluice-py-flight`, or
//! `SLUICE_PY_FLIGHT`); without it the test prints a skip, except under `CI=true` where it fails.
//! The protocol itself is also covered without Python by arrow-flight's client in
//! `sluice-serve`'s `flight` tests.

mod common;
mod pg_server;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::query_json;
use pg_server::{Server, project};
use serde_json::{Value, json};

/// The venv's interpreter, when its packages are installed.
fn python_adbc() -> Option<PathBuf> {
    let venv = std::env::var("SLUICE_PY_FLIGHT").unwrap_or("/var/tmp/sluice-py-flight".into());
    let python = Path::new(&venv).join("bin/python");
    let ready = python.exists()
        && Command::new(&python)
            .args(["-c", "import adbc_driver_flightsql.dbapi, pyarrow"])
            .status()
            .is_ok_and(|s| s.success());
    if ready {
        return Some(python);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "the ADBC Flight SQL packages are not installed in {venv}; .ci/run installs them"
    );
    eprintln!("skipping: adbc-driver-flightsql/pyarrow are not installed in {venv} (see .ci/run)");
    None
}

/// Rows of `sluice query` as arrays of the named columns.
fn expected(dir: &Path, sql: &str, columns: &[&str]) -> Value {
    let rows: Vec<Value> = query_json(dir, sql)
        .iter()
        .map(|r| Value::Array(columns.iter().map(|c| r[*c].clone()).collect()))
        .collect();
    Value::Array(rows)
}

#[test]
fn adbc_lists_tables_fetches_arrow_binds_parameters_and_is_refused_writes() {
    let Some(python) = python_adbc() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir);
    let server = Server::start(dir);
    let out = Command::new(&python)
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/flight_sql")
                .join("adbc_client.py"),
        )
        .arg(format!("grpc://{}", server.flight))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let seen: Value = serde_json::from_str(&stdout).unwrap();

    // The server tells ADBC who it is.
    assert_eq!(seen["vendor_name"], "Sluice", "{seen}");
    assert_eq!(seen["vendor_version"], env!("CARGO_PKG_VERSION"), "{seen}");

    // adbc_get_objects lists the lake: the catalog, the published schemas' tables and views (not
    // `staging`, not the PostgreSQL catalogs), with their columns.
    assert_eq!(seen["catalogs"], json!(["sluice"]), "{seen}");
    let tables = &seen["tables"];
    for (table, kind) in [
        ("bronze.files__sales", "TABLE"),
        ("gold.by_region", "TABLE"),
        ("gold.north_sales", "VIEW"),
    ] {
        assert!(
            tables.as_array().unwrap().contains(&json!([table, kind])),
            "{table} {kind} not in {tables}"
        );
    }
    assert!(
        !tables.to_string().contains("staging") && !tables.to_string().contains("pg_catalog"),
        "{tables}"
    );
    assert_eq!(
        seen["columns"]["gold.north_sales"],
        json!(["sale_id", "amount"]),
        "{seen}"
    );
    let by_region_schema = seen["schema_of_by_region"].to_string();
    for column in [r#"["revenue","double"]"#, r#"["region","string"]"#] {
        assert!(by_region_schema.contains(column), "{by_region_schema}");
    }

    // Results as Arrow, the same rows as `sluice query`, with Arrow's types.
    assert_eq!(
        seen["by_region"],
        expected(
            dir,
            "SELECT region, revenue, n FROM gold.by_region ORDER BY region",
            &["region", "revenue", "n"]
        )
    );
    assert_eq!(
        seen["by_region_types"],
        json!(["string", "double", "int64"]),
        "{seen}"
    );

    // A parameterised query (ADBC prepares it and binds the row) answers like the literal query.
    assert_eq!(
        seen["north_over_6"],
        expected(
            dir,
            "SELECT sale_id, amount FROM gold.north_sales WHERE amount > 6 ORDER BY sale_id",
            &["sale_id", "amount"]
        )
    );
    assert_eq!(
        seen["north_over_1"],
        expected(
            dir,
            "SELECT sale_id, amount FROM gold.north_sales WHERE amount > 1 ORDER BY sale_id",
            &["sale_id", "amount"]
        )
    );
    assert_ne!(seen["north_over_6"], seen["north_over_1"], "{seen}");
    assert_eq!(seen["sales_count"], json!([[3]]), "{seen}");
    assert_eq!(seen["by_region_v0"], json!([[2]]), "{seen}");

    // Writes are refused with the read-only guard's message; the connection stays usable.
    let writes = seen["writes"].as_array().unwrap();
    assert_eq!(writes.len(), 2, "{seen}");
    for w in writes {
        let w = w.as_str().unwrap();
        assert!(w.contains("read-only Flight SQL endpoint"), "{w}");
        // ADBC reports gRPC's PERMISSION_DENIED as its UNAUTHORIZED status, naming the gRPC code.
        assert!(w.contains("PermissionDenied"), "{w}");
    }
    let missing = seen["missing_table"].as_str().unwrap();
    assert!(
        missing.contains("42P01") && missing.contains("nope"),
        "{missing}"
    );
    assert_eq!(seen["after_errors"], json!([[1]]), "{seen}");
}
