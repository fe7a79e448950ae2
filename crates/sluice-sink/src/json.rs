//! One batch as a JSON array of row objects, nulls written as `null` so every object has every
//! column: the body of a webhook request and the parameter of a PostgreSQL upsert.
//!
//! The same bytes as the serving layer's `application/json` format (the same Arrow writer with the
//! same options); it lives here because that layer sits above this crate.

use arrow::array::RecordBatch;
use arrow::json::writer::{JsonArray, WriterBuilder};

use crate::SinkError;

/// `[{...},{...}]` for `batch`.
pub fn json_array(batch: &RecordBatch) -> Result<Vec<u8>, SinkError> {
    let encode = |source| SinkError::Encode {
        format: "json",
        source,
    };
    let mut writer = WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, JsonArray>(Vec::new());
    writer.write(batch).map_err(encode)?;
    writer.finish().map_err(encode)?;
    Ok(writer.into_inner())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    #[test]
    fn rows_are_objects_with_explicit_nulls() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec![Some("a,b"), None])),
            ],
        )
        .unwrap();
        let out = json_array(&batch).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"[{"id":1,"name":"a,b"},{"id":2,"name":null}]"#
        );
    }
}
