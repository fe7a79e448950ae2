//! What a backfill builds: exactly its partitions, once, resumably, only the gaps, never over a
//! partition whose checks fail, and a daily model only after its hourly upstream's whole day.

use super::*;

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
        .envs(super::common::state_db(dir).map(|s| ("SLUICE_STATE_DB", s)))
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
