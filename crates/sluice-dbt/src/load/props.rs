//! Phase 5 of [`super::load`]: properties files (descriptions, columns, tests of each resource, dbt
//! sources) and the Sluice connectors that land dbt sources.

use std::path::PathBuf;

use sluice_core::ConfigError;
use sluice_core::error::Position;
use sluice_core::project::load_sources;
use sluice_core::source::SourceDecl;
use sluice_core::yaml::read_text;

use super::{Kind, Loader, Resource};
use crate::files::files_under;
use crate::properties::{IGNORED_SECTIONS, PropertiesFile};
use crate::unsupported::Unsupported;

/// What the properties files said besides each resource's properties.
pub(super) struct Properties {
    /// `(source, table, file, place of the table's name)` of every dbt source table.
    pub dbt_sources: Vec<(String, String, PathBuf, Option<Position>)>,
    /// The folders properties files are read from.
    pub dirs: Vec<String>,
}

impl Loader {
    /// Reads every properties file under the model, seed and snapshot paths, attaching each entry to
    /// its resource.
    pub(super) fn properties(&mut self, resources: &mut [Resource]) -> Properties {
        let mut prop_dirs = self.dbt.model_paths.clone();
        prop_dirs.extend(self.dbt.seed_paths.iter().cloned());
        prop_dirs.extend(self.dbt.snapshot_paths.iter().cloned());
        let mut yml = files_under(&self.root, &prop_dirs, "yml");
        yml.extend(files_under(&self.root, &prop_dirs, "yaml"));
        let mut dbt_sources = Vec::new();
        for (_, path) in yml {
            let text = match read_text(&path) {
                Ok(t) => t,
                Err(e) => {
                    self.errors.push(e);
                    continue;
                }
            };
            let file: PropertiesFile = match crate::properties::load(&path, &text) {
                Ok(f) => f,
                Err(e) => {
                    self.errors.extend(e);
                    continue;
                }
            };
            for (key, pos) in &file.other {
                if IGNORED_SECTIONS.contains(&key.as_str()) {
                    continue;
                }
                self.unsupported.push(Unsupported {
                    path: path.clone(),
                    pos: Some(*pos),
                    feature: format!("`{key}:` in properties files"),
                });
            }
            for s in &file.sources {
                for t in &s.tables {
                    dbt_sources.push((
                        s.name.clone(),
                        t.name.value.clone(),
                        path.clone(),
                        t.name.position(),
                    ));
                }
            }
            for (kind, entries) in [
                (Kind::Model, file.models),
                (Kind::Seed, file.seeds),
                (Kind::Snapshot, file.snapshots),
            ] {
                for described in entries {
                    let name = &described.props.name;
                    let field = format!("{}s[name={name}]", kind.as_str());
                    let Some(r) = resources
                        .iter_mut()
                        .find(|r| r.kind == kind && &r.name == name)
                    else {
                        self.errors.push(ConfigError::At {
                            path: path.clone(),
                            position: described.pos,
                            field,
                            message: format!("describes a {} that does not exist", kind.as_str()),
                        });
                        continue;
                    };
                    if r.properties.is_some() {
                        self.errors.push(ConfigError::At {
                            path: path.clone(),
                            position: described.pos,
                            field,
                            message: "is described twice".into(),
                        });
                        continue;
                    }
                    r.properties = Some(described);
                }
            }
        }
        Properties {
            dbt_sources,
            dirs: prop_dirs,
        }
    }

    /// Sluice connectors for dbt sources (`sources/*.yml` in the dbt project); a dbt source without
    /// one is reported.
    pub(super) fn connectors(
        &mut self,
        dbt_sources: &[(String, String, PathBuf, Option<Position>)],
    ) -> Vec<SourceDecl> {
        let sources = load_sources(&self.root.join("sources"), &mut self.errors);
        for (src, table, path, pos) in dbt_sources {
            let landed = sources
                .iter()
                .any(|s| &s.name == src && s.tables.iter().any(|t| &t.name == table));
            if !landed {
                self.unsupported.push(Unsupported {
                    path: path.clone(),
                    pos: *pos,
                    feature: format!(
                        "dbt source `{src}.{table}` has no Sluice connector (declare it in sources/{src}.yml, e.g. kind: files, or load it as a seed)"
                    ),
                });
            }
        }
        sources
    }
}
