//! CSV → Arrow, row-exactly.
//!
//! The file is read into memory once and parsed twice with the `csv` crate (flexible, so a short or
//! long row is seen rather than aborting the file): the first pass infers the types of columns that
//! neither the table nor the source config types, ignoring rows with the wrong field count; the
//! second converts each row with the column builders of `convert`, rejecting a row when its field
//! count is wrong, a field is not UTF-8, or a value does not fit its column. Line numbers are
//! physical (the header is line 1; a quoted field spanning lines counts every line), and the raw text
//! of a rejected row is sliced from the file bytes, so quarantine shows exactly what arrived.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use ::csv::ByteRecord;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use super::convert::{Cell, ColumnBuilder, ParseFailure};
use super::schema::{
    TextInference, check_required_columns, conform_batch, merge_schemas, type_lookups,
};
use super::{
    FileBatches, FormatError, MAX_COLUMNS, ReadOptions, RejectedRow, quote_value, read_bytes,
};

/// Reads a CSV file; see the module documentation.
pub(crate) fn read_csv(path: &Path, opts: &ReadOptions) -> Result<FileBatches, FormatError> {
    let bytes = read_bytes(path)?;
    let names = read_header(path, &bytes, opts)?;
    let existing = opts.existing_schema.as_deref();
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    check_required_columns(path, existing, &name_refs)?;

    // Types fixed by the table or the source config; `None` = infer. Looked up by hash: a linear
    // search per column is quadratic in a wide file.
    let (table_fields, declared) = type_lookups(existing, &opts.declared);
    let fixed: Vec<Option<(DataType, bool)>> = names
        .iter()
        .map(|name| {
            let declared = declared.get(name.as_str()).copied();
            let field = existing
                .zip(table_fields.get(name.as_str()))
                .map(|(s, &i)| s.field(i));
            match field {
                Some(field) => {
                    if declared.is_some_and(|d| d != field.data_type()) {
                        tracing::warn!(
                            path = %path.display(),
                            column = %name,
                            table_type = %field.data_type(),
                            "declared type differs from the table's; keeping the table's type"
                        );
                    }
                    Some((field.data_type().clone(), field.is_nullable()))
                }
                None => declared.map(|d| (d.clone(), true)),
            }
        })
        .collect();
    let inferred = if fixed.iter().any(Option::is_none) {
        infer_types(path, &bytes, opts, &fixed)?
    } else {
        vec![None; names.len()]
    };
    let fields: Vec<Field> = names
        .iter()
        .zip(fixed.into_iter().zip(inferred))
        .map(|(name, types)| match types {
            (Some((data_type, nullable)), _) => Field::new(name, data_type, nullable),
            (None, inferred) => Field::new(name, inferred.unwrap_or(DataType::Utf8), true),
        })
        .collect();
    let file_schema = Arc::new(Schema::new(fields));
    let schema = match existing {
        Some(existing) => Arc::new(merge_schemas(existing, &file_schema)),
        None => Arc::clone(&file_schema),
    };
    convert_rows(path, &bytes, opts, file_schema, schema)
}

/// The column names: the header's (an empty name becomes `column_N`), or `column_1..n` after the
/// first row's width when the file has no header.
fn read_header(path: &Path, bytes: &[u8], opts: &ReadOptions) -> Result<Vec<String>, FormatError> {
    let mut records = Records::new(path, bytes, opts);
    let Some(first) = records.next()? else {
        return Err(FormatError::EmptyCsv {
            path: path.to_path_buf(),
        });
    };
    let width = records.record.len();
    if width > MAX_COLUMNS {
        return Err(FormatError::TooManyColumns {
            path: path.to_path_buf(),
            columns: width,
            max: MAX_COLUMNS,
        });
    }
    if !opts.csv_has_header {
        return Ok((1..=width).map(|i| format!("column_{i}")).collect());
    }
    let mut names: Vec<String> = Vec::with_capacity(width);
    let mut seen: HashSet<String> = HashSet::with_capacity(width);
    for (i, raw_name) in records.record.iter().enumerate() {
        let trimmed = String::from_utf8_lossy(raw_name).trim().to_string();
        let name = if trimmed.is_empty() {
            let name = format!("column_{}", i + 1);
            tracing::warn!(path = %path.display(), column = %name, "CSV header has an empty column name");
            name
        } else {
            trimmed
        };
        if !seen.insert(name.clone()) {
            return Err(FormatError::DuplicateColumn {
                path: path.to_path_buf(),
                line: first.line,
                column: name,
            });
        }
        names.push(name);
    }
    Ok(names)
}

