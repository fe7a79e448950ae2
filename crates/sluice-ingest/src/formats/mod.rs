//! Landing files (CSV, JSON Lines, Parquet) → Arrow record batches, row-exactly.
//!
//! Every file source (local folders, object-store prefixes, seeds) funnels through [`stream_file`]
//! (or [`read_file`], which collects what it streams). The contract is that no row disappears: each
//! row of the file either ends up in an accepted batch or in a [`RejectedRow`] with the physical line
//! it came from and why it could not be read, so the caller can land the good rows and send the rest
//! to quarantine. Files are read from disk as they are parsed (CSV once, its types inferred from a
//! bounded sample at its start; JSON Lines twice: once to settle the schema, once to convert), so
//! memory stays bounded by a batch (and a CSV sample) whatever the file's size.
//! Only problems that concern the whole file (unreadable, not Parquet, no CSV header, a column the
//! table requires is absent) are errors ([`FormatError`]).
//!
//! Types are settled in this order: the type the target table already has (`existing_schema`), then
//! the type declared in the source config (`declared`), then inference (over a CSV file's first
//! [`CSV_SAMPLE_ROWS`] rows, over a whole JSON Lines file). The result
//! schema is [`merge_schemas`]`(existing, file)`, so a new column or a new nested field evolves the
//! table, and every batch has exactly that schema so a file is appended in one write.
//!
//! Module map: `csv` and `jsonl` read text formats row by row,
//! `parquet` reads typed files, `convert` holds the string → typed column builders used by CSV, and
//! `schema` holds inference, merging and conforming batches to a schema, `temporal` recognises dates
//! and date-times in text.

/// Most columns a landing file may have: wider files are almost surely not tables (a runaway header
/// or a record of generated keys), and every column costs a builder and a Parquet column.
pub const MAX_COLUMNS: usize = 10_000;

/// Most bytes of file text one batch of a text format holds (besides at most `batch_size` rows).
/// Every batch in flight between the reader and the lake's writer costs memory, so batches of wide
/// rows are cut by size: measured on 1 KB rows, 512 KiB batches keep a file's peak memory flat in its
/// size, while 2 MiB ones (and 8192-row ones, 8 MB) let it grow with the file.
pub(crate) const BATCH_BYTES: usize = 512 * 1024;

/// Rows of a CSV file its column types are inferred from (DuckDB's default `sample_size`): the
/// file is parsed once, these rows held until their types are settled. A later value that does not
/// fit its inferred type rejects its row (declare the column's type to choose another).
pub const CSV_SAMPLE_ROWS: usize = 20_480;

/// Most bytes of CSV text the inference sample holds, whatever its row count: wide rows end the
/// sample early rather than hold megabytes.
pub(crate) const CSV_SAMPLE_BYTES: usize = 8 * BATCH_BYTES;

mod convert;
mod csv;
mod jsonl;
mod parquet;
mod schema;
mod sink;
mod temporal;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use arrow::datatypes::{DataType, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

pub(crate) use self::jsonl::read_jsonl_bytes;
pub use self::schema::{merge_schemas, parse_type_name};
pub use self::sink::{FileSink, FileSummary};

/// The format of a landing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileFormat {
    /// Comma- (or other delimiter-) separated values, header line first by default.
    Csv,
    /// JSON Lines / NDJSON: one JSON object per line.
    Jsonl,
    /// Apache Parquet.
    Parquet,
}

impl FileFormat {
    /// The format named by a file's extension (`.csv`, `.json`, `.jsonl`, `.ndjson`, `.parquet`;
    /// case-insensitive).
    pub fn from_path(path: &Path) -> Result<FileFormat, FormatError> {
        let ext = path.extension().and_then(|e| e.to_str()).ok_or_else(|| {
            FormatError::UnknownExtension {
                path: path.to_path_buf(),
            }
        })?;
        ext.parse().map_err(|_| FormatError::UnknownExtension {
            path: path.to_path_buf(),
        })
    }
}

impl FromStr for FileFormat {
    type Err = FormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" => Ok(FileFormat::Csv),
            "json" | "jsonl" | "ndjson" => Ok(FileFormat::Jsonl),
            "parquet" => Ok(FileFormat::Parquet),
            _ => Err(FormatError::UnknownFormat {
                value: s.to_string(),
            }),
        }
    }
}

impl fmt::Display for FileFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileFormat::Csv => "csv",
            FileFormat::Jsonl => "jsonl",
            FileFormat::Parquet => "parquet",
        })
    }
}

/// How to read one file.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// The file's format.
    pub format: FileFormat,
    /// Maximum rows per produced batch (default 8192). Must be at least 1. CSV and JSON Lines
    /// batches also end at about 512 KiB of file text, so wide rows do not make large batches.
    pub batch_size: usize,
    /// Schema the target table already has (None = new table). Columns present there keep their
    /// type; a value that cannot be converted to that type rejects the row (the reason names the
    /// line, column, expected type and value).
    pub existing_schema: Option<SchemaRef>,
    /// Declared column types from the source config (e.g. "amount" -> Float64); they override
    /// inference for top-level columns the table does not have yet.
    pub declared: Vec<(String, DataType)>,
    /// CSV field delimiter (default `b','`).
    pub csv_delimiter: u8,
    /// Whether the first CSV line names the columns (default true). Without a header, columns are
    /// named `column_1`, `column_2`, … after the first row's width.
    pub csv_has_header: bool,
}

