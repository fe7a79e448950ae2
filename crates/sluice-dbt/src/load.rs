//! Turning a dbt project folder into a Sluice [`Project`]: models, seeds and snapshots as models,
//! schema.yml tests as checks, macros, docs, the layer of each model, and every unsupported use.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value as Json};
use sluice_core::macros::{MacroFile, load_macros};
use sluice_core::model::{ModelFile, ModelProperties};
use sluice_core::project::load_sources;
use sluice_core::seeds::seed_model;
use sluice_core::yaml::read_text;
use sluice_core::{ConfigError, Project, ProjectConfig};
use sluice_transform::singular::SingularTest;

use crate::checks::collect_checks;
use crate::config_tree::{as_list, merge, resolve};
use crate::docs::DocsBlocks;
use crate::files::{files_under, folders, line_offset, macro_spans, schema_in_sql, stem};
use crate::layers::LayerMap;
use crate::project_file::DbtProjectFile;
use crate::properties::{IGNORED_SECTIONS, PropertiesFile};
use crate::snapshots::parse_snapshots;
use crate::unsupported::{Unsupported, find_line, scan_packages, scan_sql};
use crate::{DbtError, DbtErrors};

/// A loaded dbt project.
#[derive(Debug, Clone)]
pub struct DbtProject {
    /// The project as Sluice runs it.
    pub project: Project,
    /// `tests/**/*.sql`.
    pub singular_tests: Vec<SingularTest>,
    /// Every unsupported use found.
    pub unsupported: Vec<Unsupported>,
    /// How many `{% docs %}` blocks were read.
    pub docs_blocks: usize,
}

/// What kind of resource a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Model,
    Seed,
    Snapshot,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Model => "model",
            Kind::Seed => "seed",
            Kind::Snapshot => "snapshot",
        }
    }
}

/// A resource before its properties and layer are settled.
struct Resource {
    kind: Kind,
    name: String,
    path: PathBuf,
    sql: String,
    /// Config from `dbt_project.yml`.
    config: Map<String, Json>,
    /// `schema='…'` in the SQL's `config()`.
    sql_schema: Option<String>,
    /// First folder under its resource path.
    first_folder: Option<String>,
    properties: Option<ModelProperties>,
}

