//! Helpers for end-to-end tests that run the `sluice` binary.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// Runs `sluice` with `args` in `project` and returns its output.
pub fn sluice(project: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.arg("--project")
        .arg(project)
        .args(args)
        .env("SLUICE_LOG", "error");
    if let Some(state) = state_db(project) {
        cmd.env("SLUICE_STATE_DB", state);
    }
    cmd.output().expect("run sluice")
}

/// With `SLUICE_TEST_STATE_URL=postgres://…` set (`.ci/run`'s PostgreSQL pass), the state database
/// of `project`: a schema of its own on that server, the same for every command a test runs in
/// that project (named after its folder). Schemas are not dropped here: the pass uses a database
/// of its own, dropped and created again by `.ci/run`.
pub fn state_db(project: &Path) -> Option<String> {
    use std::hash::{Hash, Hasher};
    let base = std::env::var("SLUICE_TEST_STATE_URL")
        .ok()
        .filter(|u| !u.is_empty())?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::fs::canonicalize(project)
        .unwrap_or_else(|_| project.to_path_buf())
        .hash(&mut h);
    let sep = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{sep}schema=t_cli_{:016x}", h.finish()))
}

/// Runs and asserts success, returning stdout.
pub fn sluice_ok(project: &Path, args: &[&str]) -> String {
    let out = sluice(project, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "sluice {args:?} failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    stdout
}

/// Runs `sluice demo --no-serve` at a small scale into `dir`; returns stdout.
pub fn demo(dir: &Path, scale: &str, seed: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "demo",
            "--no-serve",
            "--scale",
            scale,
            "--seed",
            seed,
            "--dir",
        ])
        .arg(dir)
        .env("SLUICE_LOG", "error")
        .output()
        .expect("run sluice demo");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The run id printed on the last line of a run's output.
pub fn run_id_of(stdout: &str) -> String {
    stdout
        .lines()
        .last()
        .and_then(|l| l.split_whitespace().nth(1))
        .expect("a run summary line")
        .to_string()
}

/// How many attempts `node` took in run `run_id`, from `sluice runs RUN_ID`.
pub fn attempts_of(project: &Path, run_id: &str, node: &str) -> u32 {
    let detail = sluice_ok(project, &["runs", run_id]);
    let row = detail.lines().find(|l| l.contains(node)).expect("node row");
    row.split('|')
        .nth(4)
        .and_then(|c| c.trim().parse().ok())
        .expect("attempts column")
}

/// Runs a query and returns the rows as JSON objects.
pub fn query_json(project: &Path, sql: &str) -> Vec<serde_json::Value> {
    let out = sluice_ok(project, &["query", "--format", "json", sql]);
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("json row"))
        .collect()
}

/// A single number from a query.
pub fn query_f64(project: &Path, sql: &str) -> f64 {
    let rows = query_json(project, sql);
    let row = rows.first().expect("one row");
    let v = row
        .as_object()
        .and_then(|o| o.values().next())
        .cloned()
        .unwrap_or_default();
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0.0)
}

/// Writes a file, creating folders.
pub fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// A minimal HTTP/1.1 request (the API is plain HTTP on loopback); returns (status, body).
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    accept: &str,
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status: u16 = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n.min(rest.len())]);
        s = rest.get(n + 2..).unwrap_or("");
    }
    out
}

/// `sluice init` into a fresh folder `p` of a new temporary folder (kept while the guard lives).
pub fn init_project() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("init")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (tmp, dir)
}