impl ReadOptions {
    /// Options for `format` with the defaults: batches of 8192 rows, new table, nothing declared,
    /// comma-delimited CSV with a header.
    pub fn new(format: FileFormat) -> Self {
        ReadOptions {
            format,
            batch_size: 8192,
            existing_schema: None,
            declared: Vec::new(),
            csv_delimiter: b',',
            csv_has_header: true,
        }
    }
}

impl Default for ReadOptions {
    /// CSV with the defaults of [`ReadOptions::new`].
    fn default() -> Self {
        ReadOptions::new(FileFormat::Csv)
    }
}

/// A row that could not be read, with the reason, for the quarantine table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRow {
    /// 1-based physical line of the row in the file (the CSV header is line 1).
    pub line: u64,
    /// Why the row was rejected; starts with `line N: `.
    pub reason: String,
    /// The original text of the row (invalid UTF-8 replaced by U+FFFD).
    pub raw: String,
    /// The row split into named fields, when the reader could (a CSV record of the header's width):
    /// a table with `pii:` rules quarantines these, with the rules applied, instead of `raw`.
    pub fields: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The readable content of one file.
#[derive(Debug, Clone)]
pub struct FileBatches {
    /// The schema of every batch: `merge_schemas(existing, file schema)` when the table exists.
    pub schema: SchemaRef,
    /// The accepted rows, in file order, in batches of at most `batch_size` rows.
    pub batches: Vec<RecordBatch>,
    /// The rejected rows, ordered by line.
    pub rejected: Vec<RejectedRow>,
    /// Number of accepted rows (the sum of the batches' lengths). Rows read from a text file =
    /// `rows + rejected.len()`.
    pub rows: u64,
}

/// A failure that concerns a whole file. Row-level problems are [`RejectedRow`]s instead.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The file could not be opened or read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A format name is not one this reader knows.
    #[error("unknown file format `{value}`; expected one of csv, json, jsonl, ndjson, parquet")]
    UnknownFormat {
        /// The name given.
        value: String,
    },
    /// A file's extension does not name a known format.
    #[error(
        "{path}: cannot tell the file format from the extension; expected .csv, .json, .jsonl, \
         .ndjson or .parquet (or set the format in the source config)"
    )]
    UnknownExtension {
        /// The file.
        path: PathBuf,
    },
    /// A column type name (source YAML) is not known or malformed.
    #[error(
        "unknown column type `{name}`{}; expected one of int, bigint, integer, double, float, real, \
         string, text, varchar, bool, boolean, date, timestamp, decimal(p,s)",
        if reason.is_empty() { String::new() } else { format!(" ({reason})") }
    )]
    UnknownType {
        /// The type name given.
        name: String,
        /// What is wrong with it beyond being unknown (e.g. decimal precision out of range).
        reason: String,
    },
    /// The read options are unusable.
    #[error("invalid read options: {reason}")]
    InvalidOptions {
        /// What is wrong.
        reason: String,
    },
    /// A CSV file has no header line (or no line at all).
    #[error("{path}: CSV file is empty; expected a header line naming the columns")]
    EmptyCsv {
        /// The file.
        path: PathBuf,
    },
    /// A file has more columns than [`MAX_COLUMNS`].
    #[error(
        "{path}: {columns} columns, more than the {max} a file may have; split the file or drop columns"
    )]
    TooManyColumns {
        /// The file.
        path: PathBuf,
        /// How many columns it has (a JSON line: how many keys).
        columns: usize,
        /// The limit.
        max: usize,
    },
    /// Two columns of a file have the same name.
    #[error("{path}: line {line}: column `{column}` appears more than once in the header")]
    DuplicateColumn {
        /// The file.
        path: PathBuf,
        /// The header line.
        line: u64,
        /// The repeated name.
        column: String,
    },
    /// The CSV parser failed in a way that is not about one row (e.g. an I/O error mid-file).
    #[error("{path}: line {line}: cannot parse CSV: {source}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// The line where parsing stopped.
        line: u64,
        /// The parser's error.
        #[source]
        source: ::csv::Error,
    },
    /// The file is not valid Parquet (or cannot be decoded).
    #[error("{path}: not a readable Parquet file: {source}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The Parquet reader's error.
        #[source]
        source: ::parquet::errors::ParquetError,
    },
    /// A column the target table declares non-nullable is absent from the file.
    #[error(
        "{path}: column `{column}` is required by the table (not nullable) but the file has no such column"
    )]
    MissingRequiredColumn {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
    },
    /// A typed (Parquet) column cannot be converted to the type the table has.
    #[error(
        "{path}: column `{column}` has type {found} but the table expects {expected}: {reason}"
    )]
    IncompatibleColumn {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
        /// The file's type.
        found: DataType,
        /// The table's type.
        expected: DataType,
        /// Why the conversion failed.
        reason: String,
    },
    /// Arrow failed while assembling batches (a bug, or a schema Arrow cannot build).
    #[error("{path}: {context}: {source}")]
    Arrow {
        /// The file.
        path: PathBuf,
        /// What was being done.
        context: String,
        /// Arrow's error.
        #[source]
        source: ArrowError,
    },
}