/// Infers the type of every column without a fixed type, over all rows with the right field count.
fn infer_types(
    path: &Path,
    bytes: &[u8],
    opts: &ReadOptions,
    fixed: &[Option<(DataType, bool)>],
) -> Result<Vec<Option<DataType>>, FormatError> {
    let mut inference: Vec<Option<TextInference>> = fixed
        .iter()
        .map(|f| f.is_none().then(TextInference::default))
        .collect();
    let mut records = Records::new(path, bytes, opts);
    if opts.csv_has_header {
        records.next()?;
    }
    while records.next()?.is_some() {
        if records.record.len() != fixed.len() {
            continue;
        }
        let Ok(fields) = records
            .record
            .iter()
            .map(std::str::from_utf8)
            .collect::<Result<Vec<&str>, _>>()
        else {
            continue;
        };
        for (state, value) in inference.iter_mut().zip(fields) {
            if let Some(state) = state {
                state.observe(value);
            }
        }
        if inference.iter().flatten().all(TextInference::is_settled) {
            break;
        }
    }
    Ok(inference
        .into_iter()
        .map(|s| s.map(|s| s.data_type()))
        .collect())
}

/// The second pass: converts every row or rejects it.
fn convert_rows(
    path: &Path,
    bytes: &[u8],
    opts: &ReadOptions,
    file_schema: SchemaRef,
    schema: SchemaRef,
) -> Result<FileBatches, FormatError> {
    let fields = file_schema.fields();
    let width = fields.len();
    let mut builders: Vec<ColumnBuilder> = fields
        .iter()
        .map(|f| ColumnBuilder::new(f.data_type(), f.is_nullable()))
        .collect();
    let mut out = FileBatches {
        schema: Arc::clone(&schema),
        batches: Vec::new(),
        rejected: Vec::new(),
        rows: 0,
    };
    let mut cells: Vec<Cell> = Vec::with_capacity(width);
    let mut in_batch = 0usize;
    let mut records = Records::new(path, bytes, opts);
    if opts.csv_has_header {
        records.next()?;
    }
    while let Some(at) = records.next()? {
        let line = at.line;
        let reject = |reason: String| RejectedRow {
            line,
            reason,
            raw: String::from_utf8_lossy(at.raw).into_owned(),
        };
        let record = &records.record;
        if record.len() != width {
            out.rejected.push(reject(format!(
                "line {line}: expected {width} fields, found {}",
                record.len()
            )));
            continue;
        }
        cells.clear();
        let mut failure = None;
        for ((value, builder), field) in record.iter().zip(&builders).zip(fields.iter()) {
            let Ok(text) = std::str::from_utf8(value) else {
                failure = Some(format!(
                    "line {line}: column `{}`: value is not valid UTF-8",
                    field.name()
                ));
                break;
            };
            match builder.parse(text) {
                Ok(cell) => cells.push(cell),
                Err(ParseFailure::Invalid) => {
                    failure = Some(format!(
                        "line {line}: column `{}`: expected {}, found {}",
                        field.name(),
                        field.data_type(),
                        quote_value(text)
                    ));
                    break;
                }
                Err(ParseFailure::NullNotAllowed) => {
                    failure = Some(format!(
                        "line {line}: column `{}`: expected {}, found an empty value (the column is not nullable)",
                        field.name(),
                        field.data_type()
                    ));
                    break;
                }
            }
        }
        if let Some(reason) = failure {
            out.rejected.push(reject(reason));
            continue;
        }
        for ((value, builder), cell) in record.iter().zip(builders.iter_mut()).zip(&cells) {
            // Checked above: every field of this record is UTF-8.
            let text = std::str::from_utf8(value).unwrap_or_default();
            builder
                .append(*cell, text)
                .map_err(|source| arrow_error(path, line, source))?;
        }
        in_batch += 1;
        if in_batch == opts.batch_size {
            flush(path, line, &mut builders, &file_schema, &mut out)?;
            in_batch = 0;
        }
    }
    if in_batch > 0 {
        flush(path, 0, &mut builders, &file_schema, &mut out)?;
    }
    Ok(out)
}

