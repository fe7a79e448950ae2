//! The file-arrival sensor of a `files` source table.
//!
//! The `files` connector records the name of every landed file in the Delta commit that landed it, so
//! the lake itself says which files are done. The sensor lists the table's glob, and only when it sees
//! a name it does not already know as landed does it read the table's log again. A file is announced
//! once: if its ingestion fails, the sensor does not start the same failing run at every poll; it
//! fires again when another new file arrives (or the next `sluice run` lands it).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use sluice_ingest::landing::app_id;
use sluice_lake::{Lake, TableId};

use super::ScheduleError;
use super::plan::FileSensorSpec;

/// Watches one table's glob.
#[derive(Debug)]
pub struct FileSensor {
    node: String,
    spec: FileSensorSpec,
    root: PathBuf,
    landed: BTreeSet<String>,
    announced: BTreeSet<String>,
    loaded: bool,
}

impl FileSensor {
    /// A sensor for `node`, resolving relative globs against the project `root`.
    pub fn new(node: &str, spec: FileSensorSpec, root: &Path) -> FileSensor {
        FileSensor {
            node: node.to_string(),
            spec,
            root: root.to_path_buf(),
            landed: BTreeSet::new(),
            announced: BTreeSet::new(),
            loaded: false,
        }
    }

    /// The asset it watches.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Files that match the glob, are not landed and were not announced before (project-relative
    /// names, as the connector records them), sorted.
    pub async fn poll(&mut self, lake: &Lake) -> Result<Vec<String>, ScheduleError> {
        let listed = self.list().await?;
        let mut unknown: BTreeSet<String> = listed.difference(&self.landed).cloned().collect();
        if !unknown.is_empty() || !self.loaded {
            self.refresh_landed(lake).await?;
            unknown = listed.difference(&self.landed).cloned().collect();
        }
        let new: Vec<String> = unknown.difference(&self.announced).cloned().collect();
        // Forget announced files once they landed or disappeared.
        self.announced = unknown;
        Ok(new)
    }

    async fn refresh_landed(&mut self, lake: &Lake) -> Result<(), ScheduleError> {
        let id = TableId::bronze(&self.spec.source, &self.spec.table);
        let commits = lake
            .app_commits(&id, &app_id(&self.spec.source, &self.spec.table))
            .await
            .map_err(|e| self.error(format!("cannot read the landed files: {e}")))?;
        self.landed = commits
            .iter()
            .filter_map(|c| c.metadata.get("sluice.file").and_then(|v| v.as_str()))
            .map(str::to_string)
            .collect();
        self.loaded = true;
        Ok(())
    }

    /// Lists the glob the way the `files` connector does, so names compare equal.
    async fn list(&self) -> Result<BTreeSet<String>, ScheduleError> {
        let full = if Path::new(&self.spec.pattern).is_absolute() {
            PathBuf::from(&self.spec.pattern)
        } else {
            self.root.join(&self.spec.pattern)
        };
        let root = self.root.clone();
        let pattern = full.to_string_lossy().into_owned();
        let listed = tokio::task::spawn_blocking(move || -> Result<BTreeSet<String>, String> {
            let paths =
                glob::glob(&pattern).map_err(|e| format!("invalid glob `{pattern}`: {e}"))?;
            let mut out = BTreeSet::new();
            for p in paths {
                let p = p.map_err(|e| format!("cannot list `{pattern}`: {e}"))?;
                if p.is_file() {
                    out.insert(
                        p.strip_prefix(&root)
                            .unwrap_or(&p)
                            .to_string_lossy()
                            .into_owned(),
                    );
                }
            }
            Ok(out)
        })
        .await
        .map_err(|e| self.error(format!("listing failed: {e}")))?;
        listed.map_err(|m| self.error(m))
    }

    fn error(&self, message: String) -> ScheduleError {
        ScheduleError::Sensor {
            node: self.node.clone(),
            message,
        }
    }
}
