//! Response formats for query results, and how batches become bytes one at a time.
//!
//! A consumer picks the format it already reads: JSON for scripts and browsers, NDJSON for line
//! tools, CSV for spreadsheets, Arrow IPC for dataframes (pandas, polars, DuckDB) without parsing,
//! Parquet to keep a file. Every format is written by an [`Encoder`] that turns one
//! [`RecordBatch`] at a time into bytes, so the HTTP layer (`crate::http::respond`) and `sluice
//! export` can send a result of any size with bounded memory.
//!
//! Adding a format: add a variant to [`Format`] (name, media types, extension), write its encoder in
//! a file of this folder, and return it from [`Format::encoder`]. The negotiation tests and the
//! OpenAPI document read [`Format::ALL`].

mod arrow;
mod csv;
mod json;
mod parquet;

use ::arrow::array::RecordBatch;
use ::arrow::datatypes::SchemaRef;
use ::arrow::error::ArrowError;

/// A response format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `application/json`: one JSON array of row objects (nulls written as `null`).
    Json,
    /// `application/x-ndjson`: one JSON object per line.
    Ndjson,
    /// `text/csv` with a header row.
    Csv,
    /// `application/vnd.apache.arrow.stream`: the Arrow IPC streaming format.
    Arrow,
    /// `application/vnd.apache.parquet`: one Parquet file.
    Parquet,
}

impl Format {
    /// Every format, in the order of preference when a client accepts several equally (JSON first).
    pub const ALL: [Format; 5] = [
        Format::Json,
        Format::Ndjson,
        Format::Csv,
        Format::Arrow,
        Format::Parquet,
    ];

    /// The `?format=` name.
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Ndjson => "ndjson",
            Format::Csv => "csv",
            Format::Arrow => "arrow",
            Format::Parquet => "parquet",
        }
    }

    /// The media type sent as `Content-Type`.
    pub fn media_type(self) -> &'static str {
        self.media_types()[0]
    }

    /// Every media type that selects this format in `Accept` (the first is canonical).
    pub fn media_types(self) -> &'static [&'static str] {
        match self {
            Format::Json => &["application/json"],
            Format::Ndjson => &[
                "application/x-ndjson",
                "application/ndjson",
                "application/jsonl",
                "application/x-jsonlines",
            ],
            Format::Csv => &["text/csv"],
            Format::Arrow => &["application/vnd.apache.arrow.stream"],
            Format::Parquet => &["application/vnd.apache.parquet", "application/x-parquet"],
        }
    }

    /// The full `Content-Type` header value.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8; header=present",
            other => other.media_type(),
        }
    }

    /// The format for a `?format=` value (case-insensitive; `jsonl` and `ipc` are aliases).
    pub fn from_name(name: &str) -> Option<Format> {
        let lower = name.trim().to_ascii_lowercase();
        let f = match lower.as_str() {
            "json" => Format::Json,
            "ndjson" | "jsonl" => Format::Ndjson,
            "csv" => Format::Csv,
            "arrow" | "ipc" => Format::Arrow,
            "parquet" => Format::Parquet,
            _ => return None,
        };
        Some(f)
    }

    /// `json, ndjson, csv, arrow, parquet` (for messages).
    pub fn supported_list() -> String {
        Format::ALL.map(Format::name).join(", ")
    }

    /// The canonical media types, comma-separated (for messages).
    pub fn media_type_list() -> String {
        Format::ALL.map(Format::media_type).join(", ")
    }

    /// An encoder for results of `schema` in this format.
    pub fn encoder(self, schema: &SchemaRef) -> Result<Box<dyn Encoder>, EncodeError> {
        let enc: Box<dyn Encoder> = match self {
            Format::Json => Box::new(json::JsonEncoder::array()),
            Format::Ndjson => Box::new(json::JsonEncoder::lines()),
            Format::Csv => Box::new(csv::CsvEncoder::new(schema.clone())),
            Format::Arrow => Box::new(arrow::ArrowEncoder::new(schema)?),
            Format::Parquet => Box::new(parquet::ParquetEncoder::new(schema.clone())?),
        };
        Ok(enc)
    }
}

