//! Phase 6 of [`super::load`]: each resource's config (`dbt_project.yml` < properties file), tags,
//! descriptions (`doc()` rendered), layer and checks, settled into a [`ModelFile`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value as Json};
use sluice_core::error::Position;
use sluice_core::model::{CheckCollector, ModelFile, ModelProperties};
use sluice_core::seeds::seed_model;
use sluice_core::{CheckSpec, ConfigError, ModelLayer};

use super::props::Properties;
use super::{Kind, Loader, Resource};
use crate::checks::collect_checks;
use crate::config_tree::{as_list, merge, resolve};
use crate::docs::DocsBlocks;
use crate::files::folders;
use crate::layers::LayerMap;
use crate::properties::Described;
use crate::unsupported::Unsupported;

/// Config keys Sluice reads elsewhere or ignores: the layer is already applied. (`schema`,
/// `database`, `alias` and `persist_docs` stay, as written, for `config.` selectors and for the
/// manifest, where `state:modified.relation` and `.persisted_descriptions` compare them; the table
/// is still named by its layer.)
const SETTLED_KEYS: &[&str] = &["layer", "docs", "meta", "pre_hook", "post_hook"];

impl Loader {
    /// Every resource as a model (sorted by name), and the checks of their properties.
    pub(super) fn settle(
        &mut self,
        resources: Vec<Resource>,
        docs: &DocsBlocks,
        layers: &LayerMap,
        props: &Properties,
    ) -> (Vec<ModelFile>, Vec<CheckSpec>) {
        let mut models = Vec::new();
        let mut checks = CheckCollector::default();
        let mut names: BTreeMap<String, PathBuf> = BTreeMap::new();
        for r in resources {
            if let Some(first) = names.get(&r.name) {
                self.errors.push(ConfigError::Duplicate {
                    kind: "model",
                    name: r.name.clone(),
                    first: first.clone(),
                    second: r.path.clone(),
                });
                continue;
            }
            names.insert(r.name.clone(), r.path.clone());
            models.push(self.settle_one(r, docs, layers, props, &mut checks));
        }
        models.sort_by(|a, b| a.name.cmp(&b.name));
        (models, checks.into_checks())
    }

    fn settle_one(
        &mut self,
        r: Resource,
        docs: &DocsBlocks,
        layers: &LayerMap,
        props_files: &Properties,
        checks: &mut CheckCollector,
    ) -> ModelFile {
        let mut described = r
            .properties
            .unwrap_or_else(|| Described::unplaced(ModelProperties::default()));
        described.props.name = r.name.clone();
        let props_path = described
            .props
            .path
            .clone()
            .unwrap_or_else(|| r.path.clone());
        // dbt_project.yml < properties file (config() in the SQL wins at compile time).
        let mut config = r.config;
        let mut places: BTreeMap<String, (PathBuf, Position)> = r
            .config_places
            .into_iter()
            .map(|(k, p)| (k, (self.file_path.clone(), p)))
            .collect();
        for (k, p) in &described.config {
            places.insert(k.clone(), (props_path.clone(), *p));
        }
        let props = &mut described.props;
        for (k, v) in std::mem::take(&mut props.config) {
            merge(&mut config, &k, v);
        }
        let mut tags = config
            .remove("tags")
            .map(|t| as_list(&t))
            .unwrap_or_default();
        for t in &props.tags {
            if !tags.contains(t) {
                tags.push(t.clone());
            }
        }
        props.tags = tags;
        self.report_config(&r.path, &config, &places);
        self.render_descriptions(&mut described.props, &props_path, r.kind, &r.name, docs);
        let layer = layer_of(
            layers,
            r.kind,
            &config,
            r.sql_schema.as_deref(),
            r.first_folder.as_deref(),
        );
        for key in SETTLED_KEYS {
            config.remove(*key);
        }
        let test_defaults = {
            let mut tree_path = vec![self.dbt.name.clone()];
            tree_path.extend(
                props_files
                    .dirs
                    .iter()
                    .map(|d| self.root.join(d))
                    .find(|d| props_path.starts_with(d))
                    .map(|base| folders(&base, &props_path))
                    .unwrap_or_default(),
            );
            resolve(&self.dbt.data_tests, &tree_path)
        };
        collect_checks(
            &described,
            &props_path,
            &test_defaults,
            checks,
            &mut self.errors,
            &mut self.unsupported,
        );
        let mut props = described.props;
        props.config = config;
        let mut model = if r.kind == Kind::Seed {
            seed_model(r.name.clone(), layer, r.path.clone())
        } else {
            ModelFile {
                name: r.name.clone(),
                layer,
                path: r.path.clone(),
                sql: r.sql,
                properties: ModelProperties::default(),
            }
        };
        let seed_cfg = std::mem::take(&mut model.properties.config);
        for (k, v) in seed_cfg {
            props.config.entry(k).or_insert(v);
        }
        model.properties = props;
        model
    }

