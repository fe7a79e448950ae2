//! Grants, masks and row filters through the HTTP API and the wire's session, and the audit log
//! of what was read.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use arrow::array::{Array, StringArray};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::Utc;
use sluice_core::access::parse_access;
use sluice_core::pii::PiiKey;

use super::mask::hmac_hex;
use super::*;
use crate::audit::Auditor;
use crate::auth::{AuthMode, create_token};
use crate::test_support::{Reply, Served};

pub(crate) const KEY: &[u8] = b"test-pii-key";

const ACCESS_YML: &str = "\
masks:
  bronze.files__sales:
    region: hash
users:
  ana: {region: north}
roles:
  analyst:
    read: [bronze]
    row_filters:
      bronze.files__sales: \"region = {{ user.region }}\"
  partial:
    columns:
      bronze.files__sales: [sale_id, amount]
";

fn tables() -> BTreeMap<String, BTreeSet<String>> {
    ["bronze.files__sales", "gold.by_region", "gold.unbuilt"]
        .into_iter()
        .map(|t| (t.to_string(), BTreeSet::new()))
        .collect()
}

/// A served project with access.yml in force and authentication on; the tokens of an analyst
/// (`ana`), a principal reading two columns (`pat`) and an admin.
pub(crate) async fn governed() -> (Served, String, String, String) {
    let mut served = Served::new().await;
    let config = parse_access(Path::new("access.yml"), ACCESS_YML, &tables()).unwrap();
    served.state.access = Access::new(
        Some(config),
        Some(PiiKey::new(KEY)),
        Some(Auditor::new(served.state.state.clone())),
    );
    served.state.auth = AuthMode::Required;
    let store = &served.state.state;
    let token = |user: &str, role: Role| {
        create_token(store, user, role, None, Utc::now())
            .unwrap()
            .secret
    };
    let ana = token("ana", Role::Named("analyst".into()));
    let pat = token("pat", Role::Named("partial".into()));
    let admin = token("root", Role::Admin);
    (served, ana, pat, admin)
}

async fn as_user(served: &Served, token: &str, method: &str, uri: &str, body: &str) -> Reply {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    served.send(req).await
}

async fn sql(served: &Served, token: &str, sql: &str) -> Reply {
    let body = serde_json::json!({ "sql": sql }).to_string();
    as_user(served, token, "POST", "/api/sql", &body).await
}

async fn count(served: &Served, sql: &str) -> i64 {
    let batches = served.state.engine.query(sql).await.unwrap();
    let col = batches[0].column(0);
    arrow::compute::cast(col, &arrow::datatypes::DataType::Int64)
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .unwrap()
        .value(0)
}

#[tokio::test]
async fn a_row_filter_and_a_mask_hold_over_sql_rows_and_charts() {
    let (served, ana, _, admin) = governed().await;
    let north = count(
        &served,
        "select count(*) from bronze.files__sales where region = 'north'",
    )
    .await;
    assert!(north > 0);

    let r = sql(
        &served,
        &ana,
        "select count(*) as n, min(region) as r, max(region) as m from bronze.files__sales",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let row = &r.json()[0];
    assert_eq!(row["n"], north);
    let hashed = hmac_hex(KEY, "north");
    assert_eq!(row["r"], hashed.as_str());
    assert_eq!(row["m"], hashed.as_str());
    // Filtering on the clear value finds nothing: the query sees only the hash.
    let r = sql(
        &served,
        &ana,
        "select count(*) as n from bronze.files__sales where region = 'south' or region = 'north'",
    )
    .await;
    assert_eq!(r.json()[0]["n"], 0);

    // The rows endpoint: the same rows, the same mask.
    let r = as_user(
        &served,
        &ana,
        "GET",
        "/api/assets/files.sales/rows?limit=100000&format=json",
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let rows = r.json();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len() as i64, north);
    assert!(rows.iter().all(|row| row["region"] == hashed.as_str()));

    // The admin sees everything in clear.
    let r = sql(
        &served,
        &admin,
        "select count(*) as n, min(region) as r from bronze.files__sales",
    )
    .await;
    assert_eq!(r.json()[0]["r"], "east");
    assert!(r.json()[0]["n"].as_i64().unwrap() > north);
}

#[tokio::test]
async fn ungranted_tables_are_refused_and_absent_from_listings() {
    let (served, ana, pat, _) = governed().await;
    let r = sql(&served, &ana, "select * from gold.by_region").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let e = r.json()["error"].as_str().unwrap().to_string();
    assert!(
        e.contains("permission denied for table gold.by_region"),
        "{e}"
    );
    assert!(e.contains("analyst"), "{e}");
    let r = as_user(&served, &ana, "GET", "/api/assets/by_region/rows", "").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = as_user(&served, &ana, "GET", "/api/assets/by_region", "").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());

    let names = |v: &serde_json::Value, key: &str| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|a| a[key].as_str().unwrap().to_string())
            .collect()
    };
    let assets = as_user(&served, &ana, "GET", "/api/assets", "")
        .await
        .json();
    let listed = names(&assets, "name");
    assert!(listed.contains(&"files.sales".to_string()), "{listed:?}");
    assert!(
        !listed.iter().any(|n| n == "by_region" || n == "unbuilt"),
        "{listed:?}"
    );
    let graph = as_user(&served, &ana, "GET", "/api/lineage", "")
        .await
        .json();
    let nodes = names(&graph["nodes"], "name");
    assert_eq!(nodes, vec!["files.sales"]);
    assert!(graph["edges"].as_array().unwrap().is_empty());
    // DataFusion's information_schema lists only what may be read.
    let r = sql(&served, &ana, "select table_schema || '.' || table_name as t from information_schema.tables where table_schema in ('bronze', 'silver', 'gold')").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(names(&r.json(), "t"), vec!["bronze.files__sales"]);

    // Part of a table: the other columns are not there.
    let r = sql(&served, &pat, "select * from bronze.files__sales limit 1").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let row = r.json()[0].clone();
    let mut cols: Vec<&String> = row.as_object().unwrap().keys().collect();
    cols.sort();
    assert_eq!(cols, vec!["amount", "sale_id"]);
    let r = sql(&served, &pat, "select region from bronze.files__sales").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
}

