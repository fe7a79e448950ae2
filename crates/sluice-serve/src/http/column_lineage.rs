//! Column lineage: `GET /api/lineage/columns/{name}` (each column's inputs and readers, one step each
//! way) and `GET /api/lineage/columns/{name}/{column}` (the whole upstream and downstream of one
//! column). Computed from the models' query plans ([`sluice_transform::lineage`]).
//!
//! Under `access.yml`, a principal asks only about assets it may read, and sees only the edges to
//! assets it may read (as `GET /api/lineage` shows only those nodes).

use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde_json::{Value, json};
use sluice_transform::lineage::project::{Edge, ProjectLineage, Step};

use crate::app::AppState;
use crate::auth::Principal;
use crate::error::ApiError;

/// The columns of an asset: a model's as planned, a source table's as ingested (none before that);
/// with a principal, only those its view of the table has.
async fn columns_of(
    s: &AppState,
    p: Option<&Principal>,
    asset: &str,
    lineage: &ProjectLineage,
) -> Result<Vec<String>, ApiError> {
    let relation = s.relation_of(asset)?;
    let visible: Option<Vec<String>> = match s
        .engine_for(p)?
        .plan(&format!("SELECT * FROM {relation} LIMIT 0"))
        .await
    {
        Ok(df) => Some(
            df.schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect(),
        ),
        Err(_) => None,
    };
    // Under access.yml, a model's planned columns are cut to those the principal's view has.
    let restricted = s.access.view(p).is_some();
    Ok(match lineage.assets.get(asset) {
        Some(a) => a
            .columns
            .iter()
            .map(|c| c.name.clone())
            .filter(|c| !restricted || visible.as_ref().is_some_and(|v| v.contains(c)))
            .collect(),
        None => visible.unwrap_or_default(),
    })
}

fn readable_edges(s: &AppState, p: Option<&Principal>, edges: Vec<Edge>) -> Vec<Edge> {
    edges
        .into_iter()
        .filter(|e| s.may_read_asset(p, &e.asset))
        .collect()
}

/// The steps a principal may see: a step through an asset it may not read hides what lies beyond.
fn readable_steps(s: &AppState, p: Option<&Principal>, steps: Vec<Step>) -> Vec<Step> {
    let mut out = Vec::new();
    let mut hidden_below: Option<usize> = None;
    for step in steps {
        if let Some(depth) = hidden_below {
            if step.depth > depth {
                continue;
            }
            hidden_below = None;
        }
        if s.may_read_asset(p, &step.edge.asset) {
            out.push(step);
        } else {
            hidden_below = Some(step.depth);
        }
    }
    out
}

/// `GET /api/lineage/columns/{name}`.
pub async fn asset_columns(
    State(s): State<AppState>,
    Path(asset): Path<String>,
    principal: Option<Extension<Principal>>,
) -> Result<Json<Value>, ApiError> {
    let p = principal.as_deref();
    s.check_readable(p, &s.relation_of(&asset)?)?;
    let lineage = ProjectLineage::compute(&s.engine, &s.compiled).await;
    let planned = lineage.assets.get(&asset);
    let columns: Vec<Value> = columns_of(&s, p, &asset, &lineage)
        .await?
        .into_iter()
        .map(|name| {
            let inputs: Vec<Edge> = planned
                .and_then(|a| a.columns.iter().find(|c| c.name == name))
                .map(|c| c.inputs.clone())
                .unwrap_or_default();
            let readers: Vec<Edge> = lineage
                .downstream(&asset, &name)
                .into_iter()
                .filter(|step| step.depth == 1)
                .map(|step| step.edge)
                .collect();
            let (inputs, readers) = (
                readable_edges(&s, p, inputs),
                readable_edges(&s, p, readers),
            );
            json!({"name": name, "inputs": inputs, "readers": readers})
        })
        .collect();
    Ok(Json(json!({
        "asset": asset,
        "columns": columns,
        "dataset": readable_edges(&s, p, planned.map(|a| a.dataset.clone()).unwrap_or_default()),
        "error": lineage.errors.get(&asset),
    })))
}

