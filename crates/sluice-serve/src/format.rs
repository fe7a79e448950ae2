//! Encoding query results for HTTP: JSON (array of objects) or CSV, chosen by `?format=` or `Accept`.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use sluice_transform::arrow::array::RecordBatch;

/// A response format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/json`: an array of row objects.
    Json,
    /// `text/csv` with a header row.
    Csv,
}

impl Format {
    /// From `?format=` first, then the `Accept` header; JSON by default.
    pub fn negotiate(query: Option<&str>, headers: &HeaderMap) -> Result<Format, String> {
        if let Some(f) = query {
            return match f {
                "json" => Ok(Format::Json),
                "csv" => Ok(Format::Csv),
                other => Err(format!(
                    "unsupported format `{other}`; expected json or csv"
                )),
            };
        }
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if accept.contains("text/csv") {
            Ok(Format::Csv)
        } else {
            Ok(Format::Json)
        }
    }
}

/// Encodes batches in `format`.
pub fn encode(batches: &[RecordBatch], format: Format) -> Result<Response, String> {
    match format {
        Format::Json => {
            let mut buf = Vec::new();
            {
                let mut w = sluice_transform::arrow::json::ArrayWriter::new(&mut buf);
                for b in batches {
                    w.write(b).map_err(|e| e.to_string())?;
                }
                w.finish().map_err(|e| e.to_string())?;
            }
            if buf.is_empty() {
                buf = b"[]".to_vec();
            }
            Ok((
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                buf,
            )
                .into_response())
        }
        Format::Csv => {
            let mut buf = Vec::new();
            {
                let mut w = sluice_transform::arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(&mut buf);
                for b in batches {
                    w.write(b).map_err(|e| e.to_string())?;
                }
            }
            Ok((
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/csv; charset=utf-8"),
                )],
                buf,
            )
                .into_response())
        }
    }
}
