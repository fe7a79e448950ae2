//! Loading a project folder: `sluice.yml`, `sources/`, `models/`, `dashboards/`.
//!
//! Loading collects every error it finds (a broken project is reported in one pass, not one error per
//! attempt) and checks only what can be checked without rendering SQL; the graph of `ref()`s is built by
//! `sluice-transform` after rendering.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::config::ProjectConfig;
use crate::dashboard::{Dashboard, load_dashboards};
use crate::error::ConfigError;
use crate::exports::{ExportDecl, load_exports_partial};
use crate::model::{CheckSpec, ModelFile, ModelLayer, ModelProperties, PropertiesFile};
use crate::source::{SourceDecl, is_valid_identifier};
use crate::state_location::StateLocation;
use crate::yaml::read_text;

/// A loaded project.
#[derive(Debug, Clone)]
pub struct Project {
    /// The project folder (absolute).
    pub root: PathBuf,
    /// `sluice.yml`.
    pub config: ProjectConfig,
    /// `sources/*.yml`, sorted by name.
    pub sources: Vec<SourceDecl>,
    /// `models/**/*.sql`, sorted by name.
    pub models: Vec<ModelFile>,
    /// Every check declared in properties files.
    pub checks: Vec<CheckSpec>,
    /// `dashboards/*.yml`, sorted by name.
    pub dashboards: Vec<Dashboard>,
    /// `exports/*.yml` (reverse ETL), disabled ones included (see [`ExportDecl::enabled`]).
    pub exports: Vec<ExportDecl>,
    /// `macros/**/*.sql`: Jinja macros every model can call.
    pub macros: Vec<crate::macros::MacroFile>,
    /// `access.yml`: roles, grants, masks and row filters (None: the built-in roles only).
    pub access: Option<crate::access::AccessConfig>,
}

/// Every error found while loading a project.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
pub struct ProjectErrors(pub Vec<ConfigError>);

/// A project as far as it loaded, with every problem found: what `sluice validate` checks in one
/// pass (the files that loaded are checked further, e.g. their connectors, beside the problems of
/// the files that did not).
#[derive(Debug)]
pub struct PartialProject {
    /// The project made of every file that loaded; `None` when `sluice.yml` itself did not.
    pub project: Option<Project>,
    /// The sources that loaded (also when `project` is `None`).
    pub sources: Vec<SourceDecl>,
    /// Every export file whose shared fields could be read, also those with wrong values (their
    /// problems are in `errors`), for their sinks to be checked.
    pub exports: Vec<ExportDecl>,
    /// The files under `sources/` that did not load (their sources are missing above).
    pub failed_sources: Vec<PathBuf>,
    /// Every problem found.
    pub errors: Vec<ConfigError>,
}

impl Project {
    /// Loads the project in `dir`.
    pub fn load(dir: &Path) -> Result<Project, ProjectErrors> {
        let partial = Project::load_partial(dir)?;
        match partial.project {
            Some(project) if partial.errors.is_empty() => Ok(project),
            _ => Err(ProjectErrors(partial.errors)),
        }
    }

