//! Which lake layer a dbt model lands in.
//!
//! A model's layer comes from, in order: its `layer` config (`+layer: gold`); its `schema` config; its
//! first folder under the model path. Schema and folder names map through the project variable
//! `sluice_layers` (`{staging: silver, marts: gold}` by default, plus `intermediate`/`int` → silver,
//! `mart`/`reporting` → gold, and the layer names themselves); anything unmapped is silver.

use std::collections::BTreeMap;

use sluice_core::ModelLayer;

/// Schema / folder name → layer.
#[derive(Debug, Clone)]
pub struct LayerMap(BTreeMap<String, ModelLayer>);

impl LayerMap {
    /// The defaults overridden by the `sluice_layers` variable; returns the names with a bad layer.
    pub fn new(vars: &BTreeMap<String, serde_json::Value>) -> (LayerMap, Vec<String>) {
        let mut map: BTreeMap<String, ModelLayer> = [
            ("staging", ModelLayer::Silver),
            ("stg", ModelLayer::Silver),
            ("intermediate", ModelLayer::Silver),
            ("int", ModelLayer::Silver),
            ("silver", ModelLayer::Silver),
            ("marts", ModelLayer::Gold),
            ("mart", ModelLayer::Gold),
            ("reporting", ModelLayer::Gold),
            ("gold", ModelLayer::Gold),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let mut bad = Vec::new();
        if let Some(serde_json::Value::Object(o)) = vars.get("sluice_layers") {
            for (k, v) in o {
                match v.as_str().and_then(ModelLayer::from_folder) {
                    Some(l) => {
                        map.insert(k.clone(), l);
                    }
                    None => bad.push(format!("{k}: {v}")),
                }
            }
        }
        (LayerMap(map), bad)
    }

    /// The layer of a model.
    pub fn layer_of(
        &self,
        layer_config: Option<&str>,
        schema: Option<&str>,
        first_folder: Option<&str>,
    ) -> ModelLayer {
        if let Some(l) = layer_config.and_then(ModelLayer::from_folder) {
            return l;
        }
        for name in [schema, first_folder].into_iter().flatten() {
            if let Some(l) = self.0.get(name) {
                return *l;
            }
        }
        ModelLayer::Silver
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let (m, bad) = LayerMap::new(&BTreeMap::new());
        assert!(bad.is_empty());
        assert_eq!(m.layer_of(None, None, Some("staging")), ModelLayer::Silver);
        assert_eq!(m.layer_of(None, None, Some("marts")), ModelLayer::Gold);
        assert_eq!(
            m.layer_of(None, Some("marts"), Some("staging")),
            ModelLayer::Gold
        );
        assert_eq!(
            m.layer_of(Some("gold"), None, Some("staging")),
            ModelLayer::Gold
        );
        assert_eq!(m.layer_of(None, None, Some("misc")), ModelLayer::Silver);
        let vars = [(
            "sluice_layers".to_string(),
            serde_json::json!({"core": "gold", "x": "bronze"}),
        )]
        .into_iter()
        .collect();
        let (m, bad) = LayerMap::new(&vars);
        assert_eq!(m.layer_of(None, None, Some("core")), ModelLayer::Gold);
        assert_eq!(bad, ["x: \"bronze\""]);
    }
}
