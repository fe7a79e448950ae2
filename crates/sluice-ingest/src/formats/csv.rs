//! CSV → Arrow, row-exactly, in one pass.
//!
//! The file is streamed from disk and parsed once with the `csv` crate (flexible, so a short or long
//! row is seen rather than aborting the file). When some column has neither a table type nor a
//! declared one, the first [`CSV_SAMPLE_ROWS`] records (at most [`CSV_SAMPLE_BYTES`] of text) are held
//! while their types are inferred (ignoring rows with the wrong field count), then converted like the
//! rest: memory holds the sample, then one record and one batch at a time. Each row is converted
//! with the column builders of `convert`, rejecting a row when its field count is wrong, a field is
//! not UTF-8, or a value does not fit its column (past the sample, a value that does not fit an
//! inferred type: the reason says to declare the column's type), and a batch ends at `batch_size`
//! rows or [`BATCH_BYTES`] of text. Line numbers are physical (the header is line 1; a quoted field
//! spanning lines counts every line), and the raw text of a rejected row is read back from the file
//! by its byte range, so quarantine shows exactly what arrived.

use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use ::csv::ByteRecord;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use super::convert::{Cell, ColumnBuilder, ParseFailure};
use super::schema::{
    TextInference, check_required_columns, conform_batch, merge_schemas, type_lookups,
};
use super::sink::Emitter;
use super::{
    BATCH_BYTES, CSV_SAMPLE_BYTES, CSV_SAMPLE_ROWS, FileSink, FileSummary, FormatError,
    MAX_COLUMNS, ReadOptions, RejectedRow, io_error, open_file, quote_value,
};

/// Reads a CSV file into `sink`; see the module documentation.
pub(crate) fn read_csv(
    path: &Path,
    opts: &ReadOptions,
    sink: &mut dyn FileSink,
) -> Result<FileSummary, FormatError> {
    let mut records = Records::open(path, opts)?;
    let names = read_header(path, opts, &mut records)?;
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
        records.sample(CSV_SAMPLE_ROWS, CSV_SAMPLE_BYTES)?;
        infer_types(records.replay.iter().map(|(record, _)| record), &fixed)
    } else {
        vec![None; names.len()]
    };
    let is_inferred: Vec<bool> = fixed.iter().map(Option::is_none).collect();
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
    let mut out = Emitter::new(sink, schema);
    convert_rows(path, opts, file_schema, &is_inferred, records, &mut out)?;
    Ok(out.finish())
}

/// The column names: the header's (an empty name becomes `column_N`), or `column_1..n` after the
/// first row's width when the file has no header (that row is then put back, to be read as data).
fn read_header(
    path: &Path,
    opts: &ReadOptions,
    records: &mut Records<'_>,
) -> Result<Vec<String>, FormatError> {
    if !records.next()? {
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
        records.put_back();
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
                line: records.locate()?.line,
                column: name,
            });
        }
        names.push(name);
    }
    Ok(names)
}