    /// Loads what can be loaded of the project in `dir`, collecting every problem instead of
    /// stopping; an error only when `dir` is not a project at all.
    pub fn load_partial(dir: &Path) -> Result<PartialProject, ProjectErrors> {
        let root = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        let mut errors = Vec::new();
        let config_path = root.join("sluice.yml");
        if !config_path.is_file() {
            return Err(ProjectErrors(vec![ConfigError::NotAProject(root)]));
        }
        let config = match read_text(&config_path)
            .map_err(|e| vec![e])
            .and_then(|t| crate::config::load_project_config(&config_path, &t))
        {
            Ok(c) => Some(c),
            Err(mut e) => {
                errors.append(&mut e);
                None
            }
        };
        let sources = load_sources(&root.join("sources"), &mut errors);
        let failed_sources: Vec<PathBuf> = errors
            .iter()
            .filter_map(ConfigError::file)
            .filter(|p| p.starts_with(root.join("sources")))
            .map(Path::to_path_buf)
            .collect();
        // Properties files are parsed while the model files are read: the two halves of a large
        // project's load take about as long each.
        let models_dir = root.join("models");
        let (properties, mut models) = std::thread::scope(|s| {
            let properties = s.spawn(|| {
                let mut errors = Vec::new();
                (load_properties(&models_dir, &mut errors), errors)
            });
            let mut model_errors = Vec::new();
            let models = load_models(&models_dir, &mut model_errors);
            let (properties, property_errors) = properties
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            errors.extend(property_errors);
            errors.extend(model_errors);
            (properties, models)
        });
        // Seeds are models (materialized `seed`) in the silver layer; a properties file may describe them.
        let seeds =
            crate::seeds::load_seeds(&[root.join("seeds")], ModelLayer::Silver, &mut errors);
        for seed in seeds {
            match models.iter().find(|m| m.name == seed.name) {
                Some(m) => errors.push(ConfigError::Duplicate {
                    kind: "model",
                    name: seed.name.clone(),
                    first: m.path.clone(),
                    second: seed.path,
                }),
                None => models.push(seed),
            }
        }
        models.sort_by(|a, b| a.name.cmp(&b.name));
        let macros = crate::macros::load_macros(&[root.join("macros")], &mut errors);
        let mut checks = crate::model::CheckCollector::default();
        let mut described: BTreeMap<String, PathBuf> = BTreeMap::new();
        for (name, props) in properties {
            let props_path = props.path.clone().unwrap_or_default();
            let found = models.binary_search_by(|m| m.name.as_str().cmp(name.as_str()));
            let Some(model) = found.ok().and_then(|i| models.get_mut(i)) else {
                let suggestion =
                    crate::graph::suggest(&name, models.iter().map(|m| m.name.as_str()));
                errors.push(ConfigError::Invalid {
                    path: props_path,
                    field: format!("models[name={name}]"),
                    message: format!(
                        "describes a model that has no SQL file{}",
                        suggestion
                            .map(|s| format!(" (did you mean `{s}`?)"))
                            .unwrap_or_default()
                    ),
                });
                continue;
            };
            described.insert(name.clone(), props_path.clone());
            collect_checks(&props, &props_path, &mut checks, &mut errors);
            model.properties = props;
        }
        let dashboards = load_dashboards(
            &root.join("dashboards"),
            &asset_names(&models, &sources),
            &mut errors,
        );
        let (exports, flawed_exports) =
            load_exports_partial(&root.join("exports"), &sources, &models, &mut errors);
        let all_exports: Vec<ExportDecl> = exports.iter().chain(&flawed_exports).cloned().collect();
        let access = match crate::access::load_access(
            &root,
            &crate::access::project_tables(&models, &sources),
        ) {
            Ok(a) => a,
            Err(mut e) => {
                errors.append(&mut e);
                None
            }
        };
        let project = config.map(|config| Project {
            root,
            config,
            sources: sources.clone(),
            models,
            checks: checks.into_checks(),
            dashboards,
            exports,
            macros,
            access,
        });
        Ok(PartialProject {
            project,
            sources,
            exports: all_exports,
            failed_sources,
            errors,
        })
    }

    /// Resolves a path from a project file relative to the project folder.
    pub fn resolve_path(&self, p: &str) -> PathBuf {
        let path = Path::new(p);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.root.join(path)
        }
    }

    /// The lake location: an absolute folder path or a URL.
    pub fn lake_location(&self) -> String {
        let lake = &self.config.lake;
        if lake.contains("://") {
            lake.clone()
        } else {
            self.resolve_path(lake).to_string_lossy().into_owned()
        }
    }

    /// The state database: a SQLite file (resolved against the project folder) or a PostgreSQL
    /// URL. `state:` is told apart before any path resolution; the error names `sluice.yml`.
    pub fn state_location(&self) -> Result<StateLocation, ConfigError> {
        StateLocation::parse(&self.config.state, &self.root).map_err(|message| {
            ConfigError::Invalid {
                path: self.root.join("sluice.yml"),
                field: "state".into(),
                message,
            }
        })
    }

    /// A model by name.
    pub fn model(&self, name: &str) -> Option<&ModelFile> {
        // `models` is sorted by name (see the field).
        let i = self
            .models
            .binary_search_by(|m| m.name.as_str().cmp(name))
            .ok()?;
        self.models.get(i)
    }

    /// A source by name.
    pub fn source(&self, name: &str) -> Option<&SourceDecl> {
        self.sources.iter().find(|s| s.name == name)
    }

    /// An export by name.
    pub fn export(&self, name: &str) -> Option<&ExportDecl> {
        self.exports.iter().find(|e| e.name == name)
    }

    /// The checks of one model.
    pub fn checks_of<'a>(&'a self, model: &'a str) -> impl Iterator<Item = &'a CheckSpec> + 'a {
        self.checks.iter().filter(move |c| c.model == model)
    }
}

