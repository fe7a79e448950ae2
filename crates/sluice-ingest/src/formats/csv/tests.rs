use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    DataType, Field, Float64Type, Int64Type, Schema, TimeUnit, TimestampMicrosecondType,
};
use arrow::record_batch::RecordBatch;
use tempfile::TempDir;

use crate::formats::{
    BATCH_BYTES, FileFormat, FileSink, FormatError, MAX_COLUMNS, ReadOptions, RejectedRow,
    read_file, stream_file,
};

fn write(dir: &TempDir, name: &str, content: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    path
}

fn concat(batches: &[RecordBatch]) -> RecordBatch {
    arrow::compute::concat_batches(&batches[0].schema(), batches).unwrap()
}

fn ints(batch: &RecordBatch, column: &str) -> Vec<Option<i64>> {
    batch
        .column_by_name(column)
        .unwrap()
        .as_primitive::<Int64Type>()
        .iter()
        .collect()
}

fn strings(batch: &RecordBatch, column: &str) -> Vec<Option<String>> {
    batch
        .column_by_name(column)
        .unwrap()
        .as_string::<i32>()
        .iter()
        .map(|s| s.map(str::to_string))
        .collect()
}

#[test]
fn infers_column_types_over_the_file() {
    let dir = TempDir::new().unwrap();
    let path = write(
        &dir,
        "orders.csv",
        b"id,amount,paid,at,note,blank\n\
          1,10,true,2024-01-01T10:00:00Z,first,\n\
          2,2.5,FALSE,2024-01-01 11:00:00+01:00,,\n\
          3,,,,third,\n",
    );
    let out = read_file(&path, &ReadOptions::new(FileFormat::Csv)).unwrap();
    let types: Vec<_> = out
        .schema
        .fields()
        .iter()
        .map(|f| f.data_type().clone())
        .collect();
    assert_eq!(
        types,
        vec![
            DataType::Int64,
            DataType::Float64,
            DataType::Boolean,
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            DataType::Utf8,
            DataType::Utf8,
        ]
    );
    assert!(out.schema.fields().iter().all(|f| f.is_nullable()));
    assert_eq!(out.rows, 3);
    assert!(out.rejected.is_empty());
    let batch = concat(&out.batches);
    assert_eq!(ints(&batch, "id"), vec![Some(1), Some(2), Some(3)]);
    let amount: Vec<_> = batch
        .column(1)
        .as_primitive::<Float64Type>()
        .iter()
        .collect();
    assert_eq!(amount, vec![Some(10.0), Some(2.5), None]);
    let paid = batch.column(2).as_boolean();
    assert!(paid.value(0) && !paid.value(1) && paid.is_null(2));
    let at = batch.column(3).as_primitive::<TimestampMicrosecondType>();
    assert_eq!(at.value(0), 1_704_103_200_000_000);
    assert_eq!(at.value(1), at.value(0), "11:00+01:00 is 10:00Z");
    assert_eq!(
        strings(&batch, "note"),
        vec![Some("first".into()), None, Some("third".into())]
    );
    assert_eq!(batch.column(5).null_count(), 3);
}

#[test]
fn bad_rows_are_rejected_with_line_and_reason_and_good_rows_survive() {
    let dir = TempDir::new().unwrap();
    // Physical lines: 1 header, 2 ok, 3 bad value, 4 short row, 5 blank, 6-7 one quoted record
    // spanning two lines, 8 a one-field row that would spoil `id` inference, 9 bad value, 10 ok.
    let content = "id,amount,name\n\
                   1,10.5,a\n\
                   2,abc,b\n\
                   3,7\n\
                   \n\
                   4,1e3,\"multi\n\
                   line\"\n\
                   zzz\n\
                   6,oops,g\n\
                   5,,e\n";
    let path = write(&dir, "orders.csv", content.as_bytes());
    let opts = ReadOptions {
        declared: vec![("amount".to_string(), DataType::Float64)],
        ..ReadOptions::new(FileFormat::Csv)
    };
    let out = read_file(&path, &opts).unwrap();

    let rejected: Vec<_> = out
        .rejected
        .iter()
        .map(|r| (r.line, r.reason.as_str(), r.raw.as_str()))
        .collect();
    assert_eq!(
        rejected,
        vec![
            (
                3,
                "line 3: column `amount`: expected Float64, found \"abc\"",
                "2,abc,b"
            ),
            (4, "line 4: expected 3 fields, found 2", "3,7"),
            (8, "line 8: expected 3 fields, found 1", "zzz"),
            (
                9,
                "line 9: column `amount`: expected Float64, found \"oops\"",
                "6,oops,g"
            ),
        ]
    );
    assert_eq!(out.rows, 3);
    assert_eq!(
        out.schema.field(0).data_type(),
        &DataType::Int64,
        "`zzz` row ignored by inference"
    );
    let batch = concat(&out.batches);
    assert_eq!(ints(&batch, "id"), vec![Some(1), Some(4), Some(5)]);
    let amount: Vec<_> = batch
        .column(1)
        .as_primitive::<Float64Type>()
        .iter()
        .collect();
    assert_eq!(amount, vec![Some(10.5), Some(1000.0), None]);
    assert_eq!(
        strings(&batch, "name"),
        vec![
            Some("a".into()),
            Some("multi\nline".into()),
            Some("e".into())
        ]
    );
}