    /// Hooks and materializations Sluice does not run, reported where they are set (the key in
    /// `dbt_project.yml` or the properties file; else the resource's file).
    fn report_config(
        &mut self,
        path: &Path,
        config: &Map<String, Json>,
        places: &BTreeMap<String, (PathBuf, Position)>,
    ) {
        let at = |key: &str, feature: String| match places.get(key) {
            Some((file, pos)) => Unsupported {
                path: file.clone(),
                pos: Some(*pos),
                feature,
            },
            None => Unsupported {
                path: path.to_path_buf(),
                pos: None,
                feature,
            },
        };
        for key in ["pre_hook", "post_hook"] {
            if config
                .get(key)
                .is_some_and(|v| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()))
            {
                let feature = format!("`{}` (hooks run warehouse SQL)", key.replace('_', "-"));
                self.unsupported.push(at(key, feature));
            }
        }
        if let Some(m) = config.get("materialized").and_then(Json::as_str)
            && !sluice_transform::materialize::dbt_accepts(m)
        {
            let feature = format!("materialization `{m}`");
            self.unsupported.push(at("materialized", feature));
        }
    }

    /// Renders `doc()` in the description of the resource and of each column.
    fn render_descriptions(
        &mut self,
        props: &mut ModelProperties,
        props_path: &Path,
        kind: Kind,
        name: &str,
        docs: &DocsBlocks,
    ) {
        if let Some(d) = &props.description {
            match docs.render(d) {
                Ok(t) => props.description = Some(t),
                Err(message) => self.errors.push(ConfigError::Invalid {
                    path: props_path.to_path_buf(),
                    field: format!("{}s[name={}].description", kind.as_str(), name),
                    message,
                }),
            }
        }
        for c in props.columns.iter_mut() {
            if let Some(d) = &c.description {
                match docs.render(d) {
                    Ok(t) => c.description = Some(t),
                    Err(message) => self.errors.push(ConfigError::Invalid {
                        path: props_path.to_path_buf(),
                        field: format!(
                            "{}s[name={}].columns[{}].description",
                            kind.as_str(),
                            name,
                            c.name
                        ),
                        message,
                    }),
                }
            }
        }
    }
}

/// A model's layer: `layer:` config, else its schema, else its first folder (seeds and snapshots
/// only by config).
fn layer_of(
    layers: &LayerMap,
    kind: Kind,
    config: &Map<String, Json>,
    sql_schema: Option<&str>,
    first_folder: Option<&str>,
) -> ModelLayer {
    let layer = config.get("layer").and_then(Json::as_str);
    let schema = config.get("schema").and_then(Json::as_str);
    match kind {
        Kind::Model => layers.layer_of(layer, sql_schema.or(schema), first_folder),
        Kind::Seed | Kind::Snapshot => layers.layer_of(layer, schema, None),
    }
}
