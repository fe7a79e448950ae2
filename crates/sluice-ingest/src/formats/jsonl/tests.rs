use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    DataType, Field, Fields, Float64Type, Int64Type, Schema, TimeUnit, TimestampMicrosecondType,
};
use arrow::record_batch::RecordBatch;
use tempfile::TempDir;

use crate::formats::{FileFormat, ReadOptions, merge_schemas, read_file};

fn write(dir: &TempDir, name: &str, content: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    path
}

fn jsonl() -> ReadOptions {
    ReadOptions::new(FileFormat::Jsonl)
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

fn nullable(name: &str, data_type: DataType) -> Field {
    Field::new(name, data_type, true)
}

#[test]
fn garbage_and_non_object_lines_are_rejected_with_serde_message() {
    let dir = TempDir::new().unwrap();
    let path = write(
        &dir,
        "events.jsonl",
        "{\"id\": 1, \"name\": \"a\"}\n{\"id\": 2,\n\n[1, 2]\r\n{\"id\": 3}\n",
    );
    let out = read_file(&path, &jsonl()).unwrap();
    let rejected: Vec<_> = out
        .rejected
        .iter()
        .map(|r| (r.line, r.reason.as_str(), r.raw.as_str()))
        .collect();
    assert_eq!(
        rejected,
        vec![
            (
                2,
                "line 2: invalid JSON: EOF while parsing a value at line 1 column 9",
                "{\"id\": 2,"
            ),
            (
                4,
                "line 4: expected a JSON object, found an array",
                "[1, 2]"
            ),
        ]
    );
    assert_eq!(out.rows, 2);
    let batch = concat(&out.batches);
    assert_eq!(ints(&batch, "id"), vec![Some(1), Some(3)]);
    let names = batch.column_by_name("name").unwrap().as_string::<i32>();
    assert_eq!(names.value(0), "a");
    assert!(names.is_null(1), "missing key is null");
}

#[test]
fn nested_objects_become_structs_and_arrays_lists() {
    let dir = TempDir::new().unwrap();
    let path = write(
        &dir,
        "e.jsonl",
        concat!(
            r#"{"id":1,"properties":{"color":"red","size":2},"tags":["x","y"],"gone":null}"#,
            "\n",
            r#"{"id":2,"properties":{"size":3.5},"tags":[]}"#,
            "\n",
        ),
    );
    let out = read_file(&path, &jsonl()).unwrap();
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    let props = DataType::Struct(Fields::from(vec![
        nullable("color", DataType::Utf8),
        nullable("size", DataType::Float64),
    ]));
    assert_eq!(
        out.schema
            .field_with_name("properties")
            .unwrap()
            .data_type(),
        &props
    );
    assert_eq!(
        out.schema.field_with_name("tags").unwrap().data_type(),
        &DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)))
    );
    assert_eq!(
        out.schema.field_with_name("gone").unwrap().data_type(),
        &DataType::Utf8,
        "an all-null column is stored as text, not as the Null type"
    );
    let batch = &out.batches[0];
    let properties = batch.column_by_name("properties").unwrap().as_struct();
    let size: Vec<_> = properties
        .column(1)
        .as_primitive::<Float64Type>()
        .iter()
        .collect();
    assert_eq!(size, vec![Some(2.0), Some(3.5)]);
    assert!(properties.column(0).is_null(1));
    let tags = batch.column_by_name("tags").unwrap().as_list::<i32>();
    assert_eq!(tags.value_length(0), 2);
    assert_eq!(tags.value_length(1), 0);
}

