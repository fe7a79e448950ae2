//! Time partitions and backfills, end to end through the binary: a backfill builds exactly the
//! partitions of its range, once each and idempotently; a backfill killed midway resumes with only
//! what is left; `--missing` fills only the gaps; a failing check keeps a partition's previous data.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::write;

/// The fixed clock of these tests (the partitions a plain run and `sluice partitions` consider).
const NOW: &str = "2024-06-30T12:00:00Z";

fn sluice(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("--project")
        .arg(dir)
        .args(args)
        .env("SLUICE_LOG", "error")
        .env("SLUICE_NOW", NOW)
        .output()
        .expect("run sluice")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = sluice(dir, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "sluice {args:?} failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `(day of May 2024, amount)` of every generated event; a few fall on 30 April and 1 June.
fn events() -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for d in 1..=31u32 {
        for i in 0..(d * 7) % 5 {
            let hour = (i * 5 + d) % 24;
            out.push((
                format!("2024-05-{d:02}T{hour:02}:{:02}:00Z", (i * 13) % 60),
                f64::from(d * 10 + i),
            ));
        }
    }
    out.push(("2024-04-30T23:59:59Z".into(), 1.0));
    out.push(("2024-06-01T00:00:00Z".into(), 2.0));
    out
}

/// Per day `YYYY-MM-DD` in `from..=to` (day numbers of May): (rows, total amount).
fn expected(from: u32, to: u32) -> BTreeMap<String, (u64, f64)> {
    let mut m: BTreeMap<String, (u64, f64)> = BTreeMap::new();
    for (ts, amount) in events() {
        let day = &ts[..10];
        let in_range = (from..=to).any(|d| day == format!("2024-05-{d:02}"));
        if in_range {
            let e = m.entry(day.to_string()).or_default();
            e.0 += 1;
            e.1 += amount;
        }
    }
    m
}

/// A project: JSON-lines events, `daily` (partitioned by day on `ts`), its downstream
/// `daily_totals` (partitioned on `day`), and `leaky`, whose SQL ignores the window.
fn project(dir: &Path) {
    write(dir, "sluice.yml", "name: parts\n");
    write(
        dir,
        "sources/files.yml",
        "kind: files\ntables:\n  - name: events\n    path: landing/*.jsonl\n",
    );
    let lines: String = events()
        .iter()
        .enumerate()
        .map(|(i, (ts, amount))| {
            format!("{{\"id\": {i}, \"ts\": \"{ts}\", \"amount\": {amount}}}\n")
        })
        .collect();
    write(dir, "landing/a.jsonl", &lines);
    write(
        dir,
        "models/gold/daily.sql",
        "{{ config(partition_by={'field': 'ts', 'granularity': 'day', 'start': '2024-05-01'}) }}\n\
         select id, cast(ts as timestamp) as ts, amount from {{ source('files', 'events') }}\n\
         where cast(ts as timestamp) >= '{{ partition_start }}' and cast(ts as timestamp) < '{{ partition_end }}'\n",
    );
    write(
        dir,
        "models/gold/daily_totals.sql",
        "{{ config(partition_by={'field': 'day', 'granularity': 'day', 'start': '2024-05-01'}) }}\n\
         select cast(ts as date) as day, count(*) as n, sum(amount) as total from {{ ref('daily') }}\n\
         where ts >= '{{ partition_start }}' and ts < '{{ partition_end }}'\ngroup by cast(ts as date)\n",
    );
    write(
        dir,
        "models/gold/leaky.sql",
        "{{ config(partition_by={'field': 'ts', 'granularity': 'day'}) }}\n\
         select id, cast(ts as timestamp) as ts from {{ source('files', 'events') }}\n",
    );
    write(
        dir,
        "models/gold/schema.yml",
        "version: 2\nmodels:\n  - name: daily\n    tests:\n      - expression: {expr: \"amount >= 0\"}\n",
    );
    ok(dir, &["run", "--select", "files.events"]);
}

/// Rows and amount per `_partition` of a table.
fn per_partition(dir: &Path, table: &str, amount: &str) -> BTreeMap<String, (u64, f64)> {
    let sql = format!(
        "select _partition as p, count(*) as n, sum({amount}) as a from gold.{table} group by _partition"
    );
    common::query_json(dir, &sql)
        .into_iter()
        .map(|r| {
            (
                r["p"].as_str().unwrap().to_string(),
                (r["n"].as_u64().unwrap(), r["a"].as_f64().unwrap_or(0.0)),
            )
        })
        .collect()
}

/// How many commits of a table's Delta log replaced each partition.
fn commits_per_partition(dir: &Path, table: &str) -> BTreeMap<String, u32> {
    let mut m = BTreeMap::new();
    let log = dir.join("lake/gold").join(table).join("_delta_log");
    let Ok(entries) = std::fs::read_dir(&log) else {
        return m;
    };
    for e in entries {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        for v in text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        {
            if let Some(k) = v["commitInfo"]["sluice.partition"].as_str() {
                *m.entry(k.to_string()).or_insert(0) += 1;
            }
        }
    }
    m
}

fn keys(from: u32, to: u32) -> Vec<String> {
    (from..=to).map(|d| format!("2024-05-{d:02}")).collect()
}

#[test]
fn a_backfill_builds_exactly_its_partitions_once_and_idempotently() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir);
    let out = ok(
        dir,
        &[
            "backfill",
            "--select",
            "daily+ leaky",
            "--from",
            "2024-05-03",
            "--to",
            "2024-05-09",
            "--threads",
            "3",
        ],
    );
    assert!(out.contains("Starting backfill bf-"), "{out}");
    assert!(
        out.contains("success: 21/21 partition(s) built, 0 failed"),
        "{out}"
    );
    let want = expected(3, 9);
    assert_eq!(per_partition(dir, "daily", "amount"), want);
    // The downstream model saw each upstream partition (dependency order per partition).
    let totals: BTreeMap<String, (u64, f64)> = common::query_json(
        dir,
        "select _partition as p, n, total from gold.daily_totals",
    )
    .into_iter()
    .map(|r| {
        (
            r["p"].as_str().unwrap().to_string(),
            (r["n"].as_u64().unwrap(), r["total"].as_f64().unwrap()),
        )
    })
    .collect();
    assert_eq!(totals, want);
    // Rows outside a partition's window never leak into it, even from SQL that ignores the window.
    let leaky: BTreeMap<String, u64> = per_partition(dir, "leaky", "id")
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    assert_eq!(
        leaky,
        want.iter()
            .map(|(k, v)| (k.clone(), v.0))
            .collect::<BTreeMap<_, _>>()
    );
    // One replace commit per partition.
    let once: BTreeMap<String, u32> = keys(3, 9).into_iter().map(|k| (k, 1)).collect();
    assert_eq!(commits_per_partition(dir, "daily"), once);
    assert_eq!(commits_per_partition(dir, "daily_totals"), once);

    // Again: the same data (each partition replaced, nothing duplicated).
    let out = ok(
        dir,
        &[
            "backfill",
            "--select",
            "daily",
            "--from",
            "2024-05-03",
            "--to",
            "2024-05-09",
        ],
    );
    assert!(out.contains("7/7 partition(s) built"), "{out}");
    assert_eq!(per_partition(dir, "daily", "amount"), want);
    let twice: BTreeMap<String, u32> = keys(3, 9).into_iter().map(|k| (k, 2)).collect();
    assert_eq!(commits_per_partition(dir, "daily"), twice);

    // The state lists one built range and the gaps around it; the run history has the backfills.
    let listed: serde_json::Value =
        serde_json::from_str(&ok(dir, &["partitions", "daily", "--json"])).unwrap();
    assert_eq!(
        listed["built"],
        serde_json::json!([["2024-05-03", "2024-05-09"]])
    );
    assert_eq!(
        listed["gaps"],
        serde_json::json!([["2024-05-01", "2024-05-02"], ["2024-05-10", "2024-06-30"]])
    );
    let runs = ok(dir, &["runs"]);
    assert_eq!(runs.matches("backfill").count(), 2, "{runs}");
}

