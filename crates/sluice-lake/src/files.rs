//! A table version as plain Parquet files: what a distributed engine scans.
//!
//! A Delta table provider (delta-rs' `DeltaTableProvider`) cannot travel in a plan to another
//! process: Ballista serialises plans with DataFusion's protobuf codec, which knows listing tables
//! over Parquet files but not Delta scans. [`Lake::version_files`] reads the Delta log at one version
//! and returns the data files it names, so that a caller registers the table as a listing table over
//! exactly those files (see `sluice-transform`'s `distributed` module). The tables Sluice writes use
//! the base Delta protocol (no deletion vectors, no column mapping: see the crate doc), so the files
//! alone are the table; values of partition columns, which Delta keeps in the log and not in the
//! files, are returned per file.

use std::collections::BTreeMap;

use arrow::datatypes::SchemaRef;

use crate::error::{LakeError, Result};
use crate::layout::TableId;
use crate::table::{Lake, arrow_schema};

/// The data files of one table version.
#[derive(Debug, Clone)]
pub struct VersionFiles {
    /// The version read.
    pub version: u64,
    /// The table schema at that version (partition columns included, where Delta puts them).
    pub schema: SchemaRef,
    /// The partition columns, in order (empty: not partitioned).
    pub partition_columns: Vec<String>,
    /// The files: their URL (`file:///…`, `s3://bucket/…`) and, for a partitioned table, the
    /// value of each partition column as Delta wrote it (`None`: null).
    pub files: Vec<DataFile>,
}

/// One data file of a table version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFile {
    /// Absolute URL of the Parquet file.
    pub url: String,
    /// Partition values by column, as text (empty for an unpartitioned table).
    pub partition_values: BTreeMap<String, Option<String>>,
}

impl Lake {
    /// The data files of table `id` at `version` (the version a session pinned), or an error when
    /// the table or the version does not exist, or when the table uses a Delta feature whose files
    /// do not stand alone (deletion vectors, column mapping).
    pub async fn version_files(&self, id: &TableId, version: u64) -> Result<VersionFiles> {
        let mut table = self.unloaded(id)?;
        table
            .load_version(version)
            .await
            .map_err(|e| LakeError::delta(id, "load version", e))?;
        let snapshot = table
            .snapshot()
            .map_err(|e| LakeError::delta(id, "read snapshot", e))?;
        // No deletion vectors, no column mapping: the Parquet files alone hold the rows, under the
        // schema's column names. (Other reader features, such as timestamps without a time zone,
        // change nothing about reading the files.)
        let features: Vec<String> = snapshot
            .protocol()
            .reader_features()
            .unwrap_or_default()
            .iter()
            .map(|f| format!("{f:?}").to_ascii_lowercase())
            .collect();
        for (feature, what) in [
            ("deletionvectors", "deletion vectors"),
            ("columnmapping", "column mapping"),
        ] {
            if features.iter().any(|f| f == feature) {
                return Err(LakeError::delta(
                    id,
                    "list files for a distributed scan",
                    deltalake::DeltaTableError::Generic(format!(
                        "the table uses {what}: its Parquet files cannot be read without the \
                         Delta log; run the model with `engine: local`"
                    )),
                ));
            }
        }
        let schema = arrow_schema(&table)?;
        let partition_columns = snapshot.metadata().partition_columns().to_vec();
        // Paths in the log are relative to the table's folder (percent-encoded where needed).
        let base = self.checked_url(id)?;
        let files = snapshot
            .log_data()
            .iter()
            .map(|file| {
                let path = file.object_store_path();
                let url = base.join(path.as_ref()).map_err(|e| {
                    LakeError::delta(
                        id,
                        "list files for a distributed scan",
                        deltalake::DeltaTableError::Generic(format!("file `{path}`: {e}")),
                    )
                })?;
                Ok(DataFile {
                    url: url.to_string(),
                    partition_values: if partition_columns.is_empty() {
                        BTreeMap::new()
                    } else {
                        file.partition_values_map().into_iter().collect()
                    },
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(VersionFiles {
            version,
            schema,
            partition_columns,
            files,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    use crate::WriteSpec;

    use super::*;

    fn batch(ids: Vec<i64>, days: Vec<&str>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("day", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(ids)),
                Arc::new(StringArray::from(days)),
            ],
        )
        .unwrap()
    }

    #[tokio::test]
    async fn the_files_of_each_version_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let id = TableId::silver("events");
        lake.write(&id, vec![batch(vec![1], vec!["a"])], &WriteSpec::append())
            .await
            .unwrap();
        lake.write(&id, vec![batch(vec![2], vec!["b"])], &WriteSpec::append())
            .await
            .unwrap();
        let v0 = lake.version_files(&id, 0).await.unwrap();
        let v1 = lake.version_files(&id, 1).await.unwrap();
        assert_eq!((v0.files.len(), v1.files.len()), (1, 2));
        assert!(v1.partition_columns.is_empty());
        for f in &v1.files {
            assert!(f.url.starts_with("file:///"), "{}", f.url);
            assert!(f.url.ends_with(".parquet"), "{}", f.url);
            let path = url::Url::parse(&f.url).unwrap().to_file_path().unwrap();
            assert!(path.exists(), "{}", path.display());
        }
        assert_eq!(v1.schema.fields().len(), 2);
        let e = lake.version_files(&id, 7).await.unwrap_err().to_string();
        assert!(e.contains("silver.events") || e.contains("events"), "{e}");
    }

    #[tokio::test]
    async fn partition_values_come_from_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let id = TableId::gold("by_day");
        let spec = WriteSpec {
            partition_by: vec!["day".into()],
            ..WriteSpec::append()
        };
        lake.write(&id, vec![batch(vec![1, 2], vec!["a", "b"])], &spec)
            .await
            .unwrap();
        let v = lake.version_files(&id, 0).await.unwrap();
        assert_eq!(v.partition_columns, vec!["day".to_string()]);
        let mut days: Vec<Option<String>> = v
            .files
            .iter()
            .map(|f| f.partition_values["day"].clone())
            .collect();
        days.sort();
        assert_eq!(days, vec![Some("a".into()), Some("b".into())]);
    }
}
