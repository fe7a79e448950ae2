//! JSON Lines → Arrow, row-exactly.
//!
//! Each non-blank line is parsed with `serde_json`; a line that is not a JSON object is rejected with
//! serde's message. The schema is inferred over the good lines with Arrow's JSON inference (nested
//! objects → Struct, arrays → List); when two lines disagree in a way inference cannot reconcile
//! (an object here, a number there), inference is redone line by line and the later, conflicting
//! line is rejected. Declared and table types then override the inferred ones for top-level
//! columns, and struct columns are merged with the table's so new nested fields evolve it.
//!
//! Decoding uses `arrow_json`'s decoder (`Decoder::serialize` over the parsed values) in chunks of
//! `batch_size` lines (or [`BATCH_BYTES`] of text, whichever comes first). If a chunk fails (a value that does not fit its type), the chunk is decoded row by
//! row to find the culprits, which are rejected with Arrow's message and the column it concerns,
//! and the rest is kept. The file is streamed from disk and parsed twice (inference, then decoding)
//! rather than held, so memory stays near one chunk (plus the rejected rows, handed on last in line
//! order).

use std::borrow::Cow;
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::json::reader::{Decoder, ReaderBuilder, infer_json_schema_from_iterator};
use arrow::record_batch::RecordBatch;
use serde_json::Value;

use super::schema::{by_name, merge_schemas, replace_null_types, type_lookups};
use super::sink::{Collect, Emitter};
use super::{
    BATCH_BYTES, FileBatches, FileSink, FileSummary, FormatError, MAX_COLUMNS, ReadOptions,
    RejectedRow, io_error, open_file, quote_value,
};

/// Reads a JSON Lines file into `sink`; see the module documentation.
pub(crate) fn read_jsonl(
    path: &Path,
    opts: &ReadOptions,
    sink: &mut dyn FileSink,
) -> Result<FileSummary, FormatError> {
    read_lines(path, LineSource::File(path), opts, sink)
}

/// Reads JSON Lines held in memory (an HTTP page's records, one per line); `path` only names the
/// origin in errors.
pub(crate) fn read_jsonl_bytes(
    path: &Path,
    bytes: &[u8],
    opts: &ReadOptions,
) -> Result<FileBatches, FormatError> {
    let mut collect = Collect::default();
    let summary = read_lines(path, LineSource::Bytes(bytes), opts, &mut collect)?;
    Ok(FileBatches {
        schema: summary.schema,
        batches: collect.batches,
        rejected: collect.rejected,
        rows: summary.rows,
    })
}

/// Both passes over the lines of `source`: batches go to `sink` as they are decoded, the rejected
/// rows (of both passes, kept aside) follow in line order.
fn read_lines(
    path: &Path,
    source: LineSource<'_>,
    opts: &ReadOptions,
    sink: &mut dyn FileSink,
) -> Result<FileSummary, FormatError> {
    let (inferred, mut rejected) = infer_schema(path, source)?;
    // Each line is bounded in `parse_line`; many lines of different keys add up here.
    if inferred.fields().len() > MAX_COLUMNS {
        return Err(FormatError::TooManyColumns {
            path: path.to_path_buf(),
            columns: inferred.fields().len(),
            max: MAX_COLUMNS,
        });
    }
    let skip: HashSet<u64> = rejected.iter().map(|r| r.line).collect();

    let existing = opts.existing_schema.as_deref();
    let (table_fields, declared) = type_lookups(existing, &opts.declared);
    let fields: Vec<FieldRef> = inferred
        .fields()
        .iter()
        .map(|f| {
            let in_table = table_fields.contains_key(f.name().as_str());
            let data_type = match declared.get(f.name().as_str()).copied() {
                Some(declared) if !in_table => declared.clone(),
                _ => replace_null_types(f.data_type()),
            };
            Arc::new(Field::new(f.name(), data_type, true))
        })
        .collect();
    let file_schema = Schema::new(fields);
    let schema = Arc::new(match existing {
        Some(existing) => merge_schemas(existing, &file_schema),
        None => file_schema,
    });

    let mut out = Emitter::new(sink, Arc::clone(&schema));
    let mut chunk = Chunk {
        path,
        schema: &schema,
        batch_size: opts.batch_size,
        rows: Vec::with_capacity(opts.batch_size.min(65_536)),
        bytes: 0,
    };
    let integer_columns: Vec<(&str, &DataType)> = schema
        .fields()
        .iter()
        .filter(|f| f.data_type().is_integer())
        .map(|f| (f.name().as_str(), f.data_type()))
        .collect();
    for item in source.lines(path)? {
        let (line, raw) = item?;
        if skip.contains(&line) {
            continue;
        }
        // Lines that parsed during inference parse again; a failure here would be a bug, but the
        // row is still not lost.
        let value = match parse_line(line, &raw) {
            Ok(value) => value,
            Err(reason) => {
                rejected.push(rejected_row(line, reason, &raw));
                continue;
            }
        };
        if let Some(reason) = check_integers(&value, &integer_columns) {
            rejected.push(rejected_row(line, format!("line {line}: {reason}"), &raw));
            continue;
        }
        chunk.bytes += raw.len();
        chunk.rows.push(Row { line, raw, value });
        let full = chunk.rows.len() == opts.batch_size || chunk.bytes >= BATCH_BYTES;
        if full && !chunk.decode(&mut out, &mut rejected)? {
            return Ok(out.finish());
        }
    }
    if !chunk.decode(&mut out, &mut rejected)? {
        return Ok(out.finish());
    }
    rejected.sort_by_key(|r| r.line);
    for row in rejected {
        if !out.rejected(row) {
            break;
        }
    }
    Ok(out.finish())
}