/// `GET /api/lineage/columns/{name}/{column}`.
pub async fn column(
    State(s): State<AppState>,
    Path((asset, column)): Path<(String, String)>,
    principal: Option<Extension<Principal>>,
) -> Result<Json<Value>, ApiError> {
    let p = principal.as_deref();
    s.check_readable(p, &s.relation_of(&asset)?)?;
    let lineage = ProjectLineage::compute(&s.engine, &s.compiled).await;
    let available = columns_of(&s, p, &asset, &lineage).await?;
    if !available.contains(&column) {
        return Err(ApiError::UnknownColumn {
            column,
            param: "path".into(),
            available,
        });
    }
    Ok(Json(json!({
        "asset": asset,
        "column": column,
        "upstream": readable_steps(&s, p, lineage.upstream(&asset, &column)),
        "downstream": readable_steps(&s, p, lineage.downstream(&asset, &column)),
        "error": lineage.errors.get(&asset),
    })))
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use serde_json::json;

    use crate::test_support::Served;

    #[tokio::test]
    async fn each_column_with_its_inputs_and_readers() {
        let s = Served::new().await;
        let r = s.get("/api/lineage/columns/by_region", "").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let body = r.json();
        assert_eq!(
            body["columns"],
            json!([
                {"name": "region",
                 "inputs": [{"asset": "files.sales", "column": "region", "transformations": ["IDENTITY"]}],
                 "readers": [{"asset": "unbuilt", "column": "region", "transformations": ["IDENTITY"]}]},
                {"name": "revenue",
                 "inputs": [{"asset": "files.sales", "column": "amount", "transformations": ["AGGREGATION"]}],
                 "readers": [{"asset": "unbuilt", "column": "revenue", "transformations": ["IDENTITY"]}]},
            ])
        );
        assert_eq!(
            body["dataset"],
            json!([{"asset": "files.sales", "column": "region", "transformations": ["GROUP_BY"]}])
        );
        assert_eq!(body["error"], json!(null));

        // A source table: its ingested columns, read by the model.
        let body = s.get("/api/lineage/columns/files.sales", "").await.json();
        let amount = body["columns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "amount")
            .unwrap();
        assert_eq!(amount["inputs"], json!([]));
        assert_eq!(
            amount["readers"],
            json!([{"asset": "by_region", "column": "revenue", "transformations": ["AGGREGATION"]}])
        );
    }

    #[tokio::test]
    async fn one_column_upstream_through_an_unbuilt_model() {
        let s = Served::new().await;
        // `unbuilt` has no table: it is planned from its SQL over `by_region`'s table.
        let r = s.get("/api/lineage/columns/unbuilt/revenue", "").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let body = r.json();
        assert_eq!(
            body["upstream"],
            json!([
                {"depth": 1, "asset": "by_region", "column": "revenue", "transformations": ["IDENTITY"]},
                {"depth": 2, "asset": "files.sales", "column": "amount", "transformations": ["AGGREGATION"]},
            ])
        );
        assert_eq!(body["downstream"], json!([]));
        let down = s
            .get("/api/lineage/columns/files.sales/region", "")
            .await
            .json();
        assert_eq!(
            down["downstream"],
            json!([
                {"depth": 1, "asset": "by_region", "column": "region", "transformations": ["IDENTITY"]},
                {"depth": 2, "asset": "unbuilt", "column": "region", "transformations": ["IDENTITY"]},
            ])
        );
    }

    #[tokio::test]
    async fn under_access_yml_only_readable_assets_and_columns_show() {
        use axum::body::Body;
        use axum::http::{Request, header};
        let (s, ana, pat, admin) = crate::access::tests::governed().await;
        let get = |token: &str, uri: &str| {
            Request::builder()
                .uri(uri)
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap()
        };
        // The analyst reads bronze only: the models are refused, and their edges hidden.
        let r = s.send(get(&ana, "/api/lineage/columns/by_region")).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
        let r = s
            .send(get(&ana, "/api/lineage/columns/files.sales/amount"))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.json()["downstream"], json!([]));
        // Two columns of the table: the others do not exist for this principal.
        let body = s
            .send(get(&pat, "/api/lineage/columns/files.sales"))
            .await
            .json();
        let names: Vec<&str> = body["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["sale_id", "amount"]);
        let r = s
            .send(get(&pat, "/api/lineage/columns/files.sales/region"))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
        // An admin sees the whole path.
        let r = s
            .send(get(&admin, "/api/lineage/columns/files.sales/amount"))
            .await;
        assert_eq!(r.json()["downstream"][0]["asset"], "by_region");
    }

    #[tokio::test]
    async fn unknown_assets_and_columns_are_named() {
        let s = Served::new().await;
        let r = s.get("/api/lineage/columns/by_regoin", "").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert!(r.text().contains("by_region"), "{}", r.text());
        let r = s.get("/api/lineage/columns/by_region/revenu", "").await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let err = r.json()["error"].as_str().unwrap().to_string();
        assert!(
            err.contains("`revenu`") && err.contains("region, revenue"),
            "{err}"
        );
    }
}