/// Reads one landing file into Arrow batches, sending unreadable rows to [`FileBatches::rejected`].
/// This holds the whole file's rows; [`stream_file`] hands them on as they are read instead.
///
/// ```no_run
/// use sluice_ingest::formats::{read_file, FileFormat, ReadOptions};
/// let out = read_file("landing/orders.csv".as_ref(), &ReadOptions::new(FileFormat::Csv))?;
/// println!("{} rows, {} rejected", out.rows, out.rejected.len());
/// # Ok::<(), sluice_ingest::formats::FormatError>(())
/// ```
pub fn read_file(path: &Path, opts: &ReadOptions) -> Result<FileBatches, FormatError> {
    let mut collect = sink::Collect::default();
    let summary = stream_file(path, opts, &mut collect)?;
    Ok(FileBatches {
        schema: summary.schema,
        batches: collect.batches,
        rejected: collect.rejected,
        rows: summary.rows,
    })
}

/// Reads one landing file, handing its schema, accepted batches and rejected rows to `sink` as they
/// are read, in memory bounded by a batch (plus the rows a JSON Lines file rejects, which are handed
/// on after its batches). The rows, rejections and schema are exactly those of [`read_file`].
pub fn stream_file(
    path: &Path,
    opts: &ReadOptions,
    sink: &mut dyn FileSink,
) -> Result<FileSummary, FormatError> {
    if opts.batch_size == 0 {
        return Err(FormatError::InvalidOptions {
            reason: "batch_size must be at least 1".to_string(),
        });
    }
    let out = match opts.format {
        FileFormat::Csv => self::csv::read_csv(path, opts, sink)?,
        FileFormat::Jsonl => self::jsonl::read_jsonl(path, opts, sink)?,
        FileFormat::Parquet => self::parquet::read_parquet(path, opts, sink)?,
    };
    match &out.first_reason {
        None => {
            tracing::debug!(path = %path.display(), format = %opts.format, rows = out.rows, "read file");
        }
        Some(first_reason) => tracing::warn!(
            path = %path.display(),
            format = %opts.format,
            rows = out.rows,
            rejected = out.rejected,
            first_reason = %first_reason,
            "read file with rejected rows"
        ),
    }
    Ok(out)
}

/// Opens a file, naming the path on failure.
fn open_file(path: &Path) -> Result<std::fs::File, FormatError> {
    std::fs::File::open(path).map_err(|source| io_error(path, source))
}

fn io_error(path: &Path, source: std::io::Error) -> FormatError {
    FormatError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Shortens a value quoted in a rejection reason; the full text is in [`RejectedRow::raw`].
fn quote_value(value: &str) -> String {
    const MAX_CHARS: usize = 120;
    if value.chars().count() <= MAX_CHARS {
        format!("{value:?}")
    } else {
        let head: String = value.chars().take(MAX_CHARS).collect();
        format!("{head:?}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_and_extensions() {
        assert_eq!("CSV".parse::<FileFormat>().unwrap(), FileFormat::Csv);
        assert_eq!("ndjson".parse::<FileFormat>().unwrap(), FileFormat::Jsonl);
        assert_eq!("json".parse::<FileFormat>().unwrap(), FileFormat::Jsonl);
        assert_eq!(
            FileFormat::from_path(Path::new("a/b.PARQUET")).unwrap(),
            FileFormat::Parquet
        );
        let err = "xml".parse::<FileFormat>().unwrap_err().to_string();
        assert!(err.contains("`xml`") && err.contains("parquet"), "{err}");
        let err = FileFormat::from_path(Path::new("data/orders")).unwrap_err();
        assert!(err.to_string().starts_with("data/orders:"), "{err}");
    }

    #[test]
    fn missing_file_and_zero_batch_size_are_errors() {
        let err = read_file(Path::new("/nonexistent/x.csv"), &ReadOptions::default()).unwrap_err();
        assert!(matches!(err, FormatError::Io { .. }));
        assert!(err.to_string().contains("/nonexistent/x.csv"), "{err}");
        let opts = ReadOptions {
            batch_size: 0,
            ..ReadOptions::default()
        };
        let err = read_file(Path::new("x.csv"), &opts).unwrap_err();
        assert!(matches!(err, FormatError::InvalidOptions { .. }));
    }

    #[test]
    fn long_values_are_shortened_in_reasons() {
        assert_eq!(quote_value("abc"), "\"abc\"");
        let long = "x".repeat(500);
        let q = quote_value(&long);
        assert!(q.len() < 130 && q.ends_with('…'), "{q}");
    }
}
