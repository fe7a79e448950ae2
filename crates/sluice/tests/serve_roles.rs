//! `sluice serve --role`: a scheduler process and an API process over one project and one state
//! database, each answering the probes an orchestrator sends.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use common::{http, write};

/// A `sluice serve` child and its stdout (kept open: a closed pipe would kill it on its next line).
struct Served {
    child: Child,
    addr: String,
    banner: Vec<String>,
    _stdout: BufReader<ChildStdout>,
}

impl Served {
    /// Starts `sluice serve` with `args` and reads its banner up to the scheduler's line.
    fn start(project: &Path, args: &[&str]) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("--project")
            .arg(project)
            .arg("serve")
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut banner = Vec::new();
        loop {
            let mut line = String::new();
            assert!(
                stdout.read_line(&mut line).unwrap() > 0,
                "serve ended: {banner:?}"
            );
            let done = line.starts_with("Scheduler:");
            banner.push(line.trim_end().to_string());
            if done {
                break;
            }
        }
        let addr = banner[0]
            .split("http://")
            .nth(1)
            .and_then(|s| s.split('/').next())
            .unwrap()
            .to_string();
        Served {
            child,
            addr,
            banner,
            _stdout: stdout,
        }
    }

    fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let (code, body) = http(&self.addr, "GET", path, None, "application/json");
        let json = serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
        (code, json)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_scheduler_and_an_api_process_share_one_state() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "sluice.yml", "name: roles\n");
    write(
        dir,
        "sources/files.yml",
        "kind: files\ntables:\n  - name: sales\n    path: landing/*.csv\n",
    );

    let scheduler = Served::start(
        dir,
        &[
            "--role",
            "scheduler",
            "--http",
            "127.0.0.1:0",
            "--sensor-interval",
            "200ms",
        ],
    );
    assert!(
        scheduler.banner[0].contains("--role scheduler"),
        "{:?}",
        scheduler.banner
    );
    assert!(
        !scheduler
            .banner
            .iter()
            .any(|l| l.contains("PostgreSQL wire")),
        "a scheduler serves no wire: {:?}",
        scheduler.banner
    );
    let (code, ready) = scheduler.get("/api/ready");
    assert_eq!(code, 200, "{ready}");
    assert_eq!(ready["checks"]["state"]["ok"], true, "{ready}");
    assert_eq!(ready["checks"]["lake"]["ok"], true, "{ready}");
    assert_eq!(scheduler.get("/api/health").0, 200);
    // Only the probes: the API belongs to the api role.
    assert_eq!(scheduler.get("/api/assets").0, 404);

    let api = Served::start(
        dir,
        &[
            "--role",
            "api",
            "--http",
            "127.0.0.1:0",
            "--no-pg",
            "--no-flight",
        ],
    );
    assert!(
        api.banner
            .iter()
            .any(|l| l.starts_with("Scheduler: off (--role api); runs requested here are queued")),
        "{:?}",
        api.banner
    );
    assert_eq!(api.get("/api/ready").0, 200);

    // A file arrives: the scheduler's sensor lands it, and the API process shows that run.
    write(dir, "landing/s.csv", "sale_id,amount\n1,10\n2,20\n");
    let deadline = Instant::now() + Duration::from_secs(120);
    let run = loop {
        let (code, runs) = api.get("/api/runs");
        assert_eq!(code, 200, "{runs}");
        let finished = runs
            .as_array()
            .and_then(|runs| runs.iter().find(|r| r["status"] != "running").cloned());
        if let Some(run) = finished {
            break run;
        }
        assert!(
            Instant::now() < deadline,
            "no run of the scheduler reached the API: {runs}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(run["status"], "success", "{run}");
    let (code, asset) = api.get("/api/assets/files.sales");
    assert_eq!(code, 200, "{asset}");
    assert_eq!(asset["asset"]["state"], "fresh", "{asset}");
    // The table was created by the other process after this one started; it reads it all the same
    // once it has synced with the lake (every second).
    let rows = loop {
        let (code, rows) = api.get("/api/assets/files.sales/rows");
        if code == 200 {
            break rows;
        }
        assert_eq!(code, 404, "{rows}");
        assert!(
            Instant::now() < deadline,
            "the API never saw the new table: {rows}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(rows.as_array().map(Vec::len), Some(2), "{rows}");

    // A newer version of a table it already reads: the next sync shows it too.
    write(dir, "landing/t.csv", "sale_id,amount\n3,30\n");
    loop {
        let (code, rows) = api.get("/api/assets/files.sales/rows");
        assert_eq!(code, 200, "{rows}");
        if rows.as_array().map(Vec::len) == Some(3) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the API kept an old version: {rows}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // A run requested from the API process is queued and executed by the scheduler process.
    let (code, body) = http(
        &api.addr,
        "POST",
        "/api/runs",
        Some(r#"{"select": "files.sales"}"#),
        "application/json",
    );
    assert_eq!(code, 202, "{body}");
    let run_id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let run = loop {
        let (code, run) = api.get(&format!("/api/runs/{run_id}"));
        assert_eq!(code, 200, "{run}");
        let status = run["run"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            ["queued", "running", "success"].contains(&status.as_str()),
            "{run}"
        );
        if status == "success" {
            break run;
        }
        assert!(Instant::now() < deadline, "the queued run never ran: {run}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(run["nodes"][0]["node"], "files.sales", "{run}");
    let state = rusqlite::Connection::open(dir.join(".sluice/state.db")).unwrap();
    let process: String = state
        .query_row(
            "SELECT process FROM run_processes WHERE run_id = ?1",
            [&run_id],
            |r| r.get(0),
        )
        .unwrap();
    let pid: u32 = process.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_eq!(pid, scheduler.child.id(), "the run ran in the API process");
}

/// A run queued while no scheduler runs waits (listed as `queued`), and a cancel removes it.
#[test]
fn a_queued_run_waits_for_a_scheduler_and_can_be_cancelled() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "sluice.yml", "name: queued\n");
    write(
        dir,
        "sources/files.yml",
        "kind: files\ntables:\n  - name: sales\n    path: landing/*.csv\n",
    );
    let api = Served::start(
        dir,
        &[
            "--role",
            "api",
            "--http",
            "127.0.0.1:0",
            "--no-pg",
            "--no-flight",
        ],
    );
    let (code, body) = http(
        &api.addr,
        "POST",
        "/api/runs",
        Some(r#"{"select": "files.sales"}"#),
        "application/json",
    );
    assert_eq!(code, 202, "{body}");
    let run_id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, run) = api.get(&format!("/api/runs/{run_id}"));
    assert_eq!(run["run"]["status"], "queued", "{run}");
    let (code, body) = http(
        &api.addr,
        "POST",
        &format!("/api/runs/{run_id}/cancel"),
        None,
        "application/json",
    );
    assert_eq!(code, 200, "{body}");
    let (_, run) = api.get(&format!("/api/runs/{run_id}"));
    assert_eq!(run["run"]["status"], "cancelled", "{run}");
}

#[test]
fn readiness_names_a_lake_that_is_gone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "sluice.yml", "name: gone\nlake: lake\n");
    let api = Served::start(
        dir,
        &[
            "--role",
            "api",
            "--http",
            "127.0.0.1:0",
            "--no-pg",
            "--no-flight",
        ],
    );
    assert_eq!(api.get("/api/ready").0, 200);
    std::fs::remove_dir_all(dir.join("lake")).unwrap();
    let (code, ready) = api.get("/api/ready");
    assert_eq!(code, 503, "{ready}");
    assert_eq!(ready["status"], "not_ready", "{ready}");
    assert_eq!(ready["checks"]["state"]["ok"], true, "{ready}");
    let error = ready["checks"]["lake"]["error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains("lake"), "{ready}");
    // Liveness does not depend on it: restarting would not bring the folder back.
    assert_eq!(api.get("/api/health").0, 200);
}
