//! A table far larger than a memory bound streams over HTTP while the server's resident memory,
//! read from `/proc/<pid>/status`, stays within that bound.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{sluice_ok, write};

/// Rows in the table.
const ROWS: u64 = 1_000_000;
/// Growth of the server's resident memory allowed while it streams the table.
const BOUND_BYTES: u64 = 40 * 1024 * 1024;

/// `VmRSS` of a process, in bytes.
fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Sends a request over HTTP/1.0 (so the body is not chunked and ends when the server closes) and
/// counts the body's bytes and lines without keeping it.
fn stream_count(addr: &str, request_body: &str, accept: &str) -> (u16, u64, u64) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let req = format!(
        "POST /api/sql HTTP/1.0\r\nHost: {addr}\r\nAccept: {accept}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{request_body}",
        request_body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut r = BufReader::with_capacity(1 << 16, s);
    let mut status_line = String::new();
    r.read_line(&mut status_line).unwrap();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        if h == "\r\n" || h.is_empty() {
            break;
        }
    }
    let (mut bytes, mut lines) = (0u64, 0u64);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        bytes += n as u64;
        lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
    }
    (status, bytes, lines)
}

#[test]
fn a_table_larger_than_the_memory_bound_streams_as_csv_and_ndjson_with_flat_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "sluice.yml", "name: big\n");
    // Wide rows: a 100-character text per row (stored compactly, sent in full).
    write(
        dir,
        "models/gold/big.sql",
        &format!(
            "select value as id, value * 0.5 as amount, repeat('x', 100) as payload \
             from range({ROWS})"
        ),
    );
    sluice_ok(dir, &["run"]);

    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("--project")
        .arg(dir)
        .args([
            "serve",
            "--http",
            "127.0.0.1:0",
            "--no-pg",
            "--no-flight",
            "--no-scheduler",
        ])
        .env("SLUICE_LOG", "error")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .unwrap()
        .to_string();

    // Warm up (engine, allocator arenas), then take the baseline.
    let sql = r#"{"sql": "select * from gold.big"}"#;
    let (status, _, lines) = stream_count(
        &addr,
        r#"{"sql": "select * from gold.big limit 100000"}"#,
        "text/csv",
    );
    assert_eq!((status, lines), (200, 100_001));
    let baseline = rss(pid).expect("the server's /proc status");

    for (accept, per_row) in [("text/csv", 0), ("application/x-ndjson", 1)] {
        let peak = Arc::new(AtomicU64::new(baseline));
        let done = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (peak, done) = (peak.clone(), done.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    if let Some(r) = rss(pid) {
                        peak.fetch_max(r, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        };
        let (status, bytes, lines) = stream_count(&addr, sql, accept);
        done.store(true, Ordering::Relaxed);
        sampler.join().unwrap();
        assert_eq!(status, 200);
        // CSV has a header line; NDJSON one line per row.
        assert_eq!(lines, ROWS + 1 - per_row, "{accept}");
        assert!(
            bytes > 2 * BOUND_BYTES + BOUND_BYTES / 2,
            "the result ({bytes} bytes) is far larger than the bound"
        );
        let grew = peak.load(Ordering::Relaxed).saturating_sub(baseline);
        eprintln!(
            "{accept}: streamed {} MiB; server RSS {} MiB at rest, grew by at most {} MiB",
            bytes >> 20,
            baseline >> 20,
            grew >> 20
        );
        assert!(
            grew < BOUND_BYTES,
            "{accept}: the server grew by {} MiB while streaming {} MiB",
            grew >> 20,
            bytes >> 20
        );
    }
    let _ = child.kill();
    let _ = child.wait();
    drop(stdout);
}
