//! What the scenarios share: a project with one source `conf` and one table `items`, runs of the
//! `sluice` binary (to completion, killed at a moment chosen by what is on disk, or sampled for peak
//! memory), and readings of the lake and the state database.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{query_f64, query_json, sluice_ok, write};
use crate::{ConformanceSource, SourceOptions, Upstream};

/// The bronze relation every scenario reads.
pub const BRONZE: &str = "bronze.conf__items";
/// Its quarantine.
pub const QUARANTINE: &str = "quarantine.conf__items";
/// The PII key of every conformance project (`hash` rules are HMAC-SHA-256 under it).
pub const PII_KEY: &str = "conformance-test-key";
/// The node whose watermark the state database keeps.
pub const NODE: &str = "conf.items";

/// A project of its own (removed with the guard).
pub struct Project {
    _tmp: tempfile::TempDir,
    /// The project folder.
    pub dir: PathBuf,
}

impl Project {
    /// A fresh project; `sources/conf.yml` is written by [`Project::source`].
    pub fn new() -> Project {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("p");
        // No retries: a failure must show, not be papered over.
        write(
            &dir,
            "sluice.yml",
            &format!("name: conformance\ndefaults:\n  retries: 0\npii:\n  key: {PII_KEY}\n"),
        );
        Project { _tmp: tmp, dir }
    }

    /// Moves the lake to `s3://BUCKET/conf` on `server`, with the server's keys in the project's
    /// `.env` (read by every `sluice` command; the YAML names no secret).
    pub fn on_s3(&self, server: &sluice_lake::testing::S3Server) {
        let yml = std::fs::read_to_string(self.dir.join("sluice.yml")).unwrap();
        write(
            &self.dir,
            "sluice.yml",
            &format!("{yml}{}", server.sluice_yml("conf")),
        );
        let env: String = server
            .env()
            .iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect();
        write(&self.dir, ".env", &env);
    }

    /// Writes the source file of `upstream`.
    pub fn source(&self, upstream: &dyn Upstream, opts: &SourceOptions) {
        write(&self.dir, "sources/conf.yml", &upstream.source_yaml(opts));
    }

    /// Provisions `kind` for `test`, or `None` when it is skipped (its server is down outside CI).
    pub fn provision(
        &self,
        kind: &dyn ConformanceSource,
        test: &str,
        rows: u64,
        payload: usize,
        unit: u64,
    ) -> Option<Box<dyn Upstream>> {
        let unique = format!(
            "{test}_{}_{}",
            std::process::id(),
            chrono::Utc::now().timestamp_micros() % 1_000_000_000
        );
        kind.provision(&self.dir, &unique, rows, payload, unit)
    }

    /// `sluice run` to completion; returns stdout.
    pub fn run(&self) -> String {
        sluice_ok(&self.dir, &["run", "--threads", "1"])
    }

    /// Spawns `sluice run` (output discarded).
    pub fn spawn(&self) -> Child {
        Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("--project")
            .arg(&self.dir)
            .args(["run", "--threads", "1"])
            .env("SLUICE_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sluice")
    }

    /// The bronze table's folder.
    pub fn table_dir(&self) -> PathBuf {
        self.dir.join("lake/bronze/conf/items")
    }

    /// Whether bronze has a committed table.
    pub fn landed(&self) -> bool {
        commits(&self.table_dir()) > 0
    }

    /// One number from SQL.
    pub fn number(&self, sql: &str) -> f64 {
        query_f64(&self.dir, sql)
    }

    /// Rows from SQL.
    pub fn rows(&self, sql: &str) -> Vec<serde_json::Value> {
        query_json(&self.dir, sql)
    }

    /// `(rows, distinct ids, largest id)` of bronze; zeros before the first commit.
    pub fn bronze_ids(&self) -> (u64, u64, u64) {
        if !self.landed() {
            return (0, 0, 0);
        }
        let row = self.rows(&format!(
            "select count(*) as n, count(distinct id) as d, coalesce(max(id), 0) as m from {BRONZE}"
        ));
        let get = |k: &str| as_u64(&row[0][k]).unwrap_or_else(|| panic!("{k} in {row:?}"));
        (get("n"), get("d"), get("m"))
    }

    /// The watermark of `conf.items` in the state database, if any.
    pub fn state_watermark(&self) -> Option<serde_json::Value> {
        let path = self.dir.join(".sluice/state.db");
        if !path.exists() {
            return None;
        }
        let db = rusqlite::Connection::open(path).unwrap();
        let has_table: bool = db
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'watermarks'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .unwrap()
            > 0;
        if !has_table {
            return None;
        }
        db.query_row(
            "SELECT value FROM watermarks WHERE node = ?1",
            [NODE],
            |r| r.get::<_, String>(0),
        )
        .ok()
        .map(|s| serde_json::from_str(&s).unwrap_or(serde_json::Value::String(s)))
    }

