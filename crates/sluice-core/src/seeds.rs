//! Seeds (`seeds/**/*.csv`): small reference tables kept in the project and loaded as models.
//!
//! A seed is a model with `materialized: seed` whose "SQL" is empty: the seed materialization in
//! `sluice-transform` reads the CSV (types inferred, `column_types` overrides) and publishes it as a table.

use std::path::{Path, PathBuf};

use crate::error::ConfigError;
use crate::model::{ModelFile, ModelLayer, ModelProperties};
use crate::source::is_valid_identifier;

/// Every `*.csv` under `dirs` as a seed model in `layer`, sorted by path.
pub fn load_seeds(
    dirs: &[PathBuf],
    layer: ModelLayer,
    errors: &mut Vec<ConfigError>,
) -> Vec<ModelFile> {
    let mut files = Vec::new();
    for dir in dirs {
        collect_csv(dir, &mut files, errors);
    }
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !is_valid_identifier(&name) {
            errors.push(ConfigError::Invalid {
                path: path.clone(),
                field: "file name".into(),
                message: format!("`{name}` is not a valid seed name (letters, digits, _)"),
            });
            continue;
        }
        out.push(seed_model(name, layer, path));
    }
    out
}

/// A seed model for one CSV file.
pub fn seed_model(name: String, layer: ModelLayer, path: PathBuf) -> ModelFile {
    let mut properties = ModelProperties::default();
    properties.config.insert(
        "materialized".into(),
        serde_json::Value::String("seed".into()),
    );
    ModelFile {
        name,
        layer,
        path,
        sql: String::new(),
        properties,
    }
}

fn collect_csv(dir: &Path, out: &mut Vec<PathBuf>, errors: &mut Vec<ConfigError>) {
    if !dir.is_dir() {
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(source) => {
            errors.push(ConfigError::Io {
                path: dir.to_path_buf(),
                source,
            });
            return;
        }
    };
    for entry in entries.flatten() {
        let p = entry.path();
        if p.is_dir() {
            collect_csv(&p, out, errors);
        } else if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
            out.push(p);
        }
    }
}