/// Where the lines come from: a file (read from disk again for each pass) or bytes in memory.
#[derive(Clone, Copy)]
enum LineSource<'a> {
    File(&'a Path),
    Bytes(&'a [u8]),
}

/// A line's number and its text without the line terminator.
type Line<'a> = (u64, Cow<'a, [u8]>);

impl<'a> LineSource<'a> {
    /// The non-blank lines: (1-based line number, text without the line terminator).
    fn lines(
        self,
        path: &Path,
    ) -> Result<Box<dyn Iterator<Item = Result<Line<'a>, FormatError>> + 'a>, FormatError> {
        let all: Box<dyn Iterator<Item = Result<Line<'a>, FormatError>> + 'a> = match self {
            LineSource::Bytes(bytes) => Box::new(
                bytes
                    .split(|b| *b == b'\n')
                    .zip(1u64..)
                    .map(|(raw, line)| Ok((line, Cow::Borrowed(raw)))),
            ),
            LineSource::File(file) => {
                let mut reader = BufReader::new(open_file(file)?);
                let path = path.to_path_buf();
                let mut line = 0u64;
                let mut done = false;
                Box::new(std::iter::from_fn(move || {
                    if done {
                        return None;
                    }
                    let mut buf = Vec::new();
                    match reader.read_until(b'\n', &mut buf) {
                        Ok(_) => {
                            line += 1;
                            // As `split`: the text after the last terminator is one more line.
                            match buf.strip_suffix(b"\n") {
                                Some(body) => buf.truncate(body.len()),
                                None => done = true,
                            }
                            Some(Ok((line, Cow::Owned(buf))))
                        }
                        Err(source) => {
                            done = true;
                            Some(Err(io_error(&path, source)))
                        }
                    }
                }))
            }
        };
        Ok(Box::new(all.filter_map(|item| match item {
            Ok((line, raw)) => {
                let raw = match raw {
                    Cow::Borrowed(raw) => Cow::Borrowed(raw.strip_suffix(b"\r").unwrap_or(raw)),
                    Cow::Owned(mut raw) => {
                        if raw.last() == Some(&b'\r') {
                            raw.pop();
                        }
                        Cow::Owned(raw)
                    }
                };
                (!raw.iter().all(u8::is_ascii_whitespace)).then_some(Ok((line, raw)))
            }
            Err(e) => Some(Err(e)),
        })))
    }
}

/// Parses one line into a JSON object, or explains why it is not one.
fn parse_line(line: u64, raw: &[u8]) -> Result<Value, String> {
    let text =
        std::str::from_utf8(raw).map_err(|e| format!("line {line}: not valid UTF-8: {e}"))?;
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("line {line}: invalid JSON: {e}"))?;
    let kind = match &value {
        Value::Object(o) if o.len() > MAX_COLUMNS => {
            return Err(format!(
                "line {line}: a record of {} keys, more than the {MAX_COLUMNS} columns a file may have",
                o.len()
            ));
        }
        Value::Object(_) => return Ok(value),
        Value::Array(_) => "an array",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Null => "null",
    };
    Err(format!("line {line}: expected a JSON object, found {kind}"))
}

fn rejected_row(line: u64, reason: String, raw: &[u8]) -> RejectedRow {
    RejectedRow {
        line,
        reason,
        raw: String::from_utf8_lossy(raw).into_owned(),
        fields: None,
    }
}