/// Every asset a dashboard may name: models, and source tables as `source.table`.
fn asset_names(models: &[ModelFile], sources: &[SourceDecl]) -> BTreeSet<String> {
    let tables = sources
        .iter()
        .flat_map(|s| s.tables.iter().map(move |t| s.asset_name(&t.name)));
    models
        .iter()
        .map(|m| m.name.clone())
        .chain(tables)
        .collect()
}

fn sorted_files(
    dir: &Path,
    ext: &[&str],
    recursive: bool,
    errors: &mut Vec<ConfigError>,
) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if !dir.is_dir() {
        return out;
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(source) => {
                errors.push(ConfigError::Io { path: d, source });
                continue;
            }
        };
        for entry in entries.flatten() {
            let p = entry.path();
            // The entry's type comes with the directory listing; only a symlink needs a `stat`.
            let is_dir = match entry.file_type() {
                Ok(t) if t.is_symlink() => p.is_dir(),
                Ok(t) => t.is_dir(),
                Err(_) => p.is_dir(),
            };
            if is_dir {
                if recursive {
                    stack.push(p);
                }
            } else if p
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| ext.contains(&e))
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn file_stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Loads `dir/*.yml` source declarations (also used for the `sources/` folder of a dbt project).
pub fn load_sources(dir: &Path, errors: &mut Vec<ConfigError>) -> Vec<SourceDecl> {
    let mut out: Vec<SourceDecl> = Vec::new();
    for path in sorted_files(dir, &["yml", "yaml"], false, errors) {
        let text = match read_text(&path) {
            Ok(t) => t,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let decl = match SourceDecl::parse(&path, &text) {
            Ok(d) => d,
            Err(mut e) => {
                errors.append(&mut e);
                continue;
            }
        };
        if let Some(prev) = out.iter().find(|s| s.name == decl.name) {
            errors.push(ConfigError::Duplicate {
                kind: "source",
                name: decl.name,
                first: prev.path.clone(),
                second: path,
            });
            continue;
        }
        out.push(decl);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Reads every file of `paths`, in order, on every core (file reads are most of a large project's
/// load).
fn read_texts(paths: Vec<PathBuf>) -> Vec<(PathBuf, Result<String, ConfigError>)> {
    let texts = crate::parallel::map_ordered(&paths, 256, |p| read_text(p));
    paths.into_iter().zip(texts).collect()
}

fn load_models(dir: &Path, errors: &mut Vec<ConfigError>) -> Vec<ModelFile> {
    let mut out: Vec<ModelFile> = Vec::new();
    let mut seen: std::collections::HashMap<String, PathBuf> = std::collections::HashMap::new();
    for (path, text) in read_texts(sorted_files(dir, &["sql"], true, errors)) {
        let rel = path.strip_prefix(dir).unwrap_or(&path);
        let top = rel
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some(layer) = ModelLayer::from_folder(&top) else {
            errors.push(ConfigError::Invalid {
                path: path.clone(),
                field: "folder".into(),
                message: "a model must live under models/silver/ or models/gold/ (the folder is its layer)"
                    .into(),
            });
            continue;
        };
        let name = file_stem(&path);
        if !is_valid_identifier(&name) {
            errors.push(ConfigError::Invalid {
                path: path.clone(),
                field: "file name".into(),
                message: format!("`{name}` is not a valid model name (letters, digits, _)"),
            });
            continue;
        }
        let sql = match text {
            Ok(s) => s,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if let Some(first) = seen.get(&name) {
            errors.push(ConfigError::Duplicate {
                kind: "model",
                name,
                first: first.clone(),
                second: path,
            });
            continue;
        }
        seen.insert(name.clone(), path.clone());
        out.push(ModelFile {
            name,
            layer,
            path,
            sql,
            properties: ModelProperties::default(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn load_properties(dir: &Path, errors: &mut Vec<ConfigError>) -> BTreeMap<String, ModelProperties> {
    let mut out: BTreeMap<String, ModelProperties> = BTreeMap::new();
    for path in sorted_files(dir, &["yml", "yaml"], true, errors) {
        let parsed = read_text(&path)
            .map_err(|e| vec![e])
            .and_then(|t| crate::yaml::load_typed::<PropertiesFile>(&path, &t));
        let file = match parsed {
            Ok(f) => f,
            Err(mut e) => {
                errors.append(&mut e);
                continue;
            }
        };
        for mut props in file.models {
            props.path = Some(path.clone());
            if let Some(prev) = out.get(&props.name) {
                errors.push(ConfigError::Duplicate {
                    kind: "model properties",
                    name: props.name.clone(),
                    first: prev.path.clone().unwrap_or_default(),
                    second: path.clone(),
                });
                continue;
            }
            out.insert(props.name.clone(), props);
        }
    }
    out
}

fn collect_checks(
    props: &ModelProperties,
    path: &Path,
    checks: &mut crate::model::CheckCollector,
    errors: &mut Vec<ConfigError>,
) {
    let mut push =
        |entry: &serde_yaml_ng::Value, column: Option<&str>, field: String| match CheckSpec::parse(
            entry,
            &props.name,
            column,
            path,
        ) {
            Ok(c) => checks.push(c),
            Err(message) => errors.push(ConfigError::Invalid {
                path: path.to_path_buf(),
                field,
                message,
            }),
        };
    for (i, t) in props.tests.iter().enumerate() {
        push(t, None, format!("models[{}].tests[{i}]", props.name));
    }
    for col in &props.columns {
        for (i, t) in col.tests.iter().enumerate() {
            push(
                t,
                Some(&col.name),
                format!("models[{}].columns[{}].tests[{i}]", props.name, col.name),
            );
        }
    }
    // `freshness:` with a `column` checks the newest value of that column (a check); without one it
    // is the asset's freshness SLA (time since its last new data), evaluated by sluice-monitor.
    let sla = props
        .freshness
        .as_ref()
        .filter(|f| f.get("column").is_none());
    if let Some(f) = props.freshness.as_ref().filter(|_| sla.is_none()) {
        let entry = serde_yaml_ng::Value::Mapping(
            [(serde_yaml_ng::Value::String("freshness".into()), f.clone())]
                .into_iter()
                .collect(),
        );
        push(&entry, None, format!("models[{}].freshness", props.name));
    }
    if let Some(Err(message)) = sla.map(crate::alerts::FreshnessSla::from_yaml) {
        errors.push(ConfigError::Invalid {
            path: path.to_path_buf(),
            field: format!("models[{}].freshness", props.name),
            message,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn loads_a_project() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "sluice.yml", "name: t\n");
        write(
            d.path(),
            "sources/app.yml",
            "kind: sqlite\nconnection: x.db\ntables:\n  - name: orders\n    mode: full\n",
        );
        write(d.path(), "models/silver/stg.sql", "select 1 as id");
        write(
            d.path(),
            "models/silver/schema.yml",
            "version: 2\nmodels:\n  - name: stg\n    columns:\n      - name: id\n        tests: [not_null, unique]\n",
        );
        let p = Project::load(d.path()).unwrap();
        assert_eq!(p.sources[0].name, "app");
        assert_eq!(p.sources[0].tables[0].name, "orders");
        assert_eq!(p.models[0].layer, ModelLayer::Silver);
        assert_eq!(p.checks.len(), 2);
        assert_eq!(p.config.lake, "lake");
    }

    #[test]
    fn collects_all_errors_with_locations() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "sluice.yml", "name: t\nlake: [unclosed\n");
        write(d.path(), "sources/bad.yml", "kind: sqlite\ntables: 5\n");
        write(d.path(), "models/bronze/x.sql", "select 1");
        write(
            d.path(),
            "models/gold/schema.yml",
            "models:\n  - name: nothere\n",
        );
        let err = Project::load(d.path()).unwrap_err();
        let text = err.to_string();
        assert_eq!(err.0.len(), 4, "{text}");
        assert!(text.contains("sluice.yml:2:"), "{text}");
        assert!(text.contains("bad.yml:2:"), "{text}");
        assert!(text.contains("models/silver/ or models/gold/"), "{text}");
        assert!(
            text.contains("describes a model that has no SQL file"),
            "{text}"
        );
    }

    #[test]
    fn missing_project_file() {
        let d = tempfile::tempdir().unwrap();
        let err = Project::load(d.path()).unwrap_err();
        assert!(err.to_string().contains("not a Sluice project"));
    }
}