/// Turns batches into bytes of one format, one batch at a time.
///
/// Each call returns the bytes that are ready to send; a format that must buffer (a Parquet row
/// group still filling) returns an empty vector until it has something.
pub trait Encoder: Send {
    /// Encodes one batch.
    fn batch(&mut self, batch: &RecordBatch) -> Result<Vec<u8>, EncodeError>;
    /// Ends the output (closing bracket, end-of-stream marker, Parquet footer).
    fn finish(&mut self) -> Result<Vec<u8>, EncodeError>;
}

/// Why a batch could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// Arrow's JSON, CSV or IPC writer failed (e.g. a nested column in CSV).
    #[error("cannot encode as {format}: {source}")]
    Arrow {
        /// The format name.
        format: &'static str,
        /// The writer's error.
        #[source]
        source: ArrowError,
    },
    /// The Parquet writer failed.
    #[error("cannot encode as parquet: {0}")]
    Parquet(#[from] ::parquet::errors::ParquetError),
}

impl EncodeError {
    fn arrow(format: Format) -> impl FnOnce(ArrowError) -> EncodeError {
        move |source| EncodeError::Arrow {
            format: format.name(),
            source,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use ::arrow::array::{Array, Int64Array, ListArray, StringArray};
    use ::arrow::datatypes::{DataType, Field, Int64Type, Schema};

    use super::*;

    pub(crate) fn sample() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec![Some("a,b"), None])),
            ],
        )
        .unwrap()
    }

    fn encode_all(format: Format, batches: &[RecordBatch], schema: &SchemaRef) -> Vec<u8> {
        let mut enc = format.encoder(schema).unwrap();
        let mut out = Vec::new();
        for b in batches {
            out.extend(enc.batch(b).unwrap());
        }
        out.extend(enc.finish().unwrap());
        out
    }

    #[test]
    fn names_round_trip_and_aliases_resolve() {
        for f in Format::ALL {
            assert_eq!(Format::from_name(f.name()), Some(f));
        }
        assert_eq!(Format::from_name("JSONL"), Some(Format::Ndjson));
        assert_eq!(Format::from_name("ipc"), Some(Format::Arrow));
        assert_eq!(Format::from_name("xml"), None);
    }

    #[test]
    fn json_array_spans_batches_with_separators_and_explicit_nulls() {
        let b = sample();
        let out = encode_all(Format::Json, &[b.clone(), b.clone()], &b.schema());
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 4);
        assert_eq!(v[1], serde_json::json!({"id": 2, "name": null}));
        assert_eq!(v[2]["name"], "a,b");
    }

    #[test]
    fn empty_results_are_still_valid_documents() {
        let schema = sample().schema();
        assert_eq!(encode_all(Format::Json, &[], &schema), b"[]");
        assert_eq!(encode_all(Format::Ndjson, &[], &schema), b"");
        assert_eq!(encode_all(Format::Csv, &[], &schema), b"id,name\n");
    }

    #[test]
    fn ndjson_writes_one_object_per_line() {
        let b = sample();
        let out = encode_all(Format::Ndjson, &[b.clone(), b.clone()], &b.schema());
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 4);
        assert_eq!(text.lines().next(), Some(r#"{"id":1,"name":"a,b"}"#));
    }

    #[test]
    fn csv_writes_the_header_once() {
        let b = sample();
        let out = encode_all(Format::Csv, &[b.clone(), b.clone()], &b.schema());
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, "id,name\n1,\"a,b\"\n2,\n1,\"a,b\"\n2,\n");
    }

    #[test]
    fn csv_refuses_nested_columns_with_a_named_error() {
        let list = ListArray::from_iter_primitive::<Int64Type, _, _>(vec![Some(vec![Some(1)])]);
        let schema = Arc::new(Schema::new(vec![Field::new(
            "l",
            list.data_type().clone(),
            true,
        )]));
        let b = RecordBatch::try_new(schema.clone(), vec![Arc::new(list)]).unwrap();
        let mut enc = Format::Csv.encoder(&schema).unwrap();
        let err = enc.batch(&b).unwrap_err().to_string();
        assert!(err.starts_with("cannot encode as csv"), "{err}");
    }
}