/// Infers the schema of the good lines; returns it with the rejected lines (unparseable, or
/// conflicting with earlier lines).
fn infer_schema(
    path: &Path,
    source: LineSource<'_>,
) -> Result<(Schema, Vec<RejectedRow>), FormatError> {
    let mut rejected = Vec::new();
    let mut failed = None;
    let mut lines = source.lines(path)?;
    let values = std::iter::from_fn(|| {
        loop {
            match lines.next()? {
                Ok((line, raw)) => match parse_line(line, &raw) {
                    Ok(value) => return Some(Ok::<_, ArrowError>(value)),
                    Err(reason) => rejected.push(rejected_row(line, reason, &raw)),
                },
                Err(e) => {
                    failed = Some(e);
                    return None;
                }
            }
        }
    });
    let inferred = infer_json_schema_from_iterator(values);
    if let Some(e) = failed {
        return Err(e);
    }
    match inferred {
        Ok(schema) => Ok((schema, rejected)),
        Err(e) => {
            tracing::debug!(error = %e, "JSON lines disagree on types; inferring line by line");
            infer_row_by_row(path, source)
        }
    }
}

/// Inference that accepts lines in order and rejects a line whose types cannot be reconciled with
/// the lines before it.
fn infer_row_by_row(
    path: &Path,
    source: LineSource<'_>,
) -> Result<(Schema, Vec<RejectedRow>), FormatError> {
    let mut rejected = Vec::new();
    let mut fields = Fields::empty();
    for item in source.lines(path)? {
        let (line, raw) = item?;
        let value = match parse_line(line, &raw) {
            Ok(value) => value,
            Err(reason) => {
                rejected.push(rejected_row(line, reason, &raw));
                continue;
            }
        };
        let row =
            match infer_json_schema_from_iterator(std::iter::once(Ok::<_, ArrowError>(&value))) {
                Ok(row) => row,
                Err(e) => {
                    let reason = format!("line {line}: {}", arrow_message(&e));
                    rejected.push(rejected_row(line, reason, &raw));
                    continue;
                }
            };
        match coerce_fields(&fields, row.fields()) {
            Ok(merged) => fields = merged,
            Err(Conflict {
                column,
                earlier,
                here,
            }) => {
                let reason = format!(
                    "line {line}: column `{column}`: {here} conflicts with {earlier} in earlier lines"
                );
                rejected.push(rejected_row(line, reason, &raw));
            }
        }
    }
    Ok((Schema::new(fields), rejected))
}

/// Two inferred types that cannot be reconciled.
struct Conflict {
    column: String,
    earlier: DataType,
    here: DataType,
}

/// Unions inferred fields with the same coercions as Arrow's inference (Int64 + Float64 →
/// Float64, scalar + list → list, other scalar mixes → Utf8, structs recursively); a struct against
/// a non-struct is a conflict.
fn coerce_fields(earlier: &Fields, here: &Fields) -> Result<Fields, Conflict> {
    let mut out: Vec<FieldRef> = Vec::with_capacity(earlier.len() + here.len());
    let here_by_name = by_name(here);
    let earlier_by_name = by_name(earlier);
    for field in earlier.iter() {
        match here_by_name.get(field.name().as_str()) {
            Some(&i) => {
                let other = &here[i];
                let data_type =
                    coerce(field.data_type(), other.data_type()).ok_or_else(|| Conflict {
                        column: field.name().clone(),
                        earlier: field.data_type().clone(),
                        here: other.data_type().clone(),
                    })?;
                out.push(Arc::new(Field::new(field.name(), data_type, true)));
            }
            None => out.push(Arc::clone(field)),
        }
    }
    for field in here.iter() {
        if !earlier_by_name.contains_key(field.name().as_str()) {
            out.push(Arc::clone(field));
        }
    }
    Ok(Fields::from(out))
}

fn coerce(a: &DataType, b: &DataType) -> Option<DataType> {
    let list_of =
        |element: DataType| DataType::List(Arc::new(Field::new_list_field(element, true)));
    match (a, b) {
        _ if a == b => Some(a.clone()),
        (DataType::Null, other) | (other, DataType::Null) => Some(other.clone()),
        (DataType::Int64, DataType::Float64) | (DataType::Float64, DataType::Int64) => {
            Some(DataType::Float64)
        }
        (DataType::Struct(x), DataType::Struct(y)) => {
            coerce_fields(x, y).ok().map(DataType::Struct)
        }
        (DataType::Struct(_), _) | (_, DataType::Struct(_)) => None,
        (DataType::List(x), DataType::List(y)) => coerce(x.data_type(), y.data_type()).map(list_of),
        (DataType::List(x), other) | (other, DataType::List(x)) => {
            coerce(x.data_type(), other).map(list_of)
        }
        _ => Some(DataType::Utf8),
    }
}