/// Loads the dbt project in `dir`, collecting every problem and every unsupported use.
pub fn load(dir: &Path) -> Result<DbtProject, DbtErrors> {
    let root = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut errors: Vec<ConfigError> = Vec::new();
    let mut unsupported: Vec<Unsupported> = Vec::new();
    let file_path = root.join("dbt_project.yml");
    let text = read_text(&file_path).map_err(|e| DbtErrors(vec![DbtError::Config(e)]))?;
    let dbt = DbtProjectFile::load(&file_path, &text)
        .map_err(|e| DbtErrors(vec![DbtError::Config(e)]))?;
    let vars = dbt.flat_vars();
    let (layers, bad_layers) = LayerMap::new(&vars);
    for b in bad_layers {
        errors.push(ConfigError::Invalid {
            path: file_path.clone(),
            field: "vars.sluice_layers".into(),
            message: format!("`{b}`: a layer is silver or gold"),
        });
    }
    for key in ["on-run-start", "on-run-end", "dispatch"] {
        if dbt
            .other
            .get(key)
            .is_some_and(|v| !v.is_null() && v.as_sequence().is_none_or(|s| !s.is_empty()))
        {
            unsupported.push(Unsupported {
                path: file_path.clone(),
                line: find_line(&text, key),
                feature: format!("`{key}` (project hooks)"),
            });
        }
    }

    // Packages: reported, and their namespaces recognized in the SQL.
    let mut packages = BTreeSet::new();
    for name in ["packages.yml", "dependencies.yml"] {
        let p = root.join(name);
        if let Ok(t) = std::fs::read_to_string(&p) {
            let (names, found) = scan_packages(&p, &t);
            packages.extend(names);
            unsupported.extend(found);
        }
    }

    // Docs blocks.
    let mut docs = DocsBlocks::default();
    let mut seen_md = BTreeSet::new();
    for (_, p) in files_under(&root, &dbt.docs_paths(), "md") {
        if !seen_md.insert(p.clone()) {
            continue;
        }
        if let Ok(t) = std::fs::read_to_string(&p) {
            for d in docs.add_file(&p, &t) {
                errors.push(ConfigError::Invalid {
                    path: p.clone(),
                    field: format!("docs {d}"),
                    message: "a docs block of this name is defined twice".into(),
                });
            }
        }
    }

    // Resources.
    let mut resources: Vec<Resource> = Vec::new();
    for (_, path) in files_under(&root, &dbt.model_paths, "py") {
        unsupported.push(Unsupported {
            path,
            line: None,
            feature: "Python models".into(),
        });
    }
    let mut all_sql_texts: Vec<String> = Vec::new();
    for (base, path) in files_under(&root, &dbt.model_paths, "sql") {
        let sql = match read_text(&path) {
            Ok(s) => s,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let name = stem(&path);
        let dirs = folders(&base, &path);
        let mut tree_path = vec![dbt.name.clone()];
        tree_path.extend(dirs.iter().cloned());
        tree_path.push(name.clone());
        unsupported.extend(scan_sql(&path, &sql, &packages));
        all_sql_texts.push(sql.clone());
        resources.push(Resource {
            kind: Kind::Model,
            sql_schema: schema_in_sql(&sql),
            first_folder: dirs.first().cloned(),
            config: resolve(&dbt.models, &tree_path),
            name,
            path,
            sql,
            properties: None,
        });
    }
    for (base, path) in files_under(&root, &dbt.seed_paths, "csv") {
        let name = stem(&path);
        let dirs = folders(&base, &path);
        let mut tree_path = vec![dbt.name.clone()];
        tree_path.extend(dirs.iter().cloned());
        tree_path.push(name.clone());
        let mut config = resolve(&dbt.seeds, &tree_path);
        config.insert("materialized".into(), Json::String("seed".into()));
        resources.push(Resource {
            kind: Kind::Seed,
            sql_schema: None,
            first_folder: dirs.first().cloned(),
            config,
            name,
            path,
            sql: String::new(),
            properties: None,
        });
    }
    for (base, path) in files_under(&root, &dbt.snapshot_paths, "sql") {
        let text = match read_text(&path) {
            Ok(s) => s,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        unsupported.extend(scan_sql(&path, &text, &packages));
        all_sql_texts.push(text.clone());
        let blocks = match parse_snapshots(&path, &text) {
            Ok(b) => b,
            Err(message) => {
                errors.push(ConfigError::Invalid {
                    path: path.clone(),
                    field: "snapshot".into(),
                    message,
                });
                continue;
            }
        };
        let dirs = folders(&base, &path);
        for b in blocks {
            let mut tree_path = vec![dbt.name.clone()];
            tree_path.extend(dirs.iter().cloned());
            tree_path.push(b.name.clone());
            let mut config = resolve(&dbt.snapshots, &tree_path);
            config.insert("materialized".into(), Json::String("snapshot".into()));
            resources.push(Resource {
                kind: Kind::Snapshot,
                sql_schema: None,
                first_folder: Some("snapshots".into()),
                config,
                name: b.name,
                path: path.clone(),
                sql: b.sql,
                properties: None,
            });
        }
    }

    // Singular tests.
    let mut singular_tests = Vec::new();
    for (_, path) in files_under(&root, &dbt.test_paths, "sql") {
        let sql = match read_text(&path) {
            Ok(s) => s,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let found = scan_sql(&path, &sql, &packages);
        let generic = found.iter().any(|u| u.feature.contains("{% test %}"));
        unsupported.extend(found);
        if generic {
            continue;
        }
        all_sql_texts.push(sql.clone());
        singular_tests.push(SingularTest {
            name: stem(&path),
            path,
            sql,
        });
    }

    // Macros: a finding inside a macro counts only when that macro is called somewhere.
    let macro_dirs: Vec<PathBuf> = dbt.macro_paths.iter().map(|p| root.join(p)).collect();
    let macros: Vec<MacroFile> = load_macros(&macro_dirs, &mut errors);
    for (_, path) in files_under(&root, &dbt.macro_paths, "sql") {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let spans = macro_spans(&text);
        for u in scan_sql(&path, &text, &packages) {
            let offset = line_offset(&text, u.line.unwrap_or(1));
            let owner = spans
                .iter()
                .rev()
                .find(|(start, _)| *start <= offset)
                .map(|(_, name)| name.clone());
            let used = match &owner {
                Some(name) => {
                    let call = format!("{name}(");
                    all_sql_texts.iter().any(|t| t.contains(&call))
                        || macros
                            .iter()
                            .any(|m| m.text.contains(&call) && !m.names.contains(name))
                }
                None => true,
            };
            if used {
                unsupported.push(u);
            }
        }
        all_sql_texts.push(text);
    }

    // Properties files.
    let mut prop_dirs = dbt.model_paths.clone();
    prop_dirs.extend(dbt.seed_paths.iter().cloned());
    prop_dirs.extend(dbt.snapshot_paths.iter().cloned());
    let mut yml = files_under(&root, &prop_dirs, "yml");
    yml.extend(files_under(&root, &prop_dirs, "yaml"));
    let mut dbt_sources: Vec<(String, String, PathBuf, Option<usize>)> = Vec::new();
    let mut prop_texts: BTreeMap<PathBuf, String> = BTreeMap::new();
    for (_, path) in yml {
        let text = match read_text(&path) {
            Ok(t) => t,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let file: PropertiesFile = match crate::properties::load(&path, &text) {
            Ok(f) => f,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        for key in file.other.keys() {
            if key == "version" || IGNORED_SECTIONS.contains(&key.as_str()) {
                continue;
            }
            unsupported.push(Unsupported {
                path: path.clone(),
                line: find_line(&text, &format!("{key}:")),
                feature: format!("`{key}:` in properties files"),
            });
        }
        for s in &file.sources {
            for t in &s.tables {
                dbt_sources.push((
                    s.name.clone(),
                    t.name.clone(),
                    path.clone(),
                    find_line(&text, &format!("name: {}", t.name)),
                ));
            }
        }
        for (kind, entries) in [
            (Kind::Model, file.models),
            (Kind::Seed, file.seeds),
            (Kind::Snapshot, file.snapshots),
        ] {
            for props in entries {
                let Some(r) = resources
                    .iter_mut()
                    .find(|r| r.kind == kind && r.name == props.name)
                else {
                    errors.push(ConfigError::Invalid {
                        path: path.clone(),
                        field: format!("{}s[name={}]", kind.as_str(), props.name),
                        message: format!("describes a {} that does not exist", kind.as_str()),
                    });
                    continue;
                };
                if r.properties.is_some() {
                    errors.push(ConfigError::Invalid {
                        path: path.clone(),
                        field: format!("{}s[name={}]", kind.as_str(), props.name),
                        message: "is described twice".into(),
                    });
                    continue;
                }
                r.properties = Some(props);
            }
        }
        prop_texts.insert(path, text);
    }

    // Sluice connectors for dbt sources (`sources/*.yml` in the dbt project).
    let sources = load_sources(&root.join("sources"), &mut errors);
    for (src, table, path, line) in &dbt_sources {
        let landed = sources
            .iter()
            .any(|s| &s.name == src && s.tables.iter().any(|t| &t.name == table));
        if !landed {
            unsupported.push(Unsupported {
                path: path.clone(),
                line: *line,
                feature: format!(
                    "dbt source `{src}.{table}` has no Sluice connector (declare it in sources/{src}.yml, e.g. kind: files, or load it as a seed)"
                ),
            });
        }
    }

    // Settle config, descriptions, layers and checks.
    let mut models = Vec::new();
    let mut checks = sluice_core::model::CheckCollector::default();
    let mut names: BTreeMap<String, PathBuf> = BTreeMap::new();
    for r in resources {
        if let Some(first) = names.get(&r.name) {
            errors.push(ConfigError::Duplicate {
                kind: "model",
                name: r.name.clone(),
                first: first.clone(),
                second: r.path.clone(),
            });
            continue;
        }
        names.insert(r.name.clone(), r.path.clone());
        let mut props = r.properties.unwrap_or_default();
        props.name = r.name.clone();
        let props_path = props.path.clone().unwrap_or_else(|| r.path.clone());
        // dbt_project.yml < properties file (config() in the SQL wins at compile time).
        let mut config = r.config;
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
        for key in ["pre_hook", "post_hook"] {
            if config
                .get(key)
                .is_some_and(|v| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()))
            {
                unsupported.push(Unsupported {
                    path: r.path.clone(),
                    line: None,
                    feature: format!("`{}` (hooks run warehouse SQL)", key.replace('_', "-")),
                });
            }
        }
        if let Some(m) = config.get("materialized").and_then(Json::as_str)
            && !sluice_transform::materialize::dbt_accepts(m)
        {
            unsupported.push(Unsupported {
                path: r.path.clone(),
                line: None,
                feature: format!("materialization `{m}`"),
            });
        }
        if let Some(d) = &props.description {
            match docs.render(d) {
                Ok(t) => props.description = Some(t),
                Err(message) => errors.push(ConfigError::Invalid {
                    path: props_path.clone(),
                    field: format!("{}s[name={}].description", r.kind.as_str(), r.name),
                    message,
                }),
            }
        }
        for c in props.columns.iter_mut() {
            if let Some(d) = &c.description {
                match docs.render(d) {
                    Ok(t) => c.description = Some(t),
                    Err(message) => errors.push(ConfigError::Invalid {
                        path: props_path.clone(),
                        field: format!(
                            "{}s[name={}].columns[{}].description",
                            r.kind.as_str(),
                            r.name,
                            c.name
                        ),
                        message,
                    }),
                }
            }
        }
        let layer = match r.kind {
            Kind::Model => layers.layer_of(
                config.get("layer").and_then(Json::as_str),
                r.sql_schema
                    .as_deref()
                    .or(config.get("schema").and_then(Json::as_str)),
                r.first_folder.as_deref(),
            ),
            Kind::Seed | Kind::Snapshot => layers.layer_of(
                config.get("layer").and_then(Json::as_str),
                config.get("schema").and_then(Json::as_str),
                None,
            ),
        };
        // Sluice's config keys: the layer is already applied and the schema is the layer.
        for key in [
            "layer",
            "schema",
            "database",
            "alias",
            "docs",
            "persist_docs",
            "meta",
            "pre_hook",
            "post_hook",
        ] {
            config.remove(key);
        }
        let test_defaults = {
            let mut tree_path = vec![dbt.name.clone()];
            tree_path.extend(
                prop_dirs
                    .iter()
                    .map(|d| root.join(d))
                    .find(|d| props_path.starts_with(d))
                    .map(|base| folders(&base, &props_path))
                    .unwrap_or_default(),
            );
            resolve(&dbt.data_tests, &tree_path)
        };
        collect_checks(
            &props,
            &props_path,
            prop_texts.get(&props_path),
            &test_defaults,
            &mut checks,
            &mut errors,
            &mut unsupported,
        );
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
        models.push(model);
    }
    models.sort_by(|a, b| a.name.cmp(&b.name));

    if !errors.is_empty() {
        return Err(DbtErrors(
            errors
                .into_iter()
                .map(DbtError::Config)
                .chain(unsupported.into_iter().map(DbtError::Unsupported))
                .collect(),
        ));
    }
    let config: ProjectConfig = serde_json::from_value(serde_json::json!({
        "name": dbt.name,
        "vars": vars,
    }))
    .map_err(|e| {
        DbtErrors(vec![DbtError::Config(ConfigError::Invalid {
            path: file_path.clone(),
            field: "vars".into(),
            message: e.to_string(),
        })])
    })?;
    unsupported.sort();
    unsupported.dedup();
    let checks = checks.into_checks();
    tracing::debug!(
        project = %dbt.name,
        models = models.len(),
        checks = checks.len(),
        singular_tests = singular_tests.len(),
        macros = macros.len(),
        unsupported = unsupported.len(),
        "loaded a dbt project"
    );
    Ok(DbtProject {
        project: Project {
            root,
            config,
            sources,
            models,
            checks,
            dashboards: Vec::new(),
            exports: Vec::new(),
            macros,
        },
        singular_tests,
        unsupported,
        docs_blocks: docs.len(),
    })
}
