//! A query result to a file or stdout (`sluice export`), batch by batch, in any [`Format`].
//!
//! A file is written under a temporary name next to it and renamed when complete, so a failed or
//! interrupted export never leaves a truncated file where a reader expects a whole one.

use std::io::Write;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use sluice_engine::SendableRecordBatchStream;

use super::ExportError;
use crate::format::Format;

/// What was written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileReport {
    /// Rows written.
    pub rows: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// Encodes `stream` as `format` into `out`, one batch at a time. `name` is used in errors.
pub async fn write_stream(
    mut stream: SendableRecordBatchStream,
    format: Format,
    out: &mut dyn Write,
    name: &str,
) -> Result<FileReport, ExportError> {
    let io = |source| ExportError::Io {
        path: name.to_string(),
        source,
    };
    let mut encoder = format.encoder(&stream.schema())?;
    let mut report = FileReport::default();
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| ExportError::Engine(e.to_string()))?;
        report.rows += batch.num_rows() as u64;
        let bytes = encoder.batch(&batch)?;
        report.bytes += bytes.len() as u64;
        out.write_all(&bytes).map_err(io)?;
    }
    let tail = encoder.finish()?;
    report.bytes += tail.len() as u64;
    out.write_all(&tail).map_err(io)?;
    out.flush().map_err(io)?;
    Ok(report)
}

/// Writes `stream` to `path` (created or replaced only when complete), or to stdout when `path` is
/// `None`.
pub async fn export_to(
    stream: SendableRecordBatchStream,
    format: Format,
    path: Option<&Path>,
) -> Result<FileReport, ExportError> {
    let Some(path) = path else {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        return write_stream(stream, format, &mut out, "stdout").await;
    };
    let shown = path.display().to_string();
    let partial = partial_path(path);
    let io = |source| ExportError::Io {
        path: shown.clone(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let file = std::fs::File::create(&partial).map_err(io)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let written = write_stream(stream, format, &mut out, &shown).await;
    drop(out);
    match written {
        Ok(report) => {
            std::fs::rename(&partial, path).map_err(io)?;
            Ok(report)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

/// `dir/.name.partial`: hidden, in the same folder so that the rename is atomic.
fn partial_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "export".into());
    path.with_file_name(format!(".{name}.partial"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};
    use sluice_engine::DataFusionError;
    use sluice_engine::plan::RecordBatchStreamAdapter;

    use super::*;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2, 3]))]).unwrap()
    }

    fn stream(items: Vec<sluice_engine::DfResult<RecordBatch>>) -> SendableRecordBatchStream {
        Box::pin(RecordBatchStreamAdapter::new(
            batch().schema(),
            futures::stream::iter(items),
        ))
    }

    #[tokio::test]
    async fn a_complete_export_replaces_the_file() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("out/v.csv");
        let r = export_to(
            stream(vec![Ok(batch()), Ok(batch())]),
            Format::Csv,
            Some(&path),
        )
        .await
        .unwrap();
        assert_eq!(r.rows, 6);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "v\n1\n2\n3\n1\n2\n3\n");
        assert_eq!(r.bytes, text.len() as u64);
    }

    #[tokio::test]
    async fn a_failed_export_leaves_no_file_behind() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("v.jsonl");
        std::fs::write(&path, "old\n").unwrap();
        let s = stream(vec![
            Ok(batch()),
            Err(DataFusionError::Execution("disk gone".into())),
        ]);
        let e = export_to(s, Format::Ndjson, Some(&path)).await.unwrap_err();
        assert!(e.to_string().contains("disk gone"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\n");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