/// Arrow's JSON decoder turns 1.5 (or "1.5") into 1 for an integer column; such a value is
/// rejected instead. Returns the reason for the first offending column.
fn check_integers(value: &Value, columns: &[(&str, &DataType)]) -> Option<String> {
    let object = value.as_object()?;
    columns.iter().find_map(|(name, data_type)| {
        let found = object.get(*name)?;
        let fits = match found {
            Value::Number(n) => {
                n.is_i64()
                    || n.is_u64()
                    || n.as_f64()
                        .is_some_and(|x| x.is_finite() && x.fract() == 0.0)
            }
            Value::String(s) => s.parse::<i64>().is_ok() || s.parse::<u64>().is_ok(),
            // Anything else is left to the decoder, which names the problem.
            _ => true,
        };
        if fits {
            return None;
        }
        let shown = match found {
            Value::String(s) => quote_value(s),
            other => other.to_string(),
        };
        Some(format!(
            "column `{name}`: expected {data_type}, found {shown}"
        ))
    })
}

/// A parsed line waiting to be decoded.
struct Row<'a> {
    line: u64,
    raw: Cow<'a, [u8]>,
    value: Value,
}

/// Rows waiting to be decoded into one batch.
struct Chunk<'a, 'r> {
    path: &'a Path,
    schema: &'a SchemaRef,
    batch_size: usize,
    rows: Vec<Row<'r>>,
    /// Bytes of line text in `rows`.
    bytes: usize,
}

impl Chunk<'_, '_> {
    fn decoder(&self) -> Result<Decoder, FormatError> {
        decoder_for(self.schema, self.batch_size).map_err(|source| FormatError::Arrow {
            path: self.path.to_path_buf(),
            context: "building a JSON decoder for the table schema".to_string(),
            source,
        })
    }

    /// Decodes the pending rows into a batch for `out`, adding the rows that do not fit the schema
    /// to `rejected`. Returns false when `out` stopped the read.
    fn decode(
        &mut self,
        out: &mut Emitter<'_>,
        rejected: &mut Vec<RejectedRow>,
    ) -> Result<bool, FormatError> {
        if self.rows.is_empty() {
            return Ok(!out.stopped());
        }
        let values: Vec<&Value> = self.rows.iter().map(|r| &r.value).collect();
        let batch = match decode_values(self.decoder()?, &values) {
            Ok(batch) => batch,
            Err(_) => {
                // Find the culprits one row at a time, then decode the rest together.
                let mut good: Vec<&Value> = Vec::with_capacity(values.len());
                for row in &self.rows {
                    if let Err(e) =
                        decode_values(self.decoder()?, std::slice::from_ref(&&row.value))
                    {
                        let reason = format!(
                            "line {}: {}",
                            row.line,
                            locate_failure(&row.value, self.schema, &e)
                        );
                        rejected.push(rejected_row(row.line, reason, &row.raw));
                    } else {
                        good.push(&row.value);
                    }
                }
                let first_line = self.rows.first().map_or(0, |r| r.line);
                decode_values(self.decoder()?, &good).map_err(|source| FormatError::Arrow {
                    path: self.path.to_path_buf(),
                    context: format!(
                        "decoding the rows from line {first_line} that decoded one by one"
                    ),
                    source,
                })?
            }
        };
        self.rows.clear();
        self.bytes = 0;
        Ok(match batch {
            Some(batch) => out.batch(batch),
            None => !out.stopped(),
        })
    }
}

fn decoder_for(schema: &SchemaRef, batch_size: usize) -> Result<Decoder, ArrowError> {
    ReaderBuilder::new(Arc::clone(schema))
        .with_batch_size(batch_size)
        .with_coerce_primitive(true)
        .build_decoder()
}

/// Decodes `values` with a fresh decoder (a failed flush leaves a decoder unusable).
fn decode_values(
    mut decoder: Decoder,
    values: &[&Value],
) -> Result<Option<RecordBatch>, ArrowError> {
    decoder.serialize(values)?;
    decoder.flush()
}

/// Names the top-level column a row fails on, by decoding it against one column at a time.
fn locate_failure(value: &Value, schema: &SchemaRef, error: &ArrowError) -> String {
    for field in schema.fields() {
        let single = Arc::new(Schema::new(vec![Arc::clone(field)]));
        let Ok(decoder) = decoder_for(&single, 1) else {
            continue;
        };
        if let Err(e) = decode_values(decoder, &[value]) {
            let message = arrow_message(&e);
            // Arrow names the field itself; the reason names it once, the way CSV reasons do.
            let prefix = format!("whilst decoding field '{}': ", field.name());
            let message = message.strip_prefix(&prefix).unwrap_or(&message);
            return format!("column `{}`: {message}", field.name());
        }
    }
    arrow_message(error)
}

/// Arrow's message without the "Json error: " prefix its Display adds.
fn arrow_message(error: &ArrowError) -> String {
    match error {
        ArrowError::JsonError(message) => message.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests;
