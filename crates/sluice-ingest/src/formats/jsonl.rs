//! JSON Lines → Arrow, row-exactly.
//!
//! Each non-blank line is parsed with `serde_json`; a line that is not a JSON object is rejected with
//! serde's message. The schema is inferred over the good lines with Arrow's JSON inference (nested
//! objects → Struct, arrays → List); when two lines disagree in a way inference cannot reconcile
//! (an object here, a number there), inference is redone line by line and the later, conflicting
//! line is rejected. Only the first line of each shape (keys, nesting, kinds of values) is built
//! as a `serde_json::Value` for inference; the others are only scanned ([`shape`]). A top-level
//! column whose values are all strings in a date or date-time shape
//! becomes Date32 or a timestamp, as in CSV ([`super::temporal`]). Declared and table types then
//! override the inferred ones for top-level columns, and struct columns are merged with the table's
//! so new nested fields evolve it.
//!
//! The second pass hands the raw text of the lines to `arrow_json`'s decoder (its tape parser, no
//! `serde_json::Value` per line), in chunks of `batch_size` lines (or [`BATCH_BYTES`] of text,
//! whichever comes first). If a chunk fails (a value that does not fit its type), the chunk is
//! decoded row by row to find the culprits, which are rejected with Arrow's message and the column
//! it concerns, and the rest is kept. Arrow's decoder truncates 1.5 into an integer column, so when
//! the table or the config types a column as an integer that this file's values do not all fit,
//! each line is parsed again and checked first. The file is streamed from disk with one reused line
//! buffer and parsed twice (inference, then decoding) rather than held, so memory stays near one
//! chunk (plus the rejected rows, handed on last in line order).

use std::collections::{HashMap, HashSet};
use std::fs::File;
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
use super::temporal::TemporalInference;
use super::{
    BATCH_BYTES, FileBatches, FileSink, FileSummary, FormatError, MAX_COLUMNS, ReadOptions,
    RejectedRow, io_error, open_file, quote_value,
};

