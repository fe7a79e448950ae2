//! Authorization by `access.yml` over a real `sluice serve` (docs/security.md): every read path
//! (HTTP SQL, rows, dashboards, the PostgreSQL wire) and the listings (`/api/assets`,
//! `/api/lineage`, `pg_catalog`, `information_schema`) agree on what the analyst may see: no
//! credentials → 401 (wire: auth error), an ungranted table → 403 (wire: 42501), the masked column
//! hashed, the row filter holding, hidden tables absent. Flight SQL is covered in `sluice-serve`'s
//! flight tests with arrow-flight's client.

mod common;
mod governed;

use common::{sluice, sluice_ok, write};
use governed::{NORTH_ROWS, Server, connect, is_hash, project, request, sql};
use tokio_postgres::error::SqlState;

#[test]
fn validate_names_the_file_and_line_of_a_bad_access_yml() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    write(&dir, "sluice.yml", "name: v\n");
    write(
        &dir,
        "sources/files.yml",
        "kind: files\ntables:\n  - name: sales\n    path: landing/*.csv\n",
    );
    write(
        &dir,
        "access.yml",
        "roles:\n  analyst:\n    read: [bronze.files__sale, platinum]\n    row_filters:\n      bronze.files__sales: \"region = {{ region }}\"\n",
    );
    let out = sluice(&dir, &["validate"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("access.yml:3:"), "{err}");
    assert!(
        err.contains("unknown table `bronze.files__sale` (did you mean `bronze.files__sales`?)"),
        "{err}"
    );
    assert!(
        err.contains("`platinum`: a grant starts with a layer"),
        "{err}"
    );
    assert!(err.contains("access.yml:5:"), "{err}");
    assert!(err.contains("user.name"), "{err}");
    // A token for a role nobody defined is refused.
    write(
        &dir,
        "access.yml",
        "roles:\n  analyst:\n    read: [bronze]\n",
    );
    let out = sluice(
        &dir,
        &[
            "auth", "token", "create", "--user", "x", "--role", "analist",
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown role `analist`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn grants_masks_and_row_filters_hold_on_every_http_path() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    let (ana, root) = project(&dir);
    let server = Server::start(&dir);
    let addr = server.http.as_str();

    // No credentials: 401 on the read paths.
    for (method, path, body) in [
        ("POST", "/api/sql", Some(r#"{"sql": "select 1"}"#)),
        ("GET", "/api/assets/files.sales/rows", None),
        ("GET", "/api/assets", None),
        ("GET", "/api/dashboards/sales/charts/0", None),
    ] {
        assert_eq!(request(addr, method, path, None, body).0, 401, "{path}");
    }

    // SQL: the filter (north only) and the mask (email hashed).
    let (status, rows) = sql(
        addr,
        Some(&ana),
        "select region, email from bronze.files__sales",
    );
    assert_eq!(status, 200, "{rows}");
    let rows = rows.as_array().unwrap().clone();
    assert_eq!(rows.len() as i64, NORTH_ROWS, "{rows:?}");
    for r in &rows {
        assert_eq!(r["region"], "north");
        let email = r["email"].as_str().unwrap();
        assert!(is_hash(email) && !email.contains('@'), "{email}");
    }
    // The admin sees every row, in clear.
    let (_, all) = sql(
        addr,
        Some(&root),
        "select email from bronze.files__sales order by sale_id",
    );
    assert_eq!(all.as_array().unwrap().len(), 4);
    assert_eq!(all[0]["email"], "a@x.io");

    // An ungranted table: 403, whichever path.
    let (status, e) = sql(addr, Some(&ana), "select * from gold.by_region");
    assert_eq!(status, 403, "{e}");
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("permission denied for table gold.by_region"),
        "{e}"
    );
    for path in ["/api/assets/by_region/rows", "/api/assets/by_region"] {
        assert_eq!(
            request(addr, "GET", path, Some(&ana), None).0,
            403,
            "{path}"
        );
    }

    // Rows endpoint: the same rows and mask.
    let (status, body) = request(
        addr,
        "GET",
        "/api/assets/files.sales/rows?format=json",
        Some(&ana),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let rows: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(rows.as_array().unwrap().len() as i64, NORTH_ROWS);
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|r| is_hash(r["email"].as_str().unwrap()))
    );

    // A dashboard chart over the table sums only the analyst's rows (10 + 5).
    let (status, body) = request(
        addr,
        "GET",
        "/api/dashboards/sales/charts/0",
        Some(&ana),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let chart: serde_json::Value = serde_json::from_str(&body).unwrap();
    let chart_rows = chart["rows"].as_array().unwrap();
    assert_eq!(chart_rows.len(), 1, "{chart}");
    assert_eq!(chart_rows[0]["region"], "north");

    // Listings: the model the analyst may not read is absent.
    let (_, body) = request(addr, "GET", "/api/assets", Some(&ana), None);
    let assets: serde_json::Value = serde_json::from_str(&body).unwrap();
    let names: Vec<&str> = assets
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["files.sales"]);
    let (_, body) = request(addr, "GET", "/api/lineage", Some(&ana), None);
    assert!(!body.contains("by_region"), "{body}");
    let (_, body) = request(addr, "GET", "/api/lineage", Some(&root), None);
    assert!(body.contains("by_region"), "{body}");

    // Operating needs `operate`.
    assert_eq!(
        request(addr, "POST", "/api/runs", Some(&ana), Some("{}")).0,
        403
    );

    // The command line previews the same view with `--as`, and reads everything without it.
    let preview = sluice_ok(
        &dir,
        &[
            "query",
            "select region, email from bronze.files__sales",
            "--format",
            "json",
            "--as",
            "ana:analyst",
        ],
    );
    let lines: Vec<serde_json::Value> = preview
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len() as i64, NORTH_ROWS, "{preview}");
    assert!(
        lines
            .iter()
            .all(|r| r["region"] == "north" && is_hash(r["email"].as_str().unwrap())),
        "{preview}"
    );
    let all = sluice_ok(
        &dir,
        &[
            "query",
            "select email from bronze.files__sales",
            "--format",
            "json",
        ],
    );
    assert_eq!(all.lines().count(), 4, "{all}");
    assert!(all.contains("a@x.io"), "{all}");
    let out = sluice(&dir, &["query", "select 1", "--as", "ana:analist"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown role `analist`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn grants_masks_and_row_filters_hold_on_the_wire() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    let (ana, _) = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || project(&dir))
            .await
            .unwrap()
    };
    let server = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || Server::start(&dir))
            .await
            .unwrap()
    };

    // No password: refused at login.
    assert!(connect(&server.pg, "ana", None).await.is_err());
    let c = connect(&server.pg, "ana", Some(&ana)).await.unwrap();
    let rows = c
        .query("select region, email from bronze.files__sales", &[])
        .await
        .unwrap();
    assert_eq!(rows.len() as i64, NORTH_ROWS);
    for r in &rows {
        assert_eq!(r.get::<_, String>(0), "north");
        assert!(is_hash(&r.get::<_, String>(1)));
    }
    let e = c
        .simple_query("select * from gold.by_region")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(&SqlState::INSUFFICIENT_PRIVILEGE), "{e:?}");
    // The connection stays usable, and the catalogs list only what may be read (`\dt` reads
    // pg_class; drivers read information_schema).
    let tables: Vec<String> = c
        .query("select table_schema || '.' || table_name from information_schema.tables where table_schema in ('bronze', 'silver', 'gold')", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(tables, ["bronze.files__sales"]);
    let relnames: Vec<String> = c
        .query(
            "select c.relname::text from pg_catalog.pg_class c join pg_catalog.pg_namespace n \
             on n.oid = c.relnamespace where n.nspname in ('bronze', 'silver', 'gold')",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        relnames.contains(&"files__sales".to_string()),
        "{relnames:?}"
    );
    assert!(!relnames.contains(&"by_region".to_string()), "{relnames:?}");
    drop(server);
}