#[tokio::test]
async fn operating_and_the_audit_log_follow_the_grants() {
    let (served, ana, _, admin) = governed().await;
    let r = as_user(&served, &ana, "POST", "/api/runs", "{}").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert!(r.text().contains("operate"), "{}", r.text());
    let r = as_user(&served, &ana, "GET", "/api/audit", "").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());

    let query = "select sale_id, region from bronze.files__sales where sale_id < 50";
    let r = sql(&served, &ana, query).await;
    assert_eq!(r.status, StatusCode::OK);
    let returned = r.json().as_array().unwrap().len() as i64;

    let log = as_user(&served, &admin, "GET", "/api/audit?limit=1000", "").await;
    assert_eq!(log.status, StatusCode::OK, "{}", log.text());
    let records = log.json()["records"].as_array().unwrap().clone();
    let read = records
        .iter()
        .find(|r| r["actor"] == "ana" && r["action"] == "sql" && r["query_text"] == query)
        .unwrap_or_else(|| panic!("no read of ana in {records:#?}"));
    assert_eq!(read["kind"], "read");
    assert_eq!(read["role"], "analyst");
    assert_eq!(read["protocol"], "http");
    assert_eq!(read["tables"], "bronze.files__sales");
    assert_eq!(read["columns"], "sale_id,region");
    assert_eq!(read["query_hash"], crate::audit::sha256_hex(query));
    // The refused run was recorded before it was refused? No: refusals are not changes. The
    // run of the test project was (writes: run start, commit, run end).
    for action in ["run_start", "commit", "run_end"] {
        assert!(records.iter().any(|r| r["action"] == action), "{action}");
    }
    // The end of the read, with the rows returned, follows (written off the request path).
    let seq = read["seq"].as_i64().unwrap();
    let store = served.state.state.clone();
    let mut end = None;
    for _ in 0..200 {
        end = store
            .backend()
            .audit_records(seq, 100)
            .unwrap()
            .into_iter()
            .find(|r| {
                r.action == "read_end"
                    && r.detail
                        .as_deref()
                        .is_some_and(|d| d.contains(&format!("\"read\":{seq}")))
            });
        if end.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let end = end.expect("a read_end record");
    assert_eq!(end.rows, Some(returned));

    // The log cannot be changed.
    let e = store.backend().audit_records(0, 1).unwrap();
    assert!(!e.is_empty());
}

#[tokio::test]
async fn the_wire_session_lists_and_refuses_by_the_same_view() {
    let (served, _, _, _) = governed().await;
    let access = served.state.access.clone();
    let principal = crate::auth::Principal {
        user: "ana".into(),
        role: Role::Named("analyst".into()),
        token_id: "t".into(),
    };
    let view = access.view(Some(&principal)).expect("restricted");
    let ctx = crate::pg::catalog::session_for_view(&served.state.engine, None, Some(view)).unwrap();
    let batches = ctx
        .sql("select table_schema, table_name from information_schema.tables where table_schema in ('bronze', 'gold') order by 1, 2")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let names: Vec<String> = batches
        .iter()
        .flat_map(|b| {
            let t = arrow::compute::cast(b.column(1), &arrow::datatypes::DataType::Utf8).unwrap();
            let t = t.as_any().downcast_ref::<StringArray>().unwrap().clone();
            (0..t.len())
                .map(move |i| t.value(i).to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(names, vec!["files__sales"]);
    let e = ctx.sql("select * from gold.by_region").await.unwrap_err();
    assert_eq!(crate::pg::error::sqlstate_of(&e), "42501", "{e}");
    // The open development mode (no principal) and the admin see everything.
    assert!(access.view(None).is_none());
}
