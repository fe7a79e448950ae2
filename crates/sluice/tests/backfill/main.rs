//! Time partitions and backfills, end to end through the binary: a backfill builds exactly the
//! partitions of its range, once each and idempotently; a backfill killed midway resumes with only
//! what is left; `--missing` fills only the gaps; a failing check keeps a partition's previous data
//! (`builds`); the HTTP API, `--exclude` and `--state` choose what a backfill builds (`selection`).
//! This file holds the project and the helpers both share.

mod builds;
#[path = "../common.rs"]
mod common;
mod selection;

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
        .envs(common::state_db(dir).map(|s| ("SLUICE_STATE_DB", s)))
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
