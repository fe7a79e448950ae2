//! Column lineage: `GET /api/lineage/columns/{name}` (each column's inputs and readers, one step each
//! way) and `GET /api/lineage/columns/{name}/{column}` (the whole upstream and downstream of one
//! column). Computed from the models' query plans ([`sluice_transform::lineage`]).

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};
use sluice_transform::lineage::project::{Edge, ProjectLineage};

use crate::app::AppState;
use crate::error::ApiError;

/// The columns of an asset: a model's as planned, a source table's as ingested (none before that).
async fn columns_of(s: &AppState, asset: &str, lineage: &ProjectLineage) -> Vec<String> {
    if let Some(a) = lineage.assets.get(asset) {
        return a.columns.iter().map(|c| c.name.clone()).collect();
    }
    let Ok(relation) = s.relation_of(asset) else {
        return Vec::new();
    };
    match s
        .engine
        .plan(&format!("SELECT * FROM {relation} LIMIT 0"))
        .await
    {
        Ok(df) => df
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// `GET /api/lineage/columns/{name}`.
pub async fn asset_columns(
    State(s): State<AppState>,
    Path(asset): Path<String>,
) -> Result<Json<Value>, ApiError> {
    s.relation_of(&asset)?;
    let lineage = ProjectLineage::compute(&s.engine, &s.compiled).await;
    let planned = lineage.assets.get(&asset);
    let columns: Vec<Value> = columns_of(&s, &asset, &lineage)
        .await
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
            json!({"name": name, "inputs": inputs, "readers": readers})
        })
        .collect();
    Ok(Json(json!({
        "asset": asset,
        "columns": columns,
        "dataset": planned.map(|a| a.dataset.clone()).unwrap_or_default(),
        "error": lineage.errors.get(&asset),
    })))
}

/// `GET /api/lineage/columns/{name}/{column}`.
pub async fn column(
    State(s): State<AppState>,
    Path((asset, column)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    s.relation_of(&asset)?;
    let lineage = ProjectLineage::compute(&s.engine, &s.compiled).await;
    let available = columns_of(&s, &asset, &lineage).await;
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
        "upstream": lineage.upstream(&asset, &column),
        "downstream": lineage.downstream(&asset, &column),
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
