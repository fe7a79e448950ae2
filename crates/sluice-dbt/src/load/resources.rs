//! Phase 4 of [`super::load`]: the models, seeds, snapshots, singular tests and macros.

use std::path::PathBuf;

use serde_json::Value as Json;
use sluice_core::ConfigError;
use sluice_core::macros::{MacroFile, load_macros};
use sluice_core::yaml::read_text;
use sluice_transform::singular::SingularTest;

use super::{Kind, Loader, Resource};
use crate::config_tree::resolve_placed;
use crate::files::{files_under, folders, line_offset, macro_spans, schema_in_sql, stem};
use crate::snapshots::parse_snapshots;
use crate::unsupported::{Unsupported, scan_sql};

impl Loader {
    /// `models/**/*.sql` (Python models are reported).
    pub(super) fn models(&mut self) -> Vec<Resource> {
        let mut resources = Vec::new();
        for (_, path) in files_under(&self.root, &self.dbt.model_paths, "py") {
            self.unsupported.push(Unsupported {
                path,
                pos: None,
                feature: "Python models".into(),
            });
        }
        for (base, path) in files_under(&self.root, &self.dbt.model_paths, "sql") {
            let sql = match read_text(&path) {
                Ok(s) => s,
                Err(e) => {
                    self.errors.push(e);
                    continue;
                }
            };
            let name = stem(&path);
            let dirs = folders(&base, &path);
            let tree_path = self.tree_path(&dirs, &name);
            self.unsupported
                .extend(scan_sql(&path, &sql, &self.packages));
            self.sql_texts.push(sql.clone());
            let (config, config_places) = resolve_placed(&self.dbt.models, &tree_path);
            resources.push(Resource {
                kind: Kind::Model,
                sql_schema: schema_in_sql(&sql),
                first_folder: dirs.first().cloned(),
                config,
                config_places,
                name,
                path,
                sql,
                properties: None,
            });
        }
        resources
    }

    /// `seeds/**/*.csv`.
    pub(super) fn seeds(&mut self) -> Vec<Resource> {
        let mut resources = Vec::new();
        for (base, path) in files_under(&self.root, &self.dbt.seed_paths, "csv") {
            let name = stem(&path);
            let dirs = folders(&base, &path);
            let tree_path = self.tree_path(&dirs, &name);
            let (mut config, config_places) = resolve_placed(&self.dbt.seeds, &tree_path);
            config.insert("materialized".into(), Json::String("seed".into()));
            resources.push(Resource {
                kind: Kind::Seed,
                sql_schema: None,
                first_folder: dirs.first().cloned(),
                config,
                config_places,
                name,
                path,
                sql: String::new(),
                properties: None,
            });
        }
        resources
    }

    /// The `{% snapshot %}` blocks of `snapshots/**/*.sql`.
    pub(super) fn snapshots(&mut self) -> Vec<Resource> {
        let mut resources = Vec::new();
        for (base, path) in files_under(&self.root, &self.dbt.snapshot_paths, "sql") {
            let text = match read_text(&path) {
                Ok(s) => s,
                Err(e) => {
                    self.errors.push(e);
                    continue;
                }
            };
            self.unsupported
                .extend(scan_sql(&path, &text, &self.packages));
            self.sql_texts.push(text.clone());
            let blocks = match parse_snapshots(&path, &text) {
                Ok(b) => b,
                Err(message) => {
                    self.errors.push(ConfigError::Invalid {
                        path: path.clone(),
                        field: "snapshot".into(),
                        message,
                    });
                    continue;
                }
            };
            let dirs = folders(&base, &path);
            for b in blocks {
                let tree_path = self.tree_path(&dirs, &b.name);
                let (mut config, config_places) = resolve_placed(&self.dbt.snapshots, &tree_path);
                config.insert("materialized".into(), Json::String("snapshot".into()));
                resources.push(Resource {
                    kind: Kind::Snapshot,
                    sql_schema: None,
                    first_folder: Some("snapshots".into()),
                    config,
                    config_places,
                    name: b.name,
                    path: path.clone(),
                    sql: b.sql,
                    properties: None,
                });
            }
        }
        resources
    }

    /// `tests/**/*.sql` (files defining generic tests are reported, not run).
    pub(super) fn singular_tests(&mut self) -> Vec<SingularTest> {
        let mut singular_tests = Vec::new();
        for (_, path) in files_under(&self.root, &self.dbt.test_paths, "sql") {
            let sql = match read_text(&path) {
                Ok(s) => s,
                Err(e) => {
                    self.errors.push(e);
                    continue;
                }
            };
            let found = scan_sql(&path, &sql, &self.packages);
            let generic = found.iter().any(|u| u.feature.contains("{% test %}"));
            self.unsupported.extend(found);
            if generic {
                continue;
            }
            self.sql_texts.push(sql.clone());
            singular_tests.push(SingularTest {
                name: stem(&path),
                path,
                sql,
            });
        }
        singular_tests
    }

    /// Macros: a finding inside a macro counts only when that macro is called somewhere.
    pub(super) fn macros(&mut self) -> Vec<MacroFile> {
        let macro_dirs: Vec<PathBuf> = self
            .dbt
            .macro_paths
            .iter()
            .map(|p| self.root.join(p))
            .collect();
        let macros: Vec<MacroFile> = load_macros(&macro_dirs, &mut self.errors);
        for (_, path) in files_under(&self.root, &self.dbt.macro_paths, "sql") {
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let spans = macro_spans(&text);
            for u in scan_sql(&path, &text, &self.packages) {
                let offset = line_offset(&text, u.pos.map_or(1, |p| p.line));
                let owner = spans
                    .iter()
                    .rev()
                    .find(|(start, _)| *start <= offset)
                    .map(|(_, name)| name.clone());
                let used = match &owner {
                    Some(name) => {
                        let call = format!("{name}(");
                        self.sql_texts.iter().any(|t| t.contains(&call))
                            || macros
                                .iter()
                                .any(|m| m.text.contains(&call) && !m.names.contains(name))
                    }
                    None => true,
                };
                if used {
                    self.unsupported.push(u);
                }
            }
            self.sql_texts.push(text);
        }
        macros
    }
}
