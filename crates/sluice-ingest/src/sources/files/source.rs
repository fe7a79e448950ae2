//! The `files` connector.
//!
//! Each new file is landed in its own Delta commit whose metadata names the file; the set of landed
//! files is read back from the table's log, so a file is landed exactly once even if the process dies
//! between files, and no side database can drift from the lake. A file streams into its commit
//! (`land`), so its size does not bound what memory it needs. Once the table exists, up to
//! `parallelism` files are read and written at once and committed in order (`parallel`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use futures::StreamExt;
use sluice_core::SourceDecl;
use sluice_core::env::expand_env;
use sluice_lake::TableId;

use super::config::{FilesConfig, FilesTable};
use super::land::{FileLanded, land_file};
use super::parallel::{Committed, FileJob, Staging, commit_staged};
use crate::error::IngestError;
use crate::formats::{FileFormat, ReadOptions, parse_type_name};
use crate::landing::app_id;
use crate::source::{IngestContext, IngestReport, Source, find_table};

/// Lands files matched by globs.
#[derive(Debug, Clone)]
pub struct FilesSource {
    name: String,
    root: PathBuf,
    path: PathBuf,
    config: FilesConfig,
}

impl FilesSource {
    /// Parses and validates a source file of kind `files`.
    pub fn from_decl(decl: &SourceDecl, root: &Path) -> Result<Self, IngestError> {
        let config: FilesConfig = decl.config()?;
        for (i, t) in config.tables.iter().enumerate() {
            let invalid =
                |field: String, message: String| IngestError::Config(decl.invalid(&field, message));
            if let Some(f) = &t.format {
                f.parse::<FileFormat>()
                    .map_err(|e| invalid(format!("tables[{i}].format"), e.to_string()))?;
            }
            for (col, ty) in &t.columns {
                parse_type_name(ty)
                    .map_err(|e| invalid(format!("tables[{i}].columns.{col}"), e.to_string()))?;
            }
            if t.parallelism == Some(0) {
                return Err(invalid(
                    format!("tables[{i}].parallelism"),
                    "must be at least 1 (1 lands the files one after another)".to_string(),
                ));
            }
        }
        Ok(Self {
            name: decl.name.clone(),
            root: root.to_path_buf(),
            path: decl.path.clone(),
            config,
        })
    }

    fn table(&self, name: &str) -> Result<&FilesTable, IngestError> {
        find_table(&self.name, &self.config.tables, name, |t| &t.name)
    }

    /// Files matching the table's glob, sorted (so files named by time land in order).
    fn matching_files(&self, t: &FilesTable) -> Result<Vec<PathBuf>, IngestError> {
        let pattern = expand_env(&t.path, &self.path)?;
        let full = if Path::new(&pattern).is_absolute() {
            PathBuf::from(&pattern)
        } else {
            self.root.join(&pattern)
        };
        let read_err = |message: String| IngestError::Read {
            source_name: self.name.clone(),
            table: t.name.clone(),
            message,
            transient: false,
        };
        let paths = glob::glob(&full.to_string_lossy())
            .map_err(|e| read_err(format!("invalid glob `{pattern}`: {e}")))?;
        let mut files = Vec::new();
        for p in paths {
            let p = p.map_err(|e| read_err(format!("cannot list `{pattern}`: {e}")))?;
            if p.is_file() {
                files.push(p);
            }
        }
        files.sort();
        Ok(files)
    }

    /// What landing `file` as txn `txn_version` needs to know.
    fn job(&self, t: &FilesTable, file: &Path, rel: String, txn_version: i64) -> FileJob {
        FileJob {
            source: self.name.clone(),
            table: t.name.clone(),
            rel,
            pii: t.pii.clone(),
            txn_version,
            path: file.to_path_buf(),
        }
    }

    /// How to read `file` for table `t` as it is now: its format, the table's current columns (the
    /// reader fits rows to them), the declared types and the CSV options.
    async fn read_options(
        &self,
        t: &FilesTable,
        file: &Path,
        declared: &[(String, arrow::datatypes::DataType)],
        cx: &IngestContext,
    ) -> Result<ReadOptions, IngestError> {
        let format = self.format(t, file)?;
        // The bronze metadata columns are added after parsing, so they are not part of what a
        // file must provide.
        let id = TableId::bronze(&self.name, &t.name);
        let existing_schema = match cx.lake.load(&id).await? {
            Some(table) => Some(crate::landing::without_metadata_columns(
                sluice_lake::arrow_schema(&table)?.as_ref(),
            )),
            None => None,
        };
        let mut opts = ReadOptions::new(format);
        opts.existing_schema = existing_schema;
        opts.declared = declared.to_vec();
        if let Some(d) = t.delimiter {
            opts.csv_delimiter = u8::try_from(d).unwrap_or(b',');
        }
        if let Some(h) = t.header {
            opts.csv_has_header = h;
        }
        Ok(opts)
    }