    /// The `sluice.watermark` of every bronze commit that records one, oldest first.
    pub fn commit_watermarks(&self) -> Vec<serde_json::Value> {
        commit_infos(&self.table_dir())
            .into_iter()
            .filter_map(|info| info.get("sluice.watermark").cloned())
            .collect()
    }
}

/// A JSON number or numeric text as an integer.
pub fn as_u64(v: &serde_json::Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_f64().map(|f| f as u64))
        .or_else(|| {
            v.as_str()
                .and_then(|s| s.trim().parse::<f64>().ok())
                .map(|f| f as u64)
        })
}

/// Committed versions of a Delta table: its numbered `_delta_log/*.json` files.
pub fn commits(table: &Path) -> usize {
    log_files(table).len()
}

fn log_files(table: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(table.join("_delta_log")) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && p.file_stem()
                    .and_then(|s| s.to_str())
                    .is_some_and(|s| s.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    files.sort();
    files
}

/// The `commitInfo` of every commit, oldest first.
pub fn commit_infos(table: &Path) -> Vec<serde_json::Value> {
    log_files(table)
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .filter_map(|text| {
            text.lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .find_map(|v| v.get("commitInfo").cloned())
        })
        .collect()
}

/// Data files under a table folder (committed or not).
fn data_files(table: &Path) -> usize {
    fn walk(dir: &Path, n: &mut usize) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "_delta_log") {
                    walk(&p, n);
                }
            } else if p.extension().is_some_and(|e| e == "parquet") {
                *n += 1;
            }
        }
    }
    let mut n = 0;
    walk(table, &mut n);
    n
}

/// When a run is killed, decided by what the run has put on disk.
#[derive(Debug, Clone, Copy)]
pub enum KillAt {
    /// As soon as it is spawned (before or while it opens the project).
    Spawned,
    /// Once this many new commits of the table are visible: the next chunk is being read or written.
    Commits(usize),
    /// Once a new data file is on disk that no commit has taken in yet: between a write and its commit.
    UncommittedFile,
}

/// Runs `sluice run`, SIGKILLs it at `at` (or when it has run `limit` without reaching it) and reaps
/// it. Returns whether the process was still running when killed.
pub fn run_killed(project: &Project, at: KillAt, limit: Duration) -> bool {
    let table = project.table_dir();
    let commits_before = commits(&table);
    let mut child = project.spawn();
    let started = Instant::now();
    let mut seen_commits = commits_before;
    let mut files_at_commit = data_files(&table);
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        let reached = match at {
            KillAt::Spawned => true,
            KillAt::Commits(n) => commits(&table) >= commits_before + n,
            KillAt::UncommittedFile => {
                let c = commits(&table);
                let f = data_files(&table);
                if c != seen_commits {
                    seen_commits = c;
                    files_at_commit = f;
                    false
                } else {
                    f > files_at_commit
                }
            }
        };
        if reached || started.elapsed() > limit {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = child.kill(); // SIGKILL
    let status = child.wait().unwrap();
    // Killed by the signal, not exited by itself between the last look and the kill.
    !status.success() && status.code().is_none()
}

/// Resident memory of `pid` in bytes.
fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Runs `sluice run` to completion, sampling its resident memory; returns the peak.
pub fn run_peak_rss(project: &Project) -> u64 {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("--project")
        .arg(&project.dir)
        .args(["run", "--threads", "1"])
        .env("SLUICE_LOG", "error")
        // glibc keeps freed memory in up to 8 arenas per core, so with many threads the peak creeps
        // up with the number of chunks whatever they hold; two arenas leave the memory the load
        // keeps (measured: a chunk four times larger still shows plainly).
        .env("MALLOC_ARENA_MAX", "2")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut peak = 0;
    let status = loop {
        if let Some(r) = rss(pid) {
            peak = peak.max(r);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    assert!(status.success(), "sluice run failed: {err}");
    peak
}

/// Skips (returns `None`) or fails under `CI=true` when `addr` does not answer.
pub fn service(addr: &str, what: &str) -> Option<()> {
    match std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2)) {
        Ok(_) => Some(()),
        Err(e) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{what} is not reachable at {addr} under CI=true: {e}"
            );
            eprintln!("skipping: {what} is not reachable at {addr}: {e}");
            None
        }
    }
}
