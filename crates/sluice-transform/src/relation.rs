//! How assets are named in SQL.
//!
//! The lake appears as schemas `bronze`, `silver`, `gold` and `quarantine`. Models keep their name
//! (`silver.stg_orders`); a source table `orders` of source `shop` is `bronze.shop__orders` (the double
//! underscore keeps `source`/`table` apart in one SQL identifier).

use sluice_core::ModelLayer;
use sluice_lake::{Layer, TableId};

/// The catalog every session uses.
pub const CATALOG: &str = "sluice";
/// The schema where staged (not yet published) model output is registered for checks.
pub const STAGING_SCHEMA: &str = "staging";

/// Quotes an identifier only when DataFusion would otherwise fold its case.
pub fn ident(name: &str) -> String {
    if name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// The SQL table name of a source table inside the `bronze` schema.
pub fn bronze_table_name(source: &str, table: &str) -> String {
    format!("{source}__{table}")
}

/// `bronze.<source>__<table>`.
pub fn source_relation(source: &str, table: &str) -> String {
    format!("bronze.{}", ident(&bronze_table_name(source, table)))
}

/// `<layer>.<model>`.
pub fn model_relation(layer: ModelLayer, model: &str) -> String {
    format!("{}.{}", layer.as_str(), ident(model))
}

/// The lake layer of a model layer.
pub fn lake_layer(layer: ModelLayer) -> Layer {
    match layer {
        ModelLayer::Silver => Layer::Silver,
        ModelLayer::Gold => Layer::Gold,
    }
}

/// The lake table of a model.
pub fn model_table(layer: ModelLayer, model: &str) -> TableId {
    TableId {
        layer: lake_layer(layer),
        name: model.to_string(),
    }
}

/// The (schema, table) under which a lake table is registered in SQL.
pub fn sql_name(id: &TableId) -> (String, String) {
    match id.layer {
        Layer::Bronze => {
            let (src, table) = id.name.split_once('/').unwrap_or(("", id.name.as_str()));
            ("bronze".into(), bronze_table_name(src, table))
        }
        Layer::Silver => ("silver".into(), id.name.clone()),
        Layer::Gold => ("gold".into(), id.name.clone()),
        Layer::Quarantine => ("quarantine".into(), id.name.replace(['.', '/'], "__")),
    }
}

/// The relation of a staged model output (visible only to its checks).
pub fn staged_relation(model: &str) -> String {
    format!("{STAGING_SCHEMA}.{}", ident(model))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(source_relation("shop", "orders"), "bronze.shop__orders");
        assert_eq!(model_relation(ModelLayer::Gold, "Mart"), "gold.\"Mart\"");
        let id = TableId::bronze("shop", "orders");
        assert_eq!(
            sql_name(&id),
            ("bronze".to_string(), "shop__orders".to_string())
        );
    }
}
