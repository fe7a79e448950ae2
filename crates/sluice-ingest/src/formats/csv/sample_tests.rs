//! Type inference as DuckDB does it, from a bounded sample, in one pass over the file.

use super::*;
use crate::formats::CSV_SAMPLE_ROWS;
use arrow::datatypes::{Date32Type, TimestampMicrosecondType};

fn types(out: &crate::formats::FileBatches) -> Vec<(String, DataType)> {
    out.schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone()))
        .collect()
}

/// The expectations are DuckDB 1.5.5's `read_csv` on the same text (`DESCRIBE SELECT * FROM
/// read_csv('t.csv')`): TIMESTAMP → Timestamp(µs), TIMESTAMP WITH TIME ZONE → Timestamp(µs, UTC),
/// DATE → Date32, VARCHAR → Utf8.
#[test]
fn dates_and_timestamps_infer_as_duckdb_does() {
    let dir = TempDir::new().unwrap();
    let path = write(
        &dir,
        "t.csv",
        b"a,b,c,d,e,f,g,h\n\
          2025-07-19 20:25:47,2025-07-19T20:25:47Z,2025-07-19 20:25:47.123+02:00,2025-07-19,2025-07-19T20:25:47,2025-07-19 20:25:47.123456,2025-07-19,2025-07-19 20:25:47\n\
          2025-07-20 01:02:03,2025-07-20T01:02:03Z,2025-07-20 01:02:03+00:00,2025-07-20,2025-07-20T01:02:03,2025-07-20 01:02:03,2025-07-19 20:25:47,2025-07-19T20:25:47Z\n",
    );
    let out = read_file(&path, &ReadOptions::new(FileFormat::Csv)).unwrap();
    let naive = DataType::Timestamp(TimeUnit::Microsecond, None);
    let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let expected = [
        ("a", naive.clone()),    // TIMESTAMP
        ("b", utc.clone()),      // TIMESTAMP WITH TIME ZONE
        ("c", utc.clone()),      // TIMESTAMP WITH TIME ZONE
        ("d", DataType::Date32), // DATE
        ("e", naive.clone()),    // TIMESTAMP
        ("f", naive),            // TIMESTAMP
        ("g", DataType::Utf8),   // VARCHAR: a date and a date-time
        ("h", utc),              // TIMESTAMP WITH TIME ZONE: one value has a zone
    ]
    .map(|(n, t)| (n.to_string(), t));
    assert_eq!(types(&out), expected);
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    let batch = concat(&out.batches);
    let micros = |column: &str| {
        batch
            .column_by_name(column)
            .unwrap()
            .as_primitive::<TimestampMicrosecondType>()
            .values()
            .to_vec()
    };
    // 2025-07-19 20:25:47 UTC.
    let at = 1_752_956_747_000_000;
    assert_eq!(
        micros("a")[0],
        at,
        "a naive value keeps its wall-clock time"
    );
    assert_eq!(micros("b")[0], at);
    assert_eq!(
        micros("c")[0],
        at + 123_000 - 2 * 3_600_000_000,
        "+02:00 is two hours earlier"
    );
    assert_eq!(micros("f")[0], at + 123_456);
    assert_eq!(micros("h")[0], at, "a naive value in a zoned column is UTC");
    let days = batch
        .column_by_name("d")
        .unwrap()
        .as_primitive::<Date32Type>();
    assert_eq!(days.value(0), 20_288);
}

/// A file header, then `rows` rows `i,i*2`.
fn numbered(rows: usize) -> String {
    let mut text = String::from("id,twice\n");
    for i in 0..rows {
        text.push_str(&format!("{i},{}\n", i * 2));
    }
    text
}