#[test]
fn existing_schema_keeps_types_order_and_fills_missing_columns() {
    let dir = TempDir::new().unwrap();
    let path = write(
        &dir,
        "f.csv",
        b"amount,id,channel\n1,10,web\n2.5,,app\nx,12,web\n",
    );
    let existing = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("amount", DataType::Float64, true),
        Field::new("region", DataType::Utf8, true),
    ]));
    let opts = ReadOptions {
        existing_schema: Some(existing),
        // The table's type wins over a conflicting declaration.
        declared: vec![("amount".to_string(), DataType::Utf8)],
        ..ReadOptions::new(FileFormat::Csv)
    };
    let out = read_file(&path, &opts).unwrap();
    let names: Vec<_> = out
        .schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(names, ["id", "amount", "region", "channel"]);
    assert!(!out.schema.field(0).is_nullable());
    let reasons: Vec<_> = out.rejected.iter().map(|r| r.reason.as_str()).collect();
    assert_eq!(
        reasons,
        vec![
            "line 3: column `id`: expected Int64, found an empty value (the column is not nullable)",
            "line 4: column `amount`: expected Float64, found \"x\"",
        ]
    );
    assert_eq!(out.batches.len(), 1);
    let batch = &out.batches[0];
    assert_eq!(batch.schema(), out.schema);
    assert_eq!(ints(batch, "id"), vec![Some(10)]);
    assert_eq!(batch.column(2).null_count(), 1, "region filled with nulls");
    assert_eq!(strings(batch, "channel"), vec![Some("web".into())]);

    let missing = write(&dir, "g.csv", b"amount\n1\n");
    let err = read_file(&missing, &opts).unwrap_err();
    assert!(
        matches!(err, FormatError::MissingRequiredColumn { ref column, .. } if column == "id"),
        "{err}"
    );
}

#[test]
fn whole_file_problems_are_errors_naming_the_path() {
    let dir = TempDir::new().unwrap();
    let empty = write(&dir, "empty.csv", b"\n\n");
    let err = read_file(&empty, &ReadOptions::default()).unwrap_err();
    assert!(matches!(err, FormatError::EmptyCsv { .. }));
    assert!(err.to_string().contains("empty.csv"), "{err}");

    let dup = write(&dir, "dup.csv", b"a,b,a\n1,2,3\n");
    let err = read_file(&dup, &ReadOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: line 1: column `a` appears more than once in the header",
            dup.display()
        )
    );

    let header_only = write(&dir, "h.csv", b"a,b\n");
    let out = read_file(&header_only, &ReadOptions::default()).unwrap();
    assert_eq!(out.rows, 0);
    assert!(out.batches.is_empty());
    assert_eq!(out.schema.fields().len(), 2);
}

#[test]
fn no_header_custom_delimiter_batching_and_bad_utf8() {
    let dir = TempDir::new().unwrap();
    let mut content = b"1;a\r\n2;b\r\n3;\xff\xfe\r\n4;d\r\n5;e\r\n6;f\r\n".to_vec();
    content.extend_from_slice(b"7;g");
    let path = write(&dir, "x.txt", &content);
    let opts = ReadOptions {
        csv_delimiter: b';',
        csv_has_header: false,
        batch_size: 2,
        ..ReadOptions::new(FileFormat::Csv)
    };
    let out = read_file(&path, &opts).unwrap();
    let names: Vec<_> = out
        .schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(names, ["column_1", "column_2"]);
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].line, 3);
    assert_eq!(
        out.rejected[0].reason,
        "line 3: column `column_2`: value is not valid UTF-8"
    );
    assert_eq!(out.rejected[0].raw, "3;\u{fffd}\u{fffd}");
    let sizes: Vec<_> = out.batches.iter().map(RecordBatch::num_rows).collect();
    assert_eq!(sizes, vec![2, 2, 2]);
    assert_eq!(out.rows, 6);
    let batch = concat(&out.batches);
    assert_eq!(
        ints(&batch, "column_1"),
        (1..=7).filter(|i| *i != 3).map(Some).collect::<Vec<_>>()
    );
    assert_eq!(strings(&batch, "column_2")[5], Some("g".to_string()));
}