/// Infers the type of every column without a fixed type, over the sampled rows with the right
/// field count.
fn infer_types<'r>(
    sample: impl Iterator<Item = &'r ByteRecord>,
    fixed: &[Option<(DataType, bool)>],
) -> Vec<Option<DataType>> {
    let mut inference: Vec<Option<TextInference>> = fixed
        .iter()
        .map(|f| f.is_none().then(TextInference::default))
        .collect();
    for record in sample {
        if record.len() != fixed.len() {
            continue;
        }
        let Ok(fields) = record
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
    inference
        .into_iter()
        .map(|s| s.map(|s| s.data_type()))
        .collect()
}

/// Converts every row (the sample first) or rejects it, handing batches and rejections to `out` as
/// they come. `inferred` says which columns have an inferred type, for the reasons of rejections.
fn convert_rows(
    path: &Path,
    opts: &ReadOptions,
    file_schema: SchemaRef,
    inferred: &[bool],
    mut records: Records<'_>,
    out: &mut Emitter<'_>,
) -> Result<(), FormatError> {
    let fields = file_schema.fields();
    let width = fields.len();
    let mut builders: Vec<ColumnBuilder> = fields
        .iter()
        .map(|f| ColumnBuilder::new(f.data_type(), f.is_nullable()))
        .collect();
    let mut cells: Vec<Cell> = Vec::with_capacity(width);
    let mut in_batch = 0usize;
    let mut in_batch_bytes = 0usize;
    while records.next()? {
        let record = &records.record;
        let mut failure = None;
        if record.len() != width {
            failure = Some(format!("expected {width} fields, found {}", record.len()));
        } else {
            cells.clear();
            for (((value, builder), field), &inferred) in record
                .iter()
                .zip(&builders)
                .zip(fields.iter())
                .zip(inferred)
            {
                let Ok(text) = std::str::from_utf8(value) else {
                    failure = Some(format!(
                        "column `{}`: value is not valid UTF-8",
                        field.name()
                    ));
                    break;
                };
                match builder.parse(text) {
                    Ok(cell) => cells.push(cell),
                    Err(ParseFailure::Invalid) => {
                        // Only a row past the sample can miss an inferred type.
                        let hint = if inferred {
                            format!(
                                " (the type was inferred from the first {CSV_SAMPLE_ROWS} rows; \
                                 declare the column's type under `columns:` to read such values)"
                            )
                        } else {
                            String::new()
                        };
                        failure = Some(format!(
                            "column `{}`: expected {}, found {}{hint}",
                            field.name(),
                            field.data_type(),
                            quote_value(text)
                        ));
                        break;
                    }
                    Err(ParseFailure::NullNotAllowed) => {
                        failure = Some(format!(
                            "column `{}`: expected {}, found an empty value (the column is not nullable)",
                            field.name(),
                            field.data_type()
                        ));
                        break;
                    }
                }
            }
        }
        if let Some(reason) = failure {
            let named = (record.len() == width).then(|| {
                fields
                    .iter()
                    .zip(record.iter())
                    .map(|(f, v)| {
                        let text = String::from_utf8_lossy(v).into_owned();
                        (f.name().clone(), serde_json::Value::String(text))
                    })
                    .collect()
            });
            // Rare: only now is the record's exact line and text read back.
            let at = records.locate()?;
            let line = at.line;
            let row = RejectedRow {
                line,
                reason: format!("line {line}: {reason}"),
                raw: String::from_utf8_lossy(&at.raw).into_owned(),
                fields: named,
            };
            if !out.rejected(row) {
                return Ok(());
            }
            continue;
        }
        let appended = records
            .record
            .iter()
            .zip(builders.iter_mut())
            .zip(&cells)
            .try_for_each(|((value, builder), cell)| {
                // Checked above: every field of this record is UTF-8.
                let text = std::str::from_utf8(value).unwrap_or_default();
                builder.append(*cell, text)
            });
        if let Err(source) = appended {
            return Err(arrow_error(path, records.locate()?.line, source));
        }
        in_batch += 1;
        in_batch_bytes += records.record.as_slice().len();
        if in_batch == opts.batch_size || in_batch_bytes >= BATCH_BYTES {
            in_batch = 0;
            in_batch_bytes = 0;
            let batch = match flush(&mut builders, &file_schema, out.schema()) {
                Ok(batch) => batch,
                Err(source) => return Err(arrow_error(path, records.locate()?.line, source)),
            };
            if !out.batch(batch) {
                return Ok(());
            }
        }
    }
    if in_batch > 0 {
        let batch = flush(&mut builders, &file_schema, out.schema())
            .map_err(|source| arrow_error(path, 0, source))?;
        out.batch(batch);
    }
    Ok(())
}

/// Finishes the builders into one batch conformed to the result schema.
fn flush(
    builders: &mut [ColumnBuilder],
    file_schema: &SchemaRef,
    schema: &SchemaRef,
) -> Result<RecordBatch, arrow::error::ArrowError> {
    let columns = builders
        .iter_mut()
        .map(ColumnBuilder::finish)
        .collect::<Result<Vec<_>, _>>()?;
    let batch = RecordBatch::try_new(Arc::clone(file_schema), columns)?;
    conform_batch(&batch, schema)
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
struct Located {
    /// 1-based physical line where the record starts.
    line: u64,
    /// The record's text without its line terminator.
    raw: Vec<u8>,
}

/// The records of a CSV file, read as they are parsed.
struct Records<'a> {
    path: &'a Path,
    reader: ::csv::Reader<File>,
    /// The record most recently returned by [`Records::next`].
    record: ByteRecord,
    /// Byte offset where the parser stood after that record (its end).
    end: u64,
    /// A second handle on the file, to read a record's text back ([`Records::locate`]).
    raw_file: Option<File>,
    /// Records read ahead (the inference sample), with their end offsets: [`Records::next`]
    /// returns them before reading on.
    replay: VecDeque<(ByteRecord, u64)>,
}

impl<'a> Records<'a> {
    fn open(path: &'a Path, opts: &ReadOptions) -> Result<Self, FormatError> {
        let reader = ::csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(opts.csv_delimiter)
            .from_reader(open_file(path)?);
        Ok(Records {
            path,
            reader,
            record: ByteRecord::new(),
            end: 0,
            raw_file: None,
            replay: VecDeque::new(),
        })
    }

    /// Makes the next record [`Records::record`]: a read-ahead one, else the next one parsed;
    /// false at the end of the file.
    fn next(&mut self) -> Result<bool, FormatError> {
        if let Some((record, end)) = self.replay.pop_front() {
            self.record = record;
            self.end = end;
            return Ok(true);
        }
        let more = Self::read(self.path, &mut self.reader, &mut self.record)?;
        self.end = self.reader.position().byte();
        Ok(more)
    }

    fn read(
        path: &Path,
        reader: &mut ::csv::Reader<File>,
        record: &mut ByteRecord,
    ) -> Result<bool, FormatError> {
        reader
            .read_byte_record(record)
            .map_err(|source| FormatError::Csv {
                path: path.to_path_buf(),
                line: reader.position().line(),
                source,
            })
    }

    /// Makes the current record the next one [`Records::next`] returns again.
    fn put_back(&mut self) {
        let record = std::mem::replace(&mut self.record, ByteRecord::new());
        self.replay.push_front((record, self.end));
    }

    /// Reads ahead up to `rows` records or `bytes` of their text into [`Records::replay`].
    fn sample(&mut self, rows: usize, bytes: usize) -> Result<(), FormatError> {
        let mut held: usize = self.replay.iter().map(|(r, _)| r.as_slice().len()).sum();
        while self.replay.len() < rows && held < bytes {
            let mut record = ByteRecord::new();
            if !Self::read(self.path, &mut self.reader, &mut record)? {
                break;
            }
            held += record.as_slice().len();
            self.replay
                .push_back((record, self.reader.position().byte()));
        }
        Ok(())
    }

    /// The line and raw text of the current record, read back from the file.
    fn locate(&mut self) -> Result<Located, FormatError> {
        let (start, start_line) = self
            .record
            .position()
            .map_or((0, 1), |p| (p.byte(), p.line()));
        let file = match &mut self.raw_file {
            Some(file) => file,
            None => self.raw_file.insert(open_file(self.path)?),
        };
        let mut slice = Vec::new();
        file.seek(SeekFrom::Start(start))
            .and_then(|_| {
                file.take(self.end.saturating_sub(start))
                    .read_to_end(&mut slice)
            })
            .map_err(|source| io_error(self.path, source))?;
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
        Ok(Located {
            line: start_line + skipped_lines,
            raw: body[..body.len() - trailing].to_vec(),
        })
    }
}

#[cfg(test)]
mod tests;
