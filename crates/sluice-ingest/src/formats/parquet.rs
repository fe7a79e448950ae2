//! Parquet → Arrow.
//!
//! Parquet is typed, so there is no row-level rejection: the file is read from disk row group by
//! row group in `batch_size` batches, each handed on as it is decoded, and each batch is conformed to `merge_schemas(table, file)`. A column whose type differs from
//! the table's is cast (strictly); when the types cannot be converted, or a value does not convert,
//! the whole file fails with the column named, because dropping or nulling values would lose data.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use ::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use arrow::compute::can_cast_types;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use super::schema::{check_required_columns, conform_array, conform_batch, merge_schemas};
use super::sink::Emitter;
use super::{FileSink, FileSummary, FormatError, ReadOptions};

/// Reads a Parquet file into `sink`; see the module documentation.
pub(crate) fn read_parquet(
    path: &Path,
    opts: &ReadOptions,
    sink: &mut dyn FileSink,
) -> Result<FileSummary, FormatError> {
    let file = File::open(path).map_err(|source| FormatError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let not_parquet = |source| FormatError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(not_parquet)?
        .with_batch_size(opts.batch_size);
    // File-level metadata (writer details, pandas index info) is not part of the table's schema.
    let file_schema = Schema::new(builder.schema().fields().clone());
    let existing = opts.existing_schema.as_deref();
    let names: Vec<&str> = file_schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    check_required_columns(path, existing, &names)?;

    let schema: SchemaRef = Arc::new(match existing {
        Some(existing) => {
            for field in file_schema.fields() {
                if let Ok(target) = existing.field_with_name(field.name())
                    && !convertible(field.data_type(), target.data_type())
                {
                    return Err(FormatError::IncompatibleColumn {
                        path: path.to_path_buf(),
                        column: field.name().clone(),
                        found: field.data_type().clone(),
                        expected: target.data_type().clone(),
                        reason: "there is no conversion between these types".to_string(),
                    });
                }
            }
            merge_schemas(existing, &file_schema)
        }
        None => file_schema,
    });

    let reader = builder.build().map_err(not_parquet)?;
    let mut out = Emitter::new(sink, Arc::clone(&schema));
    for (index, batch) in reader.enumerate() {
        let batch = batch.map_err(|source| FormatError::Arrow {
            path: path.to_path_buf(),
            context: format!("decoding Parquet batch {}", index + 1),
            source,
        })?;
        let batch = conform_batch(&batch, &schema)
            .map_err(|source| conform_error(path, &batch, &schema, source))?;
        if !out.batch(batch) {
            break;
        }
    }
    Ok(out.finish())
}

/// Whether values of `from` can be converted to `to`: equal, castable, or structs/lists whose
/// common fields are convertible (a nested field only the table has is filled with nulls; one only
/// the file has is added by the merged schema).
fn convertible(from: &DataType, to: &DataType) -> bool {
    match (from, to) {
        _ if from == to => true,
        (DataType::Struct(f), DataType::Struct(t)) => t.iter().all(|target| {
            f.find(target.name())
                .is_none_or(|(_, source)| convertible(source.data_type(), target.data_type()))
        }),
        (DataType::List(f), DataType::List(t))
        | (DataType::LargeList(f), DataType::LargeList(t)) => {
            convertible(f.data_type(), t.data_type())
        }
        (DataType::Struct(_), _) | (_, DataType::Struct(_)) => false,
        _ => can_cast_types(from, to),
    }
}

/// Names the column that failed to conform.
fn conform_error(
    path: &Path,
    batch: &RecordBatch,
    schema: &SchemaRef,
    source: ArrowError,
) -> FormatError {
    let source_schema = batch.schema();
    for target in schema.fields() {
        let Ok(index) = source_schema.index_of(target.name()) else {
            continue;
        };
        if let Err(e) = conform_array(batch.column(index), target.data_type()) {
            return FormatError::IncompatibleColumn {
                path: path.to_path_buf(),
                column: target.name().clone(),
                found: batch.column(index).data_type().clone(),
                expected: target.data_type().clone(),
                reason: e.to_string(),
            };
        }
    }
    FormatError::Arrow {
        path: path.to_path_buf(),
        context: "conforming a Parquet batch to the table schema".to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::{FileFormat, read_file};
    use ::parquet::arrow::ArrowWriter;
    use arrow::array::{
        Array, ArrayRef, AsArray, Int32Array, Int64Array, StringArray, StructArray,
    };
    use arrow::datatypes::{Field, Fields, Int64Type};
    use tempfile::TempDir;

    fn write_parquet(dir: &TempDir, name: &str, batch: &RecordBatch) -> std::path::PathBuf {
        let path = dir.path().join(name);
        let mut writer =
            ArrowWriter::try_new(File::create(&path).unwrap(), batch.schema(), None).unwrap();
        writer.write(batch).unwrap();
        writer.close().unwrap();
        path
    }

    fn sample() -> RecordBatch {
        let props_fields = Fields::from(vec![Field::new("a", DataType::Int64, true)]);
        let props = StructArray::new(
            props_fields.clone(),
            vec![Arc::new(Int64Array::from(vec![
                Some(1),
                None,
                Some(3),
                Some(4),
                Some(5),
            ])) as ArrayRef],
            None,
        );
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int32, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("props", DataType::Struct(props_fields), true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int32Array::from(vec![1, 2, 3, 4, 5])),
                Arc::new(StringArray::from(vec![
                    Some("a"),
                    None,
                    Some("c"),
                    Some("d"),
                    Some("e"),
                ])),
                Arc::new(props),
            ],
        )
        .unwrap()
    }

    #[test]
    fn round_trip_in_batches() {
        let dir = TempDir::new().unwrap();
        let original = sample();
        let path = write_parquet(&dir, "t.parquet", &original);
        let opts = ReadOptions {
            batch_size: 2,
            ..ReadOptions::new(FileFormat::Parquet)
        };
        let out = read_file(&path, &opts).unwrap();
        assert_eq!(out.rows, 5);
        assert!(out.rejected.is_empty());
        let sizes: Vec<_> = out.batches.iter().map(RecordBatch::num_rows).collect();
        assert_eq!(sizes, vec![2, 2, 1]);
        assert_eq!(out.schema.fields(), original.schema().fields());
        let all = arrow::compute::concat_batches(&out.schema, &out.batches).unwrap();
        assert_eq!(all.columns(), original.columns());
    }

    #[test]
    fn columns_are_cast_and_structs_merged_to_the_table_schema() {
        let dir = TempDir::new().unwrap();
        let path = write_parquet(&dir, "t.parquet", &sample());
        let table_props = Fields::from(vec![
            Field::new("b", DataType::Utf8, true),
            Field::new("a", DataType::Int64, true),
        ]);
        let existing = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("props", DataType::Struct(table_props), true),
            Field::new("region", DataType::Utf8, true),
        ]));
        let opts = ReadOptions {
            existing_schema: Some(existing),
            ..ReadOptions::new(FileFormat::Parquet)
        };
        let out = read_file(&path, &opts).unwrap();
        let names: Vec<_> = out
            .schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(names, ["id", "props", "region", "name"]);
        let batch = &out.batches[0];
        assert_eq!(batch.schema(), out.schema);
        assert_eq!(
            batch.column(0).as_primitive::<Int64Type>().values(),
            &[1, 2, 3, 4, 5]
        );
        let props = batch.column(1).as_struct();
        assert_eq!(
            props.column(0).null_count(),
            5,
            "props.b absent from the file"
        );
        assert_eq!(props.column(1).as_primitive::<Int64Type>().value(2), 3);
        assert_eq!(batch.column(2).null_count(), 5);
    }

    #[test]
    fn incompatible_or_invalid_files_fail_naming_the_column_or_path() {
        let dir = TempDir::new().unwrap();
        let path = write_parquet(&dir, "t.parquet", &sample());
        let with_table = |fields: Vec<Field>| ReadOptions {
            existing_schema: Some(Arc::new(Schema::new(fields))),
            ..ReadOptions::new(FileFormat::Parquet)
        };
        let opts = with_table(vec![Field::new(
            "name",
            DataType::Struct(Fields::empty()),
            true,
        )]);
        let err = read_file(&path, &opts).unwrap_err();
        assert!(
            matches!(err, FormatError::IncompatibleColumn { ref column, .. } if column == "name"),
            "{err}"
        );

        let opts = with_table(vec![Field::new("name", DataType::Int64, true)]);
        let err = read_file(&path, &opts).unwrap_err();
        assert!(
            matches!(err, FormatError::IncompatibleColumn { ref column, .. } if column == "name"),
            "{err}"
        );
        assert!(err.to_string().contains("Int64"), "{err}");

        let junk = dir.path().join("junk.parquet");
        std::fs::write(&junk, b"id,name\n1,a\n").unwrap();
        let err = read_file(&junk, &ReadOptions::new(FileFormat::Parquet)).unwrap_err();
        assert!(matches!(err, FormatError::Parquet { .. }), "{err}");
        assert!(err.to_string().contains("junk.parquet"), "{err}");
    }
}