#[test]
fn declared_types_override_inference() {
    let dir = TempDir::new().unwrap();
    let path = write(
        &dir,
        "d.csv",
        b"zip,price,day\n01234,1.10,2024-03-01\n99999,2,2024-03-02\n",
    );
    let opts = ReadOptions {
        declared: vec![
            ("zip".to_string(), DataType::Utf8),
            ("price".to_string(), DataType::Decimal128(10, 2)),
            ("day".to_string(), DataType::Date32),
        ],
        ..ReadOptions::new(FileFormat::Csv)
    };
    let out = read_file(&path, &opts).unwrap();
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    let batch = &out.batches[0];
    assert_eq!(
        strings(batch, "zip"),
        vec![Some("01234".into()), Some("99999".into())]
    );
    assert_eq!(batch.column(1).data_type(), &DataType::Decimal128(10, 2));
    let price: Vec<_> = batch
        .column(1)
        .as_primitive::<arrow::datatypes::Decimal128Type>()
        .values()
        .to_vec();
    assert_eq!(price, vec![110, 200]);
    let day = batch
        .column(2)
        .as_primitive::<arrow::datatypes::Date32Type>();
    assert_eq!(day.value(0), 19783);
}

/// A header of `columns` names `c0..` and two rows of ints.
fn wide_csv(columns: usize) -> Vec<u8> {
    let header = (0..columns).map(|i| format!("c{i}")).collect::<Vec<_>>();
    let row = (0..columns).map(|i| i.to_string()).collect::<Vec<_>>();
    format!(
        "{}\n{}\n{}\n",
        header.join(","),
        row.join(","),
        row.join(",")
    )
    .into_bytes()
}

#[test]
fn a_file_at_the_column_limit_reads_against_a_table_schema() {
    // Quadratic header handling took minutes here; every step is now a hash lookup.
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "wide.csv", &wide_csv(MAX_COLUMNS));
    // The table has every column (in reverse order) and more: merge and conform by name.
    let existing = Arc::new(Schema::new(
        (0..MAX_COLUMNS + 10)
            .rev()
            .map(|i| Field::new(format!("c{i}"), DataType::Int64, true))
            .collect::<Vec<_>>(),
    ));
    let opts = ReadOptions {
        existing_schema: Some(existing),
        declared: (0..MAX_COLUMNS)
            .map(|i| (format!("c{i}"), DataType::Utf8))
            .collect(),
        ..ReadOptions::new(FileFormat::Csv)
    };
    let out = read_file(&path, &opts).unwrap();
    assert_eq!(out.schema.fields().len(), MAX_COLUMNS + 10);
    assert_eq!(out.rows, 2);
    let batch = concat(&out.batches);
    assert_eq!(ints(&batch, "c9999"), vec![Some(9999), Some(9999)]);
    assert_eq!(ints(&batch, "c10005"), vec![None, None]);
    // Without a table: inference over every column.
    let out = read_file(&path, &ReadOptions::new(FileFormat::Csv)).unwrap();
    assert_eq!(out.schema.fields().len(), MAX_COLUMNS);
}

#[test]
fn too_many_columns_is_an_error_naming_the_file_and_the_count() {
    let dir = TempDir::new().unwrap();
    for (name, content) in [
        ("wide.csv", wide_csv(20_000)),
        ("limit.csv", wide_csv(MAX_COLUMNS + 1)),
        // A 10 MB header of a million columns.
        ("huge.csv", "abcdefghi,".repeat(1_000_000).into_bytes()),
    ] {
        let path = write(&dir, name, &content);
        let started = std::time::Instant::now();
        let err = read_file(&path, &ReadOptions::new(FileFormat::Csv)).unwrap_err();
        assert!(
            matches!(
                err,
                FormatError::TooManyColumns {
                    max: MAX_COLUMNS,
                    ..
                }
            ),
            "{err}"
        );
        let text = err.to_string();
        assert!(
            text.contains(name) && text.contains("more than the 10000"),
            "{text}"
        );
        // Generous: the refusal must not do per-column work (debug builds, busy machines).
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
    }
    let path = write(&dir, "n.csv", &wide_csv(20_000));
    let err = read_file(&path, &ReadOptions::new(FileFormat::Csv)).unwrap_err();
    assert!(err.to_string().contains("20000 columns"), "{err}");
    let opts = ReadOptions {
        csv_has_header: false,
        ..ReadOptions::new(FileFormat::Csv)
    };
    let err = read_file(&path, &opts).unwrap_err();
    assert!(err.to_string().contains("20000 columns"), "{err}");
}

