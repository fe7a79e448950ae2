//! Choosing what a backfill builds: over HTTP (`POST /api/backfills`, with `exclude`) and with
//! `--exclude` and `--state` on the command line.

use super::*;

/// Polls `GET /api/backfills/{id}` until the backfill has finished; its last progress.
fn finished_backfill(addr: &str, id: &str) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let (code, body) = common::http(
            addr,
            "GET",
            &format!("/api/backfills/{id}"),
            None,
            "application/json",
        );
        assert_eq!(code, 200, "{body}");
        let p: serde_json::Value = serde_json::from_str(&body).unwrap();
        if p["status"] == "success" || p["status"] == "failed" {
            return p;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{p}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_api_starts_a_backfill_and_reports_its_progress() {
    use std::io::BufRead;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir);
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
        .env("SLUICE_NOW", NOW)
        .envs(super::common::state_db(dir).map(|s| ("SLUICE_STATE_DB", s)))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .unwrap()
        .to_string();
    let (code, body) = common::http(
        &addr,
        "POST",
        "/api/backfills",
        Some(r#"{"select": "daily", "from": "2024-05-02", "to": "2024-05-04"}"#),
        "application/json",
    );
    assert_eq!(code, 202, "{body}");
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let progress = finished_backfill(&addr, &id);
    assert_eq!(progress["status"], "success", "{progress}");
    assert_eq!(
        (progress["total"].as_u64(), progress["done"].as_u64()),
        (Some(3), Some(3))
    );
    let (code, _) = common::http(
        &addr,
        "GET",
        "/api/backfills/nope",
        None,
        "application/json",
    );
    assert_eq!(code, 404);
    let (code, body) = common::http(
        &addr,
        "POST",
        "/api/backfills",
        Some(r#"{"select": "daily", "from": "2024-05-09", "to": "2024-05-01"}"#),
        "application/json",
    );
    assert_eq!(code, 400, "{body}");
    // `exclude` leaves the downstream model out, as `--exclude` does.
    let (code, body) = common::http(
        &addr,
        "POST",
        "/api/backfills",
        Some(
            r#"{"select": "daily+", "exclude": "daily_totals", "from": "2024-05-05", "to": "2024-05-06"}"#,
        ),
        "application/json",
    );
    assert_eq!(code, 202, "{body}");
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let progress = finished_backfill(&addr, &id);
    assert_eq!(progress["status"], "success", "{progress}");
    assert_eq!(progress["total"].as_u64(), Some(2), "{progress}");
    assert_eq!(
        progress["selection"].as_str(),
        Some("daily+ --exclude daily_totals"),
        "{progress}"
    );
    // A run's `exclude` is resolved before it starts: an unknown name is a 400 that says so.
    let (code, body) = common::http(
        &addr,
        "POST",
        "/api/runs",
        Some(r#"{"select": "daily+", "exclude": "daily_totls"}"#),
        "application/json",
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("daily_totls") && body.contains("did you mean `daily_totals`"),
        "{body}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let mut want = expected(2, 6);
    want.retain(|_, v| v.0 > 0);
    assert_eq!(per_partition(dir, "daily", "amount"), want);
}

#[test]
fn exclude_and_state_narrow_a_backfill() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir);
    let out = ok(
        dir,
        &[
            "backfill",
            "--select",
            "daily+",
            "--exclude",
            "daily_totals",
            "--from",
            "2024-05-03",
            "--to",
            "2024-05-04",
        ],
    );
    assert!(
        out.contains("success: 2/2 partition(s) built, 0 failed"),
        "{out}"
    );
    assert_eq!(per_partition(dir, "daily", "amount"), expected(3, 4));
    // The excluded model built nothing.
    let listed = sluice(dir, &["partitions", "daily_totals", "--json"]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(!listed.contains("2024-05-03"), "{listed}");
    // `--state` compares with a previous manifest: nothing changed, so `state:modified` selects
    // nothing partitioned and the backfill says so.
    ok(dir, &["compile"]);
    let state = dir.join("prev-target");
    std::fs::rename(dir.join("target"), &state).unwrap();
    let out = sluice(
        dir,
        &[
            "backfill",
            "--select",
            "state:modified",
            "--state",
            state.to_str().unwrap(),
            "--from",
            "2024-05-03",
            "--to",
            "2024-05-04",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no time-partitioned model in the selection"),
        "{err}"
    );
    // Change `daily`'s SQL: now `state:modified+` selects it and its downstream.
    let sql = std::fs::read_to_string(dir.join("models/gold/daily.sql")).unwrap();
    std::fs::write(
        dir.join("models/gold/daily.sql"),
        format!("{sql}\n-- changed\n"),
    )
    .unwrap();
    let out = ok(
        dir,
        &[
            "backfill",
            "--select",
            "state:modified+",
            "--exclude",
            "leaky",
            "--state",
            state.to_str().unwrap(),
            "--from",
            "2024-05-03",
            "--to",
            "2024-05-04",
        ],
    );
    assert!(
        out.contains("success: 4/4 partition(s) built, 0 failed"),
        "{out}"
    );
}
