//! Alerts end to end: a model that fails alerts its owner's webhook once, however many runs fail,
//! and once more when it is fixed (docs/alerts.md).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use common::write;

/// A webhook on 127.0.0.1 that keeps every JSON body it receives and answers 200.
fn receiver() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((k, v)) = line.split_once(':')
                    && k.eq_ignore_ascii_case("content-length")
                {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_ok()
                && let Ok(json) = serde_json::from_slice(&body)
            {
                seen.lock().unwrap().push(json);
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (url, bodies)
}

fn sluice(dir: &Path, hook: &str, args: &[&str]) -> (Output, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("--project")
        .arg(dir)
        .args(args)
        .env("SLUICE_LOG", "error")
        .env("ALERTS_E2E_HOOK", hook)
        .output()
        .expect("run sluice");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out, stdout)
}

#[test]
fn a_failing_model_alerts_its_owner_once_and_again_when_fixed() {
    let (hook, bodies) = receiver();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(
        dir,
        "sluice.yml",
        "name: alerting\ndefaults:\n  retries: 1\n  retry_backoff: 10ms\nowners:\n  team: {webhook: \"${ALERTS_E2E_HOOK}\"}\n",
    );
    write(dir, "models/silver/good.sql", "select 1 as id");
    write(
        dir,
        "models/silver/broken.sql",
        "select no_such_column from (select 1 as id) t",
    );
    write(
        dir,
        "models/silver/schema.yml",
        "version: 2\nmodels:\n  - name: good\n    owner: team\n    freshness: {warn_after: 1h, error_after: 2h}\n  - name: broken\n    owner: team\n",
    );
    let (out, _) = sluice(dir, &hook, &["validate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    for round in 1..=2 {
        let (out, stdout) = sluice(dir, &hook, &["run"]);
        assert!(!out.status.success(), "the broken model fails the run");
        if round == 1 {
            assert!(
                stdout.contains("ALERT failure opened incident #1 (broken): sent to team"),
                "{stdout}"
            );
        } else {
            assert!(!stdout.contains("ALERT"), "no second alert: {stdout}");
        }
    }
    {
        let got = bodies.lock().unwrap();
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0]["asset"], "broken");
        assert_eq!(got[0]["owner"], "team");
        assert_eq!(got[0]["kind"], "failure");
        assert_eq!(got[0]["status"], "open");
        assert!(
            got[0]["text"].as_str().unwrap().contains("no_such_column"),
            "{got:?}"
        );
    }
    let (_, status) = sluice(dir, &hook, &["status"]);
    assert!(status.contains("failure #1"), "{status}");
    assert!(
        status.contains("fresh ("),
        "good is within its SLA: {status}"
    );

    write(dir, "models/silver/broken.sql", "select 1 as id");
    for _ in 0..2 {
        let (out, stdout) = sluice(dir, &hook, &["run"]);
        assert!(out.status.success(), "{stdout}");
    }
    let got = bodies.lock().unwrap();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1]["status"], "resolved");
    assert_eq!(got[1]["incident_id"], got[0]["incident_id"]);
    drop(got);
    let (_, status) = sluice(dir, &hook, &["status"]);
    assert!(!status.contains("failure #1"), "{status}");
}

#[test]
fn serve_sweeps_freshness_and_alerts_a_breach_once() {
    let (hook, bodies) = receiver();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(
        dir,
        "sluice.yml",
        "name: sla\nowners:\n  default: {webhook: \"${ALERTS_E2E_HOOK}\"}\n",
    );
    write(dir, "models/gold/daily.sql", "select 1 as id");
    write(
        dir,
        "models/gold/schema.yml",
        "version: 2\nmodels:\n  - name: daily\n    freshness: {warn_after: 30m, error_after: 2h}\n",
    );
    let (out, stdout) = sluice(dir, &hook, &["run"]);
    assert!(out.status.success(), "{stdout}");
    assert!(!stdout.contains("ALERT"), "just built: fresh. {stdout}");
    // The data was last new an hour ago (as if the build ran then).
    let db = rusqlite::Connection::open(dir.join(".sluice/state.db")).unwrap();
    db.execute(
        "UPDATE node_runs SET finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 hour')",
        [],
    )
    .unwrap();

    for _ in 0..2 {
        // Each server sweeps at start; the second finds the incident open and stays quiet.
        let mut server = Command::new(env!("CARGO_BIN_EXE_sluice"))
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
            .env("ALERTS_E2E_HOOK", &hook)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(server.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|s| s.split('/').next())
            .unwrap()
            .to_string();
        let mut open = serde_json::Value::Null;
        for _ in 0..100 {
            let (_, body) = common::http(&addr, "GET", "/api/freshness", None, "application/json");
            let list: serde_json::Value = serde_json::from_str(&body).unwrap();
            open = list[0]["open_incidents"].clone();
            if open.as_array().is_some_and(|a| !a.is_empty()) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert_eq!(open[0]["kind"], "freshness", "{open}");
        // The incident is recorded before its webhook goes out: wait for the delivery so the kill
        // below does not land in that window (a crash there is covered by `reclaim_stale`).
        for _ in 0..100 {
            if !bodies.lock().unwrap().is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        server.kill().unwrap();
        server.wait().unwrap();
    }
    {
        let got = bodies.lock().unwrap();
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(
            (got[0]["asset"].as_str(), got[0]["severity"].as_str()),
            (Some("daily"), Some("warn"))
        );
    }
    // A new build makes it fresh: `sluice run`'s own sweep sends the resolution.
    let (_, stdout) = sluice(dir, &hook, &["run"]);
    assert!(
        stdout.contains("ALERT freshness resolved incident #1 (daily): sent to default"),
        "{stdout}"
    );
    let got = bodies.lock().unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1]["status"], "resolved");
}