#[test]
fn a_duplicate_in_a_wide_header_is_found() {
    let dir = TempDir::new().unwrap();
    let mut names: Vec<String> = (0..MAX_COLUMNS - 1).map(|i| format!("c{i}")).collect();
    names.push("c17".to_string());
    let path = write(&dir, "dup.csv", format!("{}\n", names.join(",")).as_bytes());
    let err = read_file(&path, &ReadOptions::new(FileFormat::Csv)).unwrap_err();
    assert!(
        matches!(&err, FormatError::DuplicateColumn { column, .. } if column == "c17"),
        "{err}"
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Headers of growing width with short (often repeated, empty or quoted) names: the
        /// result is a table as wide as the header or a specific error, never a panic.
        #[test]
        fn headers_never_panic(
            names in prop::collection::vec("[a-c\"]{0,3}", 1..4000),
            extra in 0usize..3,
        ) {
            let dir = TempDir::new().unwrap();
            let mut text = names.join(",");
            text.push('\n');
            text.push_str(&vec!["1"; names.len() + extra].join(","));
            text.push('\n');
            let path = write(&dir, "h.csv", text.as_bytes());
            match read_file(&path, &ReadOptions::new(FileFormat::Csv)) {
                // Quotes may join fields; without them the width is the header's.
                Ok(out) if !text.contains('"') => {
                    prop_assert_eq!(out.schema.fields().len(), names.len());
                }
                Ok(_) => {}
                Err(e) => prop_assert!(
                    matches!(e, FormatError::DuplicateColumn { .. } | FormatError::Csv { .. }),
                    "{}", e
                ),
            }
        }
    }
}

/// Twenty rows of 100 KB with a short row on line 12, and one on line 19 after a blank line.
fn wide_rows_file(dir: &TempDir) -> PathBuf {
    let value = "x".repeat(100_000);
    let mut text = String::from("id,text\n");
    for i in 1..=20 {
        if i == 11 {
            text.push_str("short\n");
        }
        if i == 16 {
            text.push_str("\nbad\n");
        }
        text.push_str(&format!("{i},{value}\n"));
    }
    write(dir, "wide.csv", text.as_bytes())
}

#[test]
fn wide_rows_are_cut_into_batches_by_size_with_every_row_and_line_kept() {
    let dir = TempDir::new().unwrap();
    let path = wide_rows_file(&dir);
    let out = read_file(&path, &ReadOptions::default()).unwrap();
    let per_batch = BATCH_BYTES.div_ceil(100_000);
    assert_eq!(out.batches.len(), 20_usize.div_ceil(per_batch));
    assert!(out.batches.iter().all(|b| b.num_rows() <= per_batch));
    assert_eq!(out.rows, 20);
    let all = concat(&out.batches);
    assert_eq!(ints(&all, "id"), (1..=20).map(Some).collect::<Vec<_>>());
    let rejected: Vec<(u64, &str, &str)> = out
        .rejected
        .iter()
        .map(|r| (r.line, r.reason.as_str(), r.raw.as_str()))
        .collect();
    assert_eq!(
        rejected,
        [
            (12, "line 12: expected 2 fields, found 1", "short"),
            (19, "line 19: expected 2 fields, found 1", "bad")
        ]
    );
}

/// Keeps the first batch and stops the read.
#[derive(Default)]
struct FirstBatch {
    schema: bool,
    rows: Vec<usize>,
}

impl FileSink for FirstBatch {
    fn schema(&mut self, _schema: &arrow::datatypes::SchemaRef) {
        self.schema = true;
    }

    fn batch(&mut self, batch: RecordBatch) -> bool {
        assert!(self.schema, "the schema comes before any batch");
        self.rows.push(batch.num_rows());
        false
    }

    fn rejected(&mut self, _row: RejectedRow) -> bool {
        true
    }
}

#[test]
fn a_sink_can_stop_the_read_after_a_batch() {
    let dir = TempDir::new().unwrap();
    let path = wide_rows_file(&dir);
    let mut sink = FirstBatch::default();
    let summary = stream_file(&path, &ReadOptions::default(), &mut sink).unwrap();
    assert!(summary.stopped);
    assert_eq!(sink.rows.len(), 1);
    assert_eq!(summary.rows, sink.rows[0] as u64);
    assert_eq!(
        summary.rejected, 0,
        "the short row comes after the first batch"
    );
}

#[path = "sample_tests.rs"]
mod sample_tests;
