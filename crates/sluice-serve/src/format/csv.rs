//! CSV with one header row, written batch by batch.
//!
//! Arrow's CSV writer writes the header with its first batch, so each batch gets a short-lived writer
//! and only the first one writes the header; an empty result still gets its header.

use arrow::array::RecordBatch;
use arrow::csv::WriterBuilder;
use arrow::datatypes::SchemaRef;

use super::{EncodeError, Encoder, Format};

/// Encodes CSV.
pub(super) struct CsvEncoder {
    schema: SchemaRef,
    header_written: bool,
}

impl CsvEncoder {
    /// An encoder for results of `schema`.
    pub(super) fn new(schema: SchemaRef) -> Self {
        CsvEncoder {
            schema,
            header_written: false,
        }
    }
}

impl Encoder for CsvEncoder {
    fn batch(&mut self, batch: &RecordBatch) -> Result<Vec<u8>, EncodeError> {
        let mut buf = Vec::new();
        {
            let mut writer = WriterBuilder::new()
                .with_header(!self.header_written)
                .build(&mut buf);
            writer
                .write(batch)
                .map_err(EncodeError::arrow(Format::Csv))?;
        }
        self.header_written = true;
        Ok(buf)
    }

    fn finish(&mut self) -> Result<Vec<u8>, EncodeError> {
        if self.header_written {
            return Ok(Vec::new());
        }
        self.batch(&RecordBatch::new_empty(self.schema.clone()))
    }
}