/// Most line shapes the first pass remembers (see [`shape`]).
const MAX_SHAPES: usize = 4096;

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
    let Inferred {
        schema: inferred,
        temporal,
        mut rejected,
    } = infer_schema(path, source)?;
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
                _ => match (f.data_type(), temporal.get(f.name().as_str())) {
                    (DataType::Utf8, Some(t)) => t.data_type().unwrap_or(DataType::Utf8),
                    (other, _) => replace_null_types(other),
                },
            };
            Arc::new(Field::new(f.name(), data_type, true))
        })
        .collect();
    let file_schema = Schema::new(fields);
    let schema = Arc::new(match existing {
        Some(existing) => merge_schemas(existing, &file_schema),
        None => file_schema,
    });

    // Integer columns some value of this file may not fit (a table's or declared type): those
    // values are checked before Arrow's decoder would truncate them. Inference over the whole file
    // typed a column Int64 only if every value is an integer.
    let inferred_by_name = by_name(inferred.fields());
    let integer_columns: Vec<(&str, &DataType)> = schema
        .fields()
        .iter()
        .filter(|f| f.data_type().is_integer())
        .filter(|f| {
            inferred_by_name.get(f.name().as_str()).is_some_and(|&i| {
                !matches!(
                    inferred.field(i).data_type(),
                    DataType::Int64 | DataType::Null
                )
            })
        })
        .map(|f| (f.name().as_str(), f.data_type()))
        .collect();

    let mut out = Emitter::new(sink, Arc::clone(&schema));
    let mut chunk = Chunk {
        path,
        schema: &schema,
        batch_size: opts.batch_size,
        text: Vec::new(),
        rows: Vec::with_capacity(opts.batch_size.min(65_536)),
    };
    let mut lines = source.reader(path)?;
    while let Some((line, raw)) = lines.next_line()? {
        if skip.contains(&line) {
            continue;
        }
        if !integer_columns.is_empty() {
            // Lines that parsed during inference parse again; a failure here would be a bug, but
            // the row is still not lost.
            let reason = match parse_line(line, raw) {
                Ok(value) => check_integers(&value, &integer_columns)
                    .map(|reason| format!("line {line}: {reason}")),
                Err(reason) => Some(reason),
            };
            if let Some(reason) = reason {
                rejected.push(rejected_row(line, reason, raw));
                continue;
            }
        }
        chunk.push(line, raw);
        let full = chunk.rows.len() == opts.batch_size || chunk.text.len() >= BATCH_BYTES;
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

impl<'a> LineSource<'a> {
    /// A reader of the non-blank lines, from the start; `path` names the origin in errors.
    fn reader(self, path: &'a Path) -> Result<LineReader<'a>, FormatError> {
        let input = match self {
            LineSource::File(file) => {
                Input::File(BufReader::with_capacity(256 * 1024, open_file(file)?))
            }
            LineSource::Bytes(bytes) => Input::Bytes(bytes),
        };
        Ok(LineReader {
            path,
            input,
            buf: Vec::new(),
            line: 0,
            done: false,
        })
    }
}

enum Input<'a> {
    File(BufReader<File>),
    /// What is left to read.
    Bytes(&'a [u8]),
}

/// The non-blank lines of a source, one at a time, in one reused buffer (a file's lines are read
/// into it, bytes in memory are lent as they are).
struct LineReader<'a> {
    path: &'a Path,
    input: Input<'a>,
    buf: Vec<u8>,
    /// The 1-based number of the last line read.
    line: u64,
    done: bool,
}

impl<'a> LineReader<'a> {
    /// The next non-blank line: its 1-based number and its text without the line terminator (the
    /// text after the last terminator is one more line).
    fn next_line(&mut self) -> Result<Option<(u64, &[u8])>, FormatError> {
        match &mut self.input {
            Input::Bytes(rest) => loop {
                if self.done {
                    return Ok(None);
                }
                let bytes: &'a [u8] = std::mem::take(rest);
                let raw = match bytes.iter().position(|b| *b == b'\n') {
                    Some(end) => {
                        *rest = &bytes[end + 1..];
                        &bytes[..end]
                    }
                    None => {
                        self.done = true;
                        *rest = &[];
                        bytes
                    }
                };
                self.line += 1;
                let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
                if !is_blank(raw) {
                    return Ok(Some((self.line, raw)));
                }
            },
            Input::File(reader) => {
                loop {
                    if self.done {
                        return Ok(None);
                    }
                    self.buf.clear();
                    reader
                        .read_until(b'\n', &mut self.buf)
                        .map_err(|source| io_error(self.path, source))?;
                    self.line += 1;
                    if self.buf.last() == Some(&b'\n') {
                        self.buf.pop();
                    } else {
                        self.done = true;
                    }
                    if self.buf.last() == Some(&b'\r') {
                        self.buf.pop();
                    }
                    if !is_blank(&self.buf) {
                        break;
                    }
                }
                Ok(Some((self.line, &self.buf)))
            }
        }
    }
}

fn is_blank(raw: &[u8]) -> bool {
    raw.iter().all(u8::is_ascii_whitespace)
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

/// What the first pass found.
struct Inferred {
    /// Arrow's inference over the good lines.
    schema: Schema,
    /// What the string values of each top-level key look like.
    temporal: HashMap<String, TemporalInference>,
    /// Lines rejected: unparseable, or conflicting with earlier lines.
    rejected: Vec<RejectedRow>,
}

/// Takes the top-level values of one line into account for date and date-time inference.
fn observe_temporal(temporal: &mut HashMap<String, TemporalInference>, value: &Value) {
    let Value::Object(object) = value else {
        return;
    };
    for (key, value) in object {
        match value {
            Value::String(text) => shape::with_state(temporal, key, |s| s.observe(text)),
            Value::Null => {}
            _ => shape::with_state(temporal, key, TemporalInference::observe_non_text),
        }
    }
}

/// Infers the schema of the good lines; see [`Inferred`].
fn infer_schema(path: &Path, source: LineSource<'_>) -> Result<Inferred, FormatError> {
    let mut rejected = Vec::new();
    let mut temporal = HashMap::new();
    let mut shapes: HashSet<Vec<u8>> = HashSet::new();
    let mut signature = Vec::new();
    let mut failed = None;
    let mut lines = source.reader(path)?;
    let values = std::iter::from_fn(|| {
        loop {
            match lines.next_line() {
                Ok(Some((line, raw))) => {
                    // A line of a shape seen before adds nothing to inference ([`shape`]).
                    if let Ok(text) = std::str::from_utf8(raw)
                        && shape::signature(text, &mut signature, &mut temporal).is_ok()
                    {
                        if shapes.contains(signature.as_slice()) {
                            continue;
                        }
                        // Lines of ever new shapes (a key per line) are not remembered past this:
                        // memory stays bounded, they are inferred the slow way.
                        if shapes.len() < MAX_SHAPES {
                            shapes.insert(signature.clone());
                        }
                    }
                    match parse_line(line, raw) {
                        Ok(value) => return Some(Ok::<_, ArrowError>(value)),
                        Err(reason) => rejected.push(rejected_row(line, reason, raw)),
                    }
                }
                Ok(None) => return None,
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
        Ok(schema) => Ok(Inferred {
            schema,
            temporal,
            rejected,
        }),
        Err(e) => {
            tracing::debug!(error = %e, "JSON lines disagree on types; inferring line by line");
            infer_row_by_row(path, source)
        }
    }
}

/// Inference that accepts lines in order and rejects a line whose types cannot be reconciled with
/// the lines before it.
fn infer_row_by_row(path: &Path, source: LineSource<'_>) -> Result<Inferred, FormatError> {
    let mut rejected = Vec::new();
    let mut temporal = HashMap::new();
    let mut fields = Fields::empty();
    let mut lines = source.reader(path)?;
    while let Some((line, raw)) = lines.next_line()? {
        let value = match parse_line(line, raw) {
            Ok(value) => value,
            Err(reason) => {
                rejected.push(rejected_row(line, reason, raw));
                continue;
            }
        };
        let row =
            match infer_json_schema_from_iterator(std::iter::once(Ok::<_, ArrowError>(&value))) {
                Ok(row) => row,
                Err(e) => {
                    let reason = format!("line {line}: {}", arrow_message(&e));
                    rejected.push(rejected_row(line, reason, raw));
                    continue;
                }
            };
        match coerce_fields(&fields, row.fields()) {
            Ok(merged) => {
                fields = merged;
                observe_temporal(&mut temporal, &value);
            }
            Err(Conflict {
                column,
                earlier,
                here,
            }) => {
                let reason = format!(
                    "line {line}: column `{column}`: {here} conflicts with {earlier} in earlier lines"
                );
                rejected.push(rejected_row(line, reason, raw));
            }
        }
    }
    Ok(Inferred {
        schema: Schema::new(fields),
        temporal,
        rejected,
    })
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

/// Lines waiting to be decoded into one batch: their text, one after the other (each ended by a
/// newline), and each one's number and range in it.
struct Chunk<'a> {
    path: &'a Path,
    schema: &'a SchemaRef,
    batch_size: usize,
    text: Vec<u8>,
    rows: Vec<(u64, std::ops::Range<usize>)>,
}

impl Chunk<'_> {
    fn push(&mut self, line: u64, raw: &[u8]) {
        let start = self.text.len();
        self.text.extend_from_slice(raw);
        self.rows.push((line, start..self.text.len()));
        self.text.push(b'\n');
    }

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
        let batch = match decode_text(self.decoder()?, &self.text) {
            Ok(batch) => batch,
            Err(_) => {
                // Find the culprits one row at a time, then decode the rest together.
                let mut good: Vec<u8> = Vec::with_capacity(self.text.len());
                for (line, range) in &self.rows {
                    let raw = &self.text[range.clone()];
                    if let Err(e) = decode_text(self.decoder()?, raw) {
                        let reason = format!("line {line}: {}", self.locate_failure(raw, &e));
                        rejected.push(rejected_row(*line, reason, raw));
                    } else {
                        good.extend_from_slice(raw);
                        good.push(b'\n');
                    }
                }
                let first_line = self.rows.first().map_or(0, |r| r.0);
                decode_text(self.decoder()?, &good).map_err(|source| FormatError::Arrow {
                    path: self.path.to_path_buf(),
                    context: format!(
                        "decoding the rows from line {first_line} that decoded one by one"
                    ),
                    source,
                })?
            }
        };
        self.rows.clear();
        self.text.clear();
        Ok(match batch {
            Some(batch) => out.batch(batch),
            None => !out.stopped(),
        })
    }

    /// Names the top-level column a row fails on, by decoding it against one column at a time.
    fn locate_failure(&self, raw: &[u8], error: &ArrowError) -> String {
        for field in self.schema.fields() {
            let single = Arc::new(Schema::new(vec![Arc::clone(field)]));
            let Ok(decoder) = decoder_for(&single, 1) else {
                continue;
            };
            if let Err(e) = decode_text(decoder, raw) {
                let message = arrow_message(&e);
                // Arrow names the field itself; the reason names it once, the way CSV reasons do.
                let prefix = format!("whilst decoding field '{}': ", field.name());
                let message = message.strip_prefix(&prefix).unwrap_or(&message);
                return format!("column `{}`: {message}", field.name());
            }
        }
        arrow_message(error)
    }
}

fn decoder_for(schema: &SchemaRef, batch_size: usize) -> Result<Decoder, ArrowError> {
    ReaderBuilder::new(Arc::clone(schema))
        .with_batch_size(batch_size)
        .with_coerce_primitive(true)
        .build_decoder()
}

/// Decodes newline-separated JSON objects (at most the decoder's batch size) with a fresh decoder
/// (a failed flush leaves a decoder unusable).
fn decode_text(mut decoder: Decoder, text: &[u8]) -> Result<Option<RecordBatch>, ArrowError> {
    let mut read = 0;
    while read < text.len() {
        let n = decoder.decode(&text[read..])?;
        if n == 0 {
            if is_blank(&text[read..]) {
                break;
            }
            // The decoder is full: more rows than its batch size, which `Chunk` never sends.
            return Err(ArrowError::JsonError(
                "more rows than a batch holds".to_string(),
            ));
        }
        read += n;
    }
    decoder.flush()
}

/// Arrow's message without the "Json error: " prefix its Display adds.
fn arrow_message(error: &ArrowError) -> String {
    match error {
        ArrowError::JsonError(message) => message.clone(),
        other => other.to_string(),
    }
}

mod shape;

#[cfg(test)]
mod tests;
