//! The Arrow IPC streaming format: the schema message, one record batch message per batch, and the
//! end-of-stream marker. Readers (pyarrow, polars, DuckDB, arrow-rs) can consume it as it arrives.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::ipc::writer::StreamWriter;

use super::{EncodeError, Encoder, Format};

/// Encodes Arrow IPC stream messages.
pub(super) struct ArrowEncoder {
    writer: StreamWriter<Vec<u8>>,
}

impl ArrowEncoder {
    /// Writes the schema message (sent with the first batch).
    pub(super) fn new(schema: &SchemaRef) -> Result<Self, EncodeError> {
        let writer =
            StreamWriter::try_new(Vec::new(), schema).map_err(EncodeError::arrow(Format::Arrow))?;
        Ok(ArrowEncoder { writer })
    }
}

impl Encoder for ArrowEncoder {
    fn batch(&mut self, batch: &RecordBatch) -> Result<Vec<u8>, EncodeError> {
        self.writer
            .write(batch)
            .map_err(EncodeError::arrow(Format::Arrow))?;
        Ok(std::mem::take(self.writer.get_mut()))
    }

    fn finish(&mut self) -> Result<Vec<u8>, EncodeError> {
        self.writer
            .finish()
            .map_err(EncodeError::arrow(Format::Arrow))?;
        Ok(std::mem::take(self.writer.get_mut()))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use arrow::ipc::reader::StreamReader;

    use super::*;
    use crate::format::tests::sample;

    #[test]
    fn chunks_concatenate_to_a_readable_stream() {
        let b = sample();
        let mut enc = ArrowEncoder::new(&b.schema()).unwrap();
        let mut bytes = enc.batch(&b).unwrap();
        assert!(
            !bytes.is_empty(),
            "the first chunk carries schema and batch"
        );
        bytes.extend(enc.batch(&b).unwrap());
        bytes.extend(enc.finish().unwrap());
        let reader = StreamReader::try_new(Cursor::new(bytes), None).unwrap();
        let batches: Vec<_> = reader.map(|b| b.unwrap()).collect();
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[1], b);
    }
}