#[test]
fn schema_drift_merges_a_new_nested_field_into_the_table_schema() {
    let dir = TempDir::new().unwrap();
    let first = write(
        &dir,
        "day1.jsonl",
        "{\"user\":\"u1\",\"properties\":{\"page\":\"/home\"}}\n",
    );
    let day1 = read_file(&first, &jsonl()).unwrap();

    let second = write(
        &dir,
        "day2.jsonl",
        concat!(
            r#"{"user":"u2","properties":{"page":"/cart","referrer":"ad"},"device":"ios"}"#,
            "\n",
            r#"{"user":"u3","properties":{"page":"/"}}"#,
            "\n",
        ),
    );
    let opts = ReadOptions {
        existing_schema: Some(Arc::clone(&day1.schema)),
        ..jsonl()
    };
    let day2 = read_file(&second, &opts).unwrap();
    assert!(day2.rejected.is_empty(), "{:?}", day2.rejected);
    // serde_json objects are sorted maps, so a new table's JSON columns come in key order;
    // after that, the table's order is kept and new columns are appended.
    let names: Vec<_> = day1
        .schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(names, ["properties", "user"]);
    let expected = Schema::new(vec![
        nullable(
            "properties",
            DataType::Struct(Fields::from(vec![
                nullable("page", DataType::Utf8),
                nullable("referrer", DataType::Utf8),
            ])),
        ),
        nullable("user", DataType::Utf8),
        nullable("device", DataType::Utf8),
    ]);
    assert_eq!(day2.schema.as_ref(), &expected);
    assert_eq!(
        merge_schemas(&day1.schema, &day2.schema),
        expected,
        "merging again is stable"
    );
    let batch = &day2.batches[0];
    assert_eq!(batch.schema().as_ref(), &expected);
    let properties = batch.column(0).as_struct();
    let referrer = properties.column(1).as_string::<i32>();
    assert_eq!(referrer.value(0), "ad");
    assert!(referrer.is_null(1));
}

#[test]
fn values_conflicting_with_the_table_types_are_rejected_naming_the_column() {
    let dir = TempDir::new().unwrap();
    let path = write(
        &dir,
        "orders.jsonl",
        concat!(
            r#"{"id":1,"amount":2.5}"#,
            "\n",
            r#"{"id":2,"amount":"abc"}"#,
            "\n",
            r#"{"id":3.5,"amount":1}"#,
            "\n",
            r#"{"id":"4","amount":"7.25","note":"new"}"#,
            "\n",
            r#"{"id":5,"amount":{"x":1}}"#,
            "\n",
            r#"{"id":6}"#,
            "\n",
        ),
    );
    let existing = Arc::new(Schema::new(vec![
        nullable("id", DataType::Int64),
        nullable("amount", DataType::Float64),
    ]));
    let opts = ReadOptions {
        existing_schema: Some(existing),
        batch_size: 4,
        ..jsonl()
    };
    let out = read_file(&path, &opts).unwrap();
    let lines: Vec<_> = out.rejected.iter().map(|r| r.line).collect();
    assert_eq!(lines, vec![2, 3, 5]);
    assert_eq!(
        out.rejected[0].reason,
        "line 2: column `amount`: failed to parse \"abc\" as Float64"
    );
    assert_eq!(out.rejected[0].raw, r#"{"id":2,"amount":"abc"}"#);
    assert_eq!(
        out.rejected[1].reason,
        "line 3: column `id`: expected Int64, found 3.5"
    );
    assert!(
        out.rejected[2]
            .reason
            .starts_with("line 5: column `amount`: "),
        "{}",
        out.rejected[2].reason
    );
    assert_eq!(out.rows, 3);
    let batch = concat(&out.batches);
    assert_eq!(ints(&batch, "id"), vec![Some(1), Some(4), Some(6)]);
    let amount: Vec<_> = batch
        .column(1)
        .as_primitive::<Float64Type>()
        .iter()
        .collect();
    assert_eq!(amount, vec![Some(2.5), Some(7.25), None]);
    assert_eq!(batch.schema().field(2).name(), "note");
}

#[test]
fn lines_whose_types_conflict_with_earlier_lines_are_rejected() {
    let dir = TempDir::new().unwrap();
    let path = write(
        &dir,
        "drift.jsonl",
        "{\"a\":{\"x\":1},\"b\":1}\n{\"a\":5,\"b\":2}\nnot json\n{\"a\":{\"y\":true},\"b\":2.5}\n",
    );
    let out = read_file(&path, &jsonl()).unwrap();
    let reasons: Vec<_> = out
        .rejected
        .iter()
        .map(|r| (r.line, r.reason.clone()))
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert_eq!(reasons[0].0, 2);
    assert_eq!(
        reasons[0].1,
        "line 2: column `a`: Int64 conflicts with Struct(\"x\": Int64) in earlier lines"
    );
    assert_eq!(reasons[1].0, 3);
    assert!(
        reasons[1].1.starts_with("line 3: invalid JSON: "),
        "{}",
        reasons[1].1
    );
    assert_eq!(out.rows, 2);
    let a = out.schema.field_with_name("a").unwrap().data_type().clone();
    assert_eq!(
        a,
        DataType::Struct(Fields::from(vec![
            nullable("x", DataType::Int64),
            nullable("y", DataType::Boolean),
        ]))
    );
    assert_eq!(
        out.schema.field_with_name("b").unwrap().data_type(),
        &DataType::Float64
    );
}

#[test]
fn timestamps_stay_text_unless_declared() {
    let dir = TempDir::new().unwrap();
    let path = write(
        &dir,
        "t.jsonl",
        "{\"at\":\"2024-01-01T10:00:00Z\"}\n{\"at\":\"2024-01-01T11:00:00+01:00\"}\n{\"at\":\"soon\"}\n",
    );
    let plain = read_file(&path, &jsonl()).unwrap();
    assert_eq!(plain.schema.field(0).data_type(), &DataType::Utf8);
    assert_eq!(plain.rows, 3);

    let declared = ReadOptions {
        declared: vec![(
            "at".to_string(),
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        )],
        ..jsonl()
    };
    let out = read_file(&path, &declared).unwrap();
    assert_eq!(out.rows, 2);
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].line, 3);
    assert!(
        out.rejected[0].reason.starts_with("line 3: column `at`: "),
        "{}",
        out.rejected[0].reason
    );
    let at = out.batches[0]
        .column(0)
        .as_primitive::<TimestampMicrosecondType>();
    assert_eq!(at.value(0), 1_704_103_200_000_000);
    assert_eq!(at.value(1), at.value(0));
}