/// Finishes the builders into one batch conformed to the result schema.
fn flush(
    path: &Path,
    line: u64,
    builders: &mut [ColumnBuilder],
    file_schema: &SchemaRef,
    out: &mut FileBatches,
) -> Result<(), FormatError> {
    let mut build = || {
        let columns = builders
            .iter_mut()
            .map(ColumnBuilder::finish)
            .collect::<Result<Vec<_>, _>>()?;
        let batch = RecordBatch::try_new(Arc::clone(file_schema), columns)?;
        conform_batch(&batch, &out.schema)
    };
    let batch = build().map_err(|source| arrow_error(path, line, source))?;
    out.rows += batch.num_rows() as u64;
    out.batches.push(batch);
    Ok(())
}

fn arrow_error(path: &Path, line: u64, source: arrow::error::ArrowError) -> FormatError {
    FormatError::Arrow {
        path: path.to_path_buf(),
        context: if line > 0 {
            format!("building the batch that ends at line {line}")
        } else {
            "building the last batch".to_string()
        },
        source,
    }
}

/// Where a record is in the file.
struct Located<'a> {
    /// 1-based physical line where the record starts.
    line: u64,
    /// The record's text without its line terminator.
    raw: &'a [u8],
}

/// The records of a CSV buffer, with their line and raw text.
struct Records<'a> {
    path: &'a Path,
    bytes: &'a [u8],
    reader: ::csv::Reader<&'a [u8]>,
    /// The record most recently returned by [`Records::next`].
    record: ByteRecord,
}

impl<'a> Records<'a> {
    fn new(path: &'a Path, bytes: &'a [u8], opts: &ReadOptions) -> Self {
        let reader = ::csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(opts.csv_delimiter)
            .from_reader(bytes);
        Records {
            path,
            bytes,
            reader,
            record: ByteRecord::new(),
        }
    }

    fn next(&mut self) -> Result<Option<Located<'a>>, FormatError> {
        let more = self
            .reader
            .read_byte_record(&mut self.record)
            .map_err(|source| FormatError::Csv {
                path: self.path.to_path_buf(),
                line: self.reader.position().line(),
                source,
            })?;
        if !more {
            return Ok(None);
        }
        let (start, start_line) = self
            .record
            .position()
            .map_or((0, 1), |p| (p.byte(), p.line()));
        let end = self.reader.position().byte();
        let slice = usize::try_from(start)
            .ok()
            .zip(usize::try_from(end).ok())
            .and_then(|(s, e)| self.bytes.get(s..e))
            .unwrap_or_default();
        // The recorded start can precede blank lines (or a terminator) the parser skipped.
        let leading = slice
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        let skipped_lines = slice[..leading].iter().filter(|b| **b == b'\n').count() as u64;
        let body = &slice[leading..];
        let trailing = body
            .iter()
            .rev()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        Ok(Some(Located {
            line: start_line + skipped_lines,
            raw: &body[..body.len() - trailing],
        }))
    }
}

#[cfg(test)]
mod tests;