    /// The format of `file`: the table's, else its extension's.
    fn format(
        &self,
        t: &FilesTable,
        file: &Path,
    ) -> Result<FileFormat, crate::formats::FormatError> {
        match &t.format {
            Some(f) => f.parse::<FileFormat>(),
            None => FileFormat::from_path(file),
        }
    }

    fn relative(&self, p: &Path) -> String {
        p.strip_prefix(&self.root)
            .unwrap_or(p)
            .to_string_lossy()
            .into_owned()
    }
}

#[async_trait]
impl Source for FilesSource {
    fn kind(&self) -> &'static str {
        "files"
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn tables(&self) -> Vec<String> {
        self.config.tables.iter().map(|t| t.name.clone()).collect()
    }

    async fn ingest(&self, table: &str, cx: &IngestContext) -> Result<IngestReport, IngestError> {
        let t = self.table(table)?;
        let id = TableId::bronze(&self.name, &t.name);
        let app = app_id(&self.name, &t.name);
        let history = cx.lake.app_commits(&id, &app).await?;
        let mut txn_version = history
            .iter()
            .filter_map(|c| c.txn_version)
            .max()
            .unwrap_or(0);
        let landed: BTreeSet<String> = history
            .iter()
            .filter_map(|c| {
                c.metadata
                    .get("sluice.file")
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
            })
            .collect();
        let declared = t
            .columns
            .iter()
            .map(|(c, ty)| parse_type_name(ty).map(|dt| (c.clone(), dt)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut report = IngestReport::default();
        let mut files = Vec::new();
        for file in self.matching_files(t)? {
            let rel = self.relative(&file);
            if landed.contains(&rel) {
                report.files_skipped += 1;
            } else {
                files.push((file, rel));
            }
        }
        let parallelism = t.parallelism();
        let mut files = files.into_iter().peekable();
        // One after another while the table does not exist: the first file creates it and fixes
        // the types the others are read against.
        while files.peek().is_some() && (parallelism == 1 || !cx.lake.exists(&id).await?) {
            let Some((file, rel)) = files.next() else {
                break;
            };
            txn_version += 1;
            let job = self.job(t, &file, rel, txn_version);
            let opts = self.read_options(t, &file, &declared, cx).await?;
            let landed = land_file(cx, &job.target(), file, opts).await?;
            add(&mut report, &job, landed, cx);
        }
        let jobs: Vec<FileJob> = files
            .map(|(file, rel)| {
                txn_version += 1;
                self.job(t, &file, rel, txn_version)
            })
            .collect();
        if jobs.is_empty() {
            return Ok(report);
        }
        // Every file is read against the table as it is now (see `parallel` for a file that an
        // earlier one changes).
        let base = self.read_options(t, &jobs[0].path, &declared, cx).await?;
        let mut staging = futures::stream::iter(jobs)
            .map(|job| {
                let task = self
                    .format(t, &job.path)
                    .map(|format| {
                        let opts = ReadOptions {
                            format,
                            ..base.clone()
                        };
                        Staging::start(cx, job.clone(), opts)
                    })
                    .map_err(IngestError::from);
                async move {
                    let staged = match task {
                        Ok(task) => task.finish(&job).await,
                        Err(e) => Err(e),
                    };
                    (staged, job)
                }
            })
            .buffered(parallelism);
        while let Some((staged, job)) = staging.next().await {
            let landed = match commit_staged(cx, &job, staged?).await? {
                Committed::Landed(landed) => landed,
                Committed::Again => {
                    let opts = self.read_options(t, &job.path, &declared, cx).await?;
                    land_file(cx, &job.target(), job.path.clone(), opts).await?
                }
            };
            add(&mut report, &job, landed, cx);
        }
        Ok(report)
    }
}

/// Adds one landed file to the report.
fn add(report: &mut IngestReport, job: &FileJob, landed: FileLanded, cx: &IngestContext) {
    let FileLanded {
        rows_read,
        landed: l,
    } = landed;
    report.rows_read += rows_read;
    report.rows_written += l.rows;
    report.rows_quarantined += l.quarantined;
    report.commits += u64::from(l.committed);
    report.files.push(job.rel.clone());
    cx.report_progress(report.rows_written);
}

#[cfg(test)]
#[path = "source_tests.rs"]
mod tests;