#[test]
fn a_killed_backfill_resumes_with_only_what_is_left() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir);
    let args = [
        "backfill",
        "--select",
        "daily",
        "--from",
        "2024-05-01",
        "--to",
        "2024-06-29",
        "--threads",
        "1",
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("--project")
        .arg(dir)
        .args(args)
        .env("SLUICE_LOG", "error")
        .env("SLUICE_NOW", NOW)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        let built: u32 = commits_per_partition(dir, "daily").values().sum();
        if built >= 5 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the backfill made no progress"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = commits_per_partition(dir, "daily");
    assert!(
        before.len() < 60,
        "killed too late: {} partitions built",
        before.len()
    );

    // The same command again resumes the same backfill and builds only what is not done.
    let out = ok(dir, &args);
    let line = out.lines().next().unwrap();
    assert!(line.starts_with("Resuming backfill bf-"), "{out}");
    let left: u64 = line
        .split(": ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        left <= 60 - (before.len() as u64 - 1) && left < 60,
        "{line}; built before: {}",
        before.len()
    );
    assert!(out.contains("success"), "{out}");
    let after = commits_per_partition(dir, "daily");
    let all: Vec<String> = (1..=31)
        .map(|d| format!("2024-05-{d:02}"))
        .chain((1..=29).map(|d| format!("2024-06-{d:02}")))
        .collect();
    assert_eq!(after.keys().cloned().collect::<Vec<_>>(), all);
    // At most the partition in flight when killed was built twice.
    assert!(after.values().filter(|n| **n > 1).count() <= 1, "{after:?}");
    let mut want = expected(1, 31);
    want.insert("2024-06-01".into(), (1, 2.0));
    assert_eq!(per_partition(dir, "daily", "amount"), want);
}

