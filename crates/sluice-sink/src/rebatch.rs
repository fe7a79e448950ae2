//! Cutting a stream of batches of any size into batches of exactly `size` rows (the last one may be
//! shorter), so that a sink's transaction or request size is what the user configured and not
//! whatever the engine happened to produce.

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;

/// Collects rows until `size` are there; holds at most `size` plus one incoming batch.
pub struct Rebatcher {
    schema: SchemaRef,
    size: usize,
    pending: Vec<RecordBatch>,
    rows: usize,
}

impl Rebatcher {
    /// Batches of `size` rows (at least 1) of `schema`.
    pub fn new(schema: SchemaRef, size: usize) -> Self {
        Rebatcher {
            schema,
            size: size.max(1),
            pending: Vec::new(),
            rows: 0,
        }
    }

    /// Adds a batch; returns the full batches now ready.
    pub fn push(&mut self, batch: RecordBatch) -> Result<Vec<RecordBatch>, ArrowError> {
        if batch.num_rows() == 0 {
            return Ok(Vec::new());
        }
        self.rows += batch.num_rows();
        self.pending.push(batch);
        let mut out = Vec::new();
        if self.rows < self.size {
            return Ok(out);
        }
        let all = concat_batches(&self.schema, &self.pending)?;
        self.pending.clear();
        let mut offset = 0;
        while all.num_rows() - offset >= self.size {
            out.push(all.slice(offset, self.size));
            offset += self.size;
        }
        self.rows = all.num_rows() - offset;
        if self.rows > 0 {
            self.pending.push(all.slice(offset, self.rows));
        }
        Ok(out)
    }

    /// The last, possibly short, batch.
    pub fn finish(&mut self) -> Result<Option<RecordBatch>, ArrowError> {
        if self.rows == 0 {
            return Ok(None);
        }
        let rest = concat_batches(&self.schema, &self.pending)?;
        self.pending.clear();
        self.rows = 0;
        Ok(Some(rest))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn ints(from: i64, n: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        RecordBatch::try_new(
            schema,
            vec![Arc::new(Int64Array::from_iter_values(from..from + n))],
        )
        .unwrap()
    }

    #[test]
    fn batches_are_cut_to_size_in_order() {
        let mut r = Rebatcher::new(ints(0, 0).schema(), 4);
        let mut out = Vec::new();
        out.extend(r.push(ints(0, 3)).unwrap());
        assert!(out.is_empty());
        out.extend(r.push(ints(3, 10)).unwrap());
        assert_eq!(out.len(), 3, "13 rows make three batches of 4");
        out.extend(r.push(ints(13, 0)).unwrap());
        out.extend(r.finish().unwrap());
        assert_eq!(
            out.iter().map(RecordBatch::num_rows).collect::<Vec<_>>(),
            [4, 4, 4, 1]
        );
        let values: Vec<i64> = out
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .values()
                    .to_vec()
            })
            .collect();
        assert_eq!(values, (0..13).collect::<Vec<_>>());
        assert!(r.finish().unwrap().is_none());
    }
}
