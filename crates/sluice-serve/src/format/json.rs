//! JSON (one array of row objects) and NDJSON (one object per line), written batch by batch.
//!
//! One Arrow JSON writer lives for the whole response so that its `[`, `,` separators and `]` span
//! batches; after each batch the bytes it wrote are taken out of its buffer and sent. Nulls are
//! written as `null` so that every row object has every column.

use arrow::array::RecordBatch;
use arrow::json::writer::{JsonArray, JsonFormat, LineDelimited, Writer, WriterBuilder};

use super::{EncodeError, Encoder, Format};

/// Encodes JSON arrays (`F = JsonArray`) or NDJSON (`F = LineDelimited`).
pub(super) struct JsonEncoder<F: JsonFormat> {
    writer: Writer<Vec<u8>, F>,
    format: Format,
}

impl JsonEncoder<JsonArray> {
    /// `[{...},{...}]`.
    pub(super) fn array() -> Self {
        JsonEncoder {
            writer: WriterBuilder::new()
                .with_explicit_nulls(true)
                .build(Vec::new()),
            format: Format::Json,
        }
    }
}

impl JsonEncoder<LineDelimited> {
    /// `{...}\n{...}\n`.
    pub(super) fn lines() -> Self {
        JsonEncoder {
            writer: WriterBuilder::new()
                .with_explicit_nulls(true)
                .build(Vec::new()),
            format: Format::Ndjson,
        }
    }
}

impl<F: JsonFormat + Send> Encoder for JsonEncoder<F> {
    fn batch(&mut self, batch: &RecordBatch) -> Result<Vec<u8>, EncodeError> {
        self.writer
            .write(batch)
            .map_err(EncodeError::arrow(self.format))?;
        Ok(std::mem::take(self.writer.get_mut()))
    }

    fn finish(&mut self) -> Result<Vec<u8>, EncodeError> {
        self.writer
            .finish()
            .map_err(EncodeError::arrow(self.format))?;
        Ok(std::mem::take(self.writer.get_mut()))
    }
}