#[test]
fn empty_file_has_no_rows_and_no_error() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "empty.jsonl", "\n  \n");
    let out = read_file(&path, &jsonl()).unwrap();
    assert_eq!(out.rows, 0);
    assert!(out.batches.is_empty() && out.rejected.is_empty());
}

#[test]
fn a_record_of_too_many_keys_is_rejected_and_too_many_columns_fail_the_file() {
    let dir = TempDir::new().unwrap();
    let wide = (0..100_000)
        .map(|i| format!("\"k{i}\":{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let path = write(
        &dir,
        "wide.jsonl",
        &format!("{{\"id\":1}}\n{{{wide}}}\n{{\"id\":3}}\n"),
    );
    let out = read_file(&path, &jsonl()).unwrap();
    assert_eq!(out.rows, 2);
    assert_eq!(out.rejected.len(), 1);
    assert!(
        out.rejected[0]
            .reason
            .starts_with("line 2: a record of 100000 keys, more than the 10000 columns"),
        "{}",
        out.rejected[0].reason
    );
    // Lines within the limit whose keys add up to more columns than a file may have.
    let lines = (0..3)
        .map(|l| {
            let keys = (0..4000)
                .map(|i| format!("\"l{l}k{i}\":1"))
                .collect::<Vec<_>>()
                .join(",");
            format!("{{{keys}}}\n")
        })
        .collect::<String>();
    let path = write(&dir, "many.jsonl", &lines);
    let err = read_file(&path, &jsonl()).unwrap_err().to_string();
    assert!(
        err.contains("many.jsonl") && err.contains("12000 columns, more than the 10000"),
        "{err}"
    );
}

#[test]
fn date_and_date_time_strings_infer_as_in_csv() {
    let dir = TempDir::new().unwrap();
    let path = write(
        &dir,
        "t.jsonl",
        concat!(
            r#"{"at":"2025-07-19 20:25:47","zoned":"2025-07-19T20:25:47Z","day":"2025-07-19","n":"2025-07-19","s":"x"}"#,
            "\n",
            r#"{"at":"2025-07-20T01:02:03","zoned":"2025-07-19 20:25:47.123+02:00","day":null,"n":5,"s":"2025-07-19"}"#,
            "\n",
        ),
    );
    let out = read_file(&path, &jsonl()).unwrap();
    let types: Vec<_> = out
        .schema
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type().clone()))
        .collect();
    // Keys in serde_json's order (sorted).
    assert_eq!(
        types,
        vec![
            ("at", DataType::Timestamp(TimeUnit::Microsecond, None)),
            ("day", DataType::Date32),
            ("n", DataType::Utf8),
            ("s", DataType::Utf8),
            (
                "zoned",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            ),
        ]
    );
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    let batch = concat(&out.batches);
    let at = batch.column(0).as_primitive::<TimestampMicrosecondType>();
    assert_eq!(at.value(0), 1_752_956_747_000_000);
    let zoned = batch.column(4).as_primitive::<TimestampMicrosecondType>();
    assert_eq!(zoned.value(0), 1_752_956_747_000_000);
    assert_eq!(zoned.value(1), 1_752_956_747_123_000 - 7_200_000_000);
    let day = batch
        .column(1)
        .as_primitive::<arrow::datatypes::Date32Type>();
    assert_eq!((day.value(0), day.is_null(1)), (20_288, true));
}

