//! Turning a dbt project folder into a Sluice [`Project`]: models, seeds and snapshots as models,
//! schema.yml tests as checks, macros, docs, the layer of each model, the adapter's SQL dialect, and
//! every unsupported use.
//!
//! [`load`] runs the phases in order, each collecting its problems into one [`Loader`] so that they
//! are all reported together:
//!
//! 1. the project file (`dbt_project.yml`: paths, vars, layers, project hooks) — [`Loader::open`];
//! 2. the dialect (the `sluice_dialect` var or the profile's adapter) — [`crate::profile`];
//! 3. packages and `{% docs %}` blocks — here;
//! 4. models, seeds, snapshots, singular tests and macros — [`resources`];
//! 5. properties files and the connectors behind dbt sources — [`props`];
//! 6. settling each resource's config, descriptions, layer and checks into a model — [`settle`].

mod props;
mod resources;
mod settle;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value as Json};
use sluice_core::error::Position;
use sluice_core::yaml::{Value, read_text};
use sluice_core::{ConfigError, Project, ProjectConfig};
use sluice_transform::singular::SingularTest;

use crate::docs::DocsBlocks;
use crate::files::files_under;
use crate::layers::LayerMap;
use crate::project_file::DbtProjectFile;
use crate::properties::Described;
use crate::unsupported::{Unsupported, scan_packages};
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
    /// The SQL dialect the models are planned in, and where it came from.
    pub dialect: crate::profile::DialectSource,
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
    /// Where in `dbt_project.yml` each of those configs was set.
    config_places: BTreeMap<String, Position>,
    /// `schema='…'` in the SQL's `config()`.
    sql_schema: Option<String>,
    /// First folder under its resource path.
    first_folder: Option<String>,
    properties: Option<Described>,
}

/// The state shared by the phases of [`load`].
struct Loader {
    root: PathBuf,
    /// `dbt_project.yml`.
    file_path: PathBuf,
    dbt: DbtProjectFile,
    errors: Vec<ConfigError>,
    unsupported: Vec<Unsupported>,
    /// Package namespaces (from `packages.yml` / `dependencies.yml`) recognized in the SQL.
    packages: BTreeSet<String>,
    /// Every model, snapshot, test and macro text read so far: a finding inside a macro counts only
    /// when that macro is called somewhere.
    sql_texts: Vec<String>,
}

/// What the command line adds to a load.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `--target`: the profile output to use (its adapter sets the dialect; `target.*` in Jinja shows
    /// it). Default: `sluice.yml`'s `target:`, else the profile's own `target:`.
    pub target: Option<String>,
}

/// Loads the dbt project in `dir`, collecting every problem and every unsupported use.
pub fn load(dir: &Path) -> Result<DbtProject, DbtErrors> {
    load_with(dir, &LoadOptions::default())
}