#[test]
fn types_come_from_a_bounded_sample_and_a_later_misfit_is_rejected_with_a_hint() {
    let dir = TempDir::new().unwrap();
    let mut text = numbered(CSV_SAMPLE_ROWS + 5);
    text.push_str("n/a,7\n");
    text.push_str("12,8\n");
    let path = write(&dir, "late.csv", text.as_bytes());
    let out = read_file(&path, &ReadOptions::new(FileFormat::Csv)).unwrap();
    assert_eq!(out.schema.field(0).data_type(), &DataType::Int64);
    assert_eq!(out.rows, CSV_SAMPLE_ROWS as u64 + 6);
    assert_eq!(out.rejected.len(), 1);
    let row = &out.rejected[0];
    assert_eq!(row.line, CSV_SAMPLE_ROWS as u64 + 7);
    assert_eq!(row.raw, "n/a,7");
    assert!(
        row.reason
            .contains("column `id`: expected Int64, found \"n/a\"")
            && row.reason.contains("inferred from the first 20480 rows")
            && row.reason.contains("declare the column's type"),
        "{}",
        row.reason
    );
    // Declared, the column reads every value.
    let opts = ReadOptions {
        declared: vec![("id".to_string(), DataType::Utf8)],
        ..ReadOptions::new(FileFormat::Csv)
    };
    let out = read_file(&path, &opts).unwrap();
    assert!(out.rejected.is_empty());
    assert_eq!(out.rows, CSV_SAMPLE_ROWS as u64 + 7);
}

#[test]
fn sampled_rows_keep_their_lines_order_and_batches() {
    let dir = TempDir::new().unwrap();
    // A bad row inside the sample, wide enough that the sample ends by bytes before its rows.
    let mut text = String::from("id,text\n1,a\nshort\n");
    let wide = "w".repeat(64 * 1024);
    for i in 2..200 {
        text.push_str(&format!("{i},{wide}\n"));
    }
    let path = write(&dir, "wide.csv", text.as_bytes());
    let opts = ReadOptions {
        batch_size: 7,
        ..ReadOptions::new(FileFormat::Csv)
    };
    let out = read_file(&path, &opts).unwrap();
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(
        (out.rejected[0].line, out.rejected[0].raw.as_str()),
        (3, "short")
    );
    let batch = concat(&out.batches);
    assert_eq!(
        ints(&batch, "id"),
        (1..200).map(Some).collect::<Vec<_>>(),
        "every row once, in file order"
    );
    assert!(out.batches.iter().all(|b| b.num_rows() <= 7));
}

/// A named pipe can be read once: reading one proves the file is parsed in a single pass.
#[cfg(unix)]
#[test]
fn a_file_is_read_once() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("once.csv");
    let made = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let text = numbered(50_000);
    let writer = {
        let path = path.clone();
        let text = text.clone();
        std::thread::spawn(move || std::fs::write(path, text))
    };
    // A second open of the pipe would wait for a writer forever: bound the wait instead.
    let (tx, rx) = std::sync::mpsc::channel();
    let reading = path.clone();
    std::thread::spawn(move || {
        let _ = tx.send(read_file(&reading, &ReadOptions::new(FileFormat::Csv)));
    });
    let out = rx
        .recv_timeout(std::time::Duration::from_secs(300))
        .expect("the read finishes: it opens the file once")
        .unwrap();
    writer.join().unwrap().unwrap();
    assert_eq!(out.rows, 50_000);
    assert_eq!(out.schema.field(1).data_type(), &DataType::Int64);
    let batch = concat(&out.batches);
    assert_eq!(ints(&batch, "twice")[49_999], Some(99_998));
}

/// Orders-like rows: ids, amounts, a status, a timestamp with a zone.
fn orders(rows: usize) -> String {
    let mut text = String::from("order_id,customer_id,amount,status,created_at\n");
    for i in 0..rows {
        text.push_str(&format!(
            "{i},{},{}.{:02},{},2026-01-{:02}T{:02}:{:02}:00Z\n",
            i % 977,
            i % 500,
            i % 100,
            ["placed", "paid", "shipped"][i % 3],
            1 + i % 28,
            i % 24,
            i % 60
        ));
    }
    text
}

/// Not a timing test: a fixed workload to measure with callgrind (instruction counts are
/// deterministic, unlike the time of a debug build). Run:
/// `valgrind --tool=callgrind <test binary> --ignored --exact formats::csv::tests::sample_tests::callgrind_workload`.
#[test]
#[ignore = "a profiling workload, run by hand under callgrind (see its doc comment)"]
fn callgrind_workload() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "orders.csv", orders(20_000).as_bytes());
    let out = read_file(&path, &ReadOptions::new(FileFormat::Csv)).unwrap();
    assert_eq!(out.rows, 20_000);
    assert!(out.rejected.is_empty());
}