/// Clickstream-like lines, as ShopFlow's tracker writes them.
fn clickstream(lines: usize) -> String {
    let mut text = String::with_capacity(lines * 260);
    for i in 0..lines {
        let campaign = if i % 3 == 0 {
            r#","campaign":"summer""#
        } else {
            ""
        };
        text.push_str(&format!(
            r#"{{"event_id":"evt-{i:08}","user_id":{},"event_type":"page_view","event_timestamp":"2026-01-{:02}T{:02}:{:02}:{:02}Z","user_agent":"Mozilla/5.0 (X11; Linux x86_64)","properties":{{"page":"/products/{}","referrer":"google","device":"desktop"{campaign}}}}}"#,
            i % 5000,
            1 + i % 28,
            i % 24,
            i % 60,
            (i * 7) % 60,
            i % 300,
        ));
        text.push('\n');
    }
    text
}

/// Not a timing test: a fixed workload to measure with callgrind (instruction counts are
/// deterministic, unlike the time of a debug build). Run:
/// `valgrind --tool=callgrind <test binary> --ignored --exact formats::jsonl::tests::callgrind_workload`.
#[test]
#[ignore = "a profiling workload, run by hand under callgrind (see its doc comment)"]
fn callgrind_workload() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "events.jsonl", &clickstream(20_000));
    let opts = ReadOptions {
        declared: vec![(
            "event_timestamp".to_string(),
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        )],
        ..jsonl()
    };
    let out = read_file(&path, &opts).unwrap();
    assert_eq!(out.rows, 20_000);
    assert!(out.rejected.is_empty());
}

#[test]
fn the_clickstream_workload_reads_every_line_with_its_drift() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "events.jsonl", &clickstream(3_000));
    let out = read_file(&path, &jsonl()).unwrap();
    assert_eq!(out.rows, 3_000);
    let properties = out.schema.field_with_name("properties").unwrap();
    let DataType::Struct(fields) = properties.data_type() else {
        panic!("{properties:?}")
    };
    assert!(fields.find("campaign").is_some());
    assert_eq!(
        out.schema
            .field_with_name("event_timestamp")
            .unwrap()
            .data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        "inferred from the strings"
    );
    let batch = concat(&out.batches);
    assert_eq!(ints(&batch, "user_id")[2_999], Some(2_999));
}