#[test]
fn missing_fills_only_the_gaps() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir);
    ok(
        dir,
        &[
            "backfill",
            "--select",
            "daily",
            "--from",
            "2024-05-05",
            "--to",
            "2024-05-07",
        ],
    );
    ok(
        dir,
        &[
            "backfill",
            "--select",
            "daily",
            "--from",
            "2024-05-12",
            "--to",
            "2024-05-12",
        ],
    );
    let out = ok(
        dir,
        &[
            "backfill",
            "--select",
            "daily",
            "--missing",
            "--to",
            "2024-05-14",
        ],
    );
    assert!(out.contains("10 of 10 partition(s) left"), "{out}");
    let once: BTreeMap<String, u32> = keys(1, 14).into_iter().map(|k| (k, 1)).collect();
    assert_eq!(commits_per_partition(dir, "daily"), once);
    assert_eq!(per_partition(dir, "daily", "amount"), expected(1, 14));
    // Nothing is missing any more up to there.
    let out = ok(
        dir,
        &[
            "backfill",
            "--select",
            "daily",
            "--missing",
            "--to",
            "2024-05-14",
        ],
    );
    assert!(out.contains("0 of 0 partition(s) left"), "{out}");
    let listed: serde_json::Value =
        serde_json::from_str(&ok(dir, &["partitions", "daily", "--json"])).unwrap();
    assert_eq!(
        listed["built"],
        serde_json::json!([["2024-05-01", "2024-05-14"]])
    );
}

#[test]
fn a_failing_check_keeps_the_partitions_previous_data() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir);
    ok(
        dir,
        &[
            "backfill",
            "--select",
            "daily+",
            "--from",
            "2024-05-01",
            "--to",
            "2024-05-05",
        ],
    );
    let before = per_partition(dir, "daily", "amount");
    // New data: a negative amount on 3 May (fails the check), a good event on 4 May.
    write(
        dir,
        "landing/b.jsonl",
        "{\"id\": 1000, \"ts\": \"2024-05-03T10:00:00Z\", \"amount\": -5}\n{\"id\": 1001, \"ts\": \"2024-05-04T10:00:00Z\", \"amount\": 7}\n",
    );
    ok(dir, &["run", "--select", "files.events"]);
    let out = sluice(
        dir,
        &[
            "backfill",
            "--select",
            "daily+",
            "--from",
            "2024-05-01",
            "--to",
            "2024-05-05",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("FAILED daily 2024-05-03"), "{stdout}");
    assert!(
        stdout.contains("FAILED daily_totals 2024-05-03: skipped"),
        "{stdout}"
    );
    assert!(
        stdout.contains("failed: 8/10 partition(s) built, 2 failed"),
        "{stdout}"
    );
    let after = per_partition(dir, "daily", "amount");
    assert_eq!(
        after["2024-05-03"], before["2024-05-03"],
        "the failed partition keeps its data"
    );
    let (n, a) = before["2024-05-04"];
    assert_eq!(
        after["2024-05-04"],
        (n + 1, a + 7.0),
        "the others are rebuilt"
    );
    let runs = ok(dir, &["runs"]);
    assert!(runs.contains("partial"), "{runs}");
}

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
            "--no-scheduler",
        ])
        .env("SLUICE_LOG", "error")
        .env("SLUICE_NOW", NOW)
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

#[test]
fn a_daily_model_waits_for_the_24_hours_of_its_hourly_upstream() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir);
    write(
        dir,
        "models/silver/hourly.sql",
        "{{ config(partition_by={'field': 'ts', 'granularity': 'hour'}) }}\n\
         select cast(ts as timestamp) as ts, amount from {{ source('files', 'events') }}\n\
         where cast(ts as timestamp) >= '{{ partition_start }}' and cast(ts as timestamp) < '{{ partition_end }}'\n",
    );
    write(
        dir,
        "models/gold/day_of_hours.sql",
        "{{ config(partition_by={'field': 'day', 'granularity': 'day'}) }}\n\
         select cast(ts as date) as day, count(*) as n, sum(amount) as total from {{ ref('hourly') }}\n\
         where ts >= '{{ partition_start }}' and ts < '{{ partition_end }}' group by cast(ts as date)\n",
    );
    let out = ok(
        dir,
        &[
            "backfill",
            "--select",
            "hourly+",
            "--from",
            "2024-05-03",
            "--to",
            "2024-05-04T23",
            "--threads",
            "4",
        ],
    );
    assert!(
        out.contains("hourly                           48/48"),
        "{out}"
    );
    assert!(
        out.contains("day_of_hours                     2/2"),
        "{out}"
    );
    let got: BTreeMap<String, (u64, f64)> = common::query_json(
        dir,
        "select _partition as p, n, total from gold.day_of_hours",
    )
    .into_iter()
    .map(|r| {
        (
            r["p"].as_str().unwrap().to_string(),
            (r["n"].as_u64().unwrap(), r["total"].as_f64().unwrap()),
        )
    })
    .collect();
    assert_eq!(got, expected(3, 4));
    let hours = common::query_f64(dir, "select count(distinct _partition) from silver.hourly");
    let want_hours: std::collections::BTreeSet<String> = events()
        .iter()
        .filter(|(ts, _)| ts.starts_with("2024-05-03") || ts.starts_with("2024-05-04"))
        .map(|(ts, _)| ts[..13].to_string())
        .collect();
    assert_eq!(hours, want_hours.len() as f64);
}
