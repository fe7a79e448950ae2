//! Bring your dbt project: run a folder with `dbt_project.yml` as it is (a `sluice.yml` beside it adds
//! Sluice's settings).
//!
//! [`load`] reads `dbt_project.yml` (paths, `vars`, the `models:` / `seeds:` / `snapshots:` config
//! trees), the models, seeds (CSV), snapshot blocks, macros, `{% docs %}` blocks, properties files
//! (descriptions with `doc()`, generic tests with their `config`) and singular tests, and turns them into
//! the same [`sluice_core::Project`] a native project loads into: models map to lake layers by schema or
//! folder ([`layers`]), and everything the project uses that Sluice does not run is listed with its file
//! and line ([`unsupported`]). [`compile`] then compiles it like any project and attaches the singular
//! tests, so dbt models share the graph, state, lineage and UI of native ones.
//!
//! ```no_run
//! let dbt = sluice_dbt::load(std::path::Path::new("jaffle_shop")).unwrap();
//! let compiled = sluice_dbt::compile(dbt).unwrap();
//! assert!(compiled.models.contains_key("customers"));
//! ```

pub mod bench;
mod checks;
pub mod config_tree;
pub mod docs;
mod files;
pub mod layers;
pub mod load;
pub mod profile;
pub mod project_file;
pub mod properties;
pub mod snapshots;
pub mod target;
pub mod unsupported;

use std::path::Path;
use std::sync::Arc;

use sluice_core::ConfigError;
use sluice_transform::{CompiledProject, TransformError};

pub use load::{DbtProject, LoadOptions, load, load_with};
pub use unsupported::Unsupported;

/// One problem of a dbt project.
#[derive(Debug, thiserror::Error)]
pub enum DbtError {
    /// A file is malformed or a value is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The project uses something Sluice does not run.
    #[error("{0}")]
    Unsupported(Unsupported),
    /// Compiling (rendering, config, the graph) failed.
    #[error(transparent)]
    Transform(#[from] TransformError),
}

/// Every problem found, reported together.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
pub struct DbtErrors(pub Vec<DbtError>);

/// Whether `dir` is a dbt project Sluice should read as one: it has a `dbt_project.yml` (a `sluice.yml`
/// beside it adds Sluice's settings: lake, state, serve, `targets:`).
pub fn is_dbt_project(dir: &Path) -> bool {
    dir.join("dbt_project.yml").is_file()
}

/// Compiles a loaded dbt project; unsupported uses and compile errors are reported together (template
/// errors in files that already have an unsupported finding are left out: they are its consequence).
pub fn compile(dbt: DbtProject) -> Result<CompiledProject, DbtErrors> {
    let DbtProject {
        project,
        singular_tests,
        unsupported,
        ..
    } = dbt;
    let flagged = Flagged::new(&unsupported);
    let mut errors: Vec<DbtError> = unsupported.into_iter().map(DbtError::Unsupported).collect();
    match sluice_transform::compile(Arc::new(project)) {
        Ok(mut compiled) => {
            errors.extend(
                sluice_transform::singular::attach_singular_tests(&mut compiled, &singular_tests)
                    .into_iter()
                    .filter(|e| !is_consequence(e, &flagged))
                    .map(DbtError::Transform),
            );
            if errors.is_empty() {
                return Ok(compiled);
            }
        }
        Err(es) => errors.extend(
            es.into_iter()
                .filter(|e| !is_consequence(e, &flagged))
                .map(DbtError::Transform),
        ),
    }
    Err(DbtErrors(errors))
}

fn is_consequence(e: &TransformError, flagged: &Flagged) -> bool {
    match e {
        TransformError::Template { path, .. } => flagged.files.contains(path),
        TransformError::Graph(sluice_core::GraphError::UnknownRef {
            kind: "source",
            target,
            ..
        }) => flagged.sources.contains(target),
        _ => false,
    }
}

/// Files with an unsupported finding, and dbt sources reported as having no connector.
struct Flagged {
    files: std::collections::BTreeSet<std::path::PathBuf>,
    sources: std::collections::BTreeSet<String>,
}

impl Flagged {
    fn new(unsupported: &[Unsupported]) -> Flagged {
        Flagged {
            files: unsupported.iter().map(|u| u.path.clone()).collect(),
            sources: unsupported
                .iter()
                .filter_map(|u| {
                    u.feature
                        .strip_prefix("dbt source `")
                        .and_then(|r| r.split('`').next())
                        .map(str::to_string)
                })
                .collect(),
        }
    }
}