/// [`load`] with the command line's options.
pub fn load_with(dir: &Path, options: &LoadOptions) -> Result<DbtProject, DbtErrors> {
    let mut l = Loader::open(dir)?;
    let sluice_yml = l.sluice_yml();
    let target = options.target.clone().or_else(|| {
        sluice_yml
            .as_ref()
            .and_then(|c| c.target.clone())
            .filter(|t| !t.is_empty())
    });
    let vars = l.dbt.flat_vars();
    let layers = l.layers(&vars);
    l.project_hooks();
    let dialect =
        match crate::profile::dialect(&l.root, &l.file_path, &l.dbt, &vars, target.as_deref()) {
            Ok(d) => d,
            Err(e) => {
                l.errors.push(e);
                crate::profile::DialectSource::default()
            }
        };
    l.packages();
    let docs = l.docs_blocks();
    let mut resources = l.models();
    resources.extend(l.seeds());
    resources.extend(l.snapshots());
    let singular_tests = l.singular_tests();
    let macros = l.macros();
    let props = l.properties(&mut resources);
    let sources = l.connectors(&props.dbt_sources);
    let (models, checks) = l.settle(resources, &docs, &layers, &props);
    let Loader {
        root,
        file_path,
        dbt,
        errors,
        mut unsupported,
        ..
    } = l;
    if !errors.is_empty() {
        return Err(DbtErrors(
            errors
                .into_iter()
                .map(DbtError::Config)
                .chain(unsupported.into_iter().map(DbtError::Unsupported))
                .collect(),
        ));
    }
    let mut config: ProjectConfig = serde_json::from_value(serde_json::json!({
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
    let profile_dialect = dialect
        .dialect
        .map(|d| sluice_core::yaml::Spanned::unplaced(d.as_str().to_string()));
    // A sluice.yml beside dbt_project.yml brings Sluice's settings (lake, state, serve, targets, …);
    // the name stays dbt's, and its vars win over dbt_project.yml's.
    if let Some(mut yml) = sluice_yml {
        yml.name = std::mem::take(&mut config.name);
        let mut merged = std::mem::take(&mut config.vars);
        merged.extend(std::mem::take(&mut yml.vars));
        yml.vars = merged;
        config = yml;
    }
    config.dialect = config.dialect.take().or(profile_dialect);
    if let Some(t) = &dialect.target {
        config
            .vars
            .insert("sluice_target".into(), t.name.clone().into());
        config
            .vars
            .insert(TARGET_CONTEXT_VAR.into(), Json::Object(t.context.clone()));
    }
    unsupported.sort();
    unsupported.dedup();
    tracing::debug!(
        project = %dbt.name,
        models = models.len(),
        checks = checks.len(),
        singular_tests = singular_tests.len(),
        macros = macros.len(),
        unsupported = unsupported.len(),
        dialect = ?dialect.dialect,
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
            access: None,
        },
        singular_tests,
        unsupported,
        docs_blocks: docs.len(),
        dialect,
    })
}

/// The var that carries the profile output's `target` object to Jinja.
pub const TARGET_CONTEXT_VAR: &str = sluice_transform::TARGET_CONTEXT_VAR;

impl Loader {
    /// `sluice.yml` beside `dbt_project.yml`, when there is one.
    fn sluice_yml(&mut self) -> Option<ProjectConfig> {
        let path = self.root.join("sluice.yml");
        if !path.is_file() {
            return None;
        }
        match read_text(&path)
            .map_err(|e| vec![e])
            .and_then(|t| sluice_core::config::load_project_config(&path, &t))
        {
            Ok(c) => Some(c),
            Err(errors) => {
                self.errors.extend(errors);
                None
            }
        }
    }

    /// Reads `dbt_project.yml`; without it nothing else can be read, so its problems end the load.
    fn open(dir: &Path) -> Result<Loader, DbtErrors> {
        let root = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        let file_path = root.join("dbt_project.yml");
        let text = read_text(&file_path).map_err(|e| DbtErrors(vec![DbtError::Config(e)]))?;
        let dbt = DbtProjectFile::load(&file_path, &text)
            .map_err(|e| DbtErrors(e.into_iter().map(DbtError::Config).collect()))?;
        Ok(Loader {
            root,
            file_path,
            dbt,
            errors: Vec::new(),
            unsupported: Vec::new(),
            packages: BTreeSet::new(),
            sql_texts: Vec::new(),
        })
    }

    /// The schema → layer map from `vars.sluice_layers`.
    fn layers(&mut self, vars: &std::collections::BTreeMap<String, Json>) -> LayerMap {
        let (layers, bad_layers) = LayerMap::new(vars);
        for b in bad_layers {
            self.errors.push(ConfigError::Invalid {
                path: self.file_path.clone(),
                field: "vars.sluice_layers".into(),
                message: format!("`{b}`: a layer is silver or gold"),
            });
        }
        layers
    }

    /// Project hooks run warehouse SQL: reported.
    fn project_hooks(&mut self) {
        for key in ["on-run-start", "on-run-end", "dispatch"] {
            let Some(entry) = self.dbt.entry(key) else {
                continue;
            };
            let empty = match &entry.node.value {
                Value::Null => true,
                Value::Seq(items) => items.is_empty(),
                _ => false,
            };
            if !empty {
                self.unsupported.push(Unsupported {
                    path: self.file_path.clone(),
                    pos: Some(entry.key_pos),
                    feature: format!("`{key}` (project hooks)"),
                });
            }
        }
    }

    /// Packages: reported, and their namespaces recognized in the SQL.
    fn packages(&mut self) {
        for name in ["packages.yml", "dependencies.yml"] {
            let p = self.root.join(name);
            let Ok(t) = std::fs::read_to_string(&p) else {
                continue;
            };
            match scan_packages(&p, &t) {
                Ok((names, found)) => {
                    self.packages.extend(names);
                    self.unsupported.extend(found);
                }
                Err(e) => self.errors.push(e),
            }
        }
    }

    /// `{% docs %}` blocks of every docs path.
    fn docs_blocks(&mut self) -> DocsBlocks {
        let mut docs = DocsBlocks::default();
        let mut seen_md = BTreeSet::new();
        for (_, p) in files_under(&self.root, &self.dbt.docs_paths(), "md") {
            if !seen_md.insert(p.clone()) {
                continue;
            }
            if let Ok(t) = std::fs::read_to_string(&p) {
                for d in docs.add_file(&p, &t) {
                    self.errors.push(ConfigError::Invalid {
                        path: p.clone(),
                        field: format!("docs {d}"),
                        message: "a docs block of this name is defined twice".into(),
                    });
                }
            }
        }
        docs
    }

    /// `[project, folder…, name]`: where a resource sits in the config trees.
    fn tree_path(&self, dirs: &[String], name: &str) -> Vec<String> {
        let mut tree_path = vec![self.dbt.name.clone()];
        tree_path.extend(dirs.iter().cloned());
        tree_path.push(name.to_string());
        tree_path
    }
}
