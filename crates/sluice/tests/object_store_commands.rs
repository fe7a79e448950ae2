//! The commands of a project on `lake: s3://…` give what they give on local disk: each project is
//! built twice, once in a folder and once in a bucket of a real S3-protocol server
//! (`sluice_lake::testing::S3Server`), and the same queries must answer the same. Covered here:
//! every materialization, seeds and snapshots (a dbt project), Parquet and JSON-lines files,
//! time partitions and `sluice backfill`, a failing check that keeps the published data,
//! `sluice history` / `restore` / `VERSION AS OF`, `sluice maintain`, and a `lake:` URL with
//! credentials in it refused by `sluice validate`. Ingestion of every source kind on S3 is the
//! conformance suite's `lands_on_s3` scenario; serving and exports are in `object_store.rs`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use sluice_lake::testing::S3Server;

/// The fixed clock of the partitioned project (which partitions a plain run builds).
const NOW: &str = "2024-06-30T12:00:00Z";

/// One project built on local disk and in a bucket.
struct Twin {
    _tmp: tempfile::TempDir,
    local: PathBuf,
    s3: PathBuf,
    server: S3Server,
}

impl Twin {
    /// `None` when no S3 server is installed (outside CI).
    fn new(bucket: &str) -> Option<Twin> {
        let server = S3Server::start(bucket)?;
        let tmp = tempfile::tempdir().unwrap();
        Some(Twin {
            local: tmp.path().join("local"),
            s3: tmp.path().join("s3"),
            _tmp: tmp,
            server,
        })
    }

    fn dirs(&self) -> [&Path; 2] {
        [&self.local, &self.s3]
    }

    /// Points the S3 copy at the bucket: `lake:` lines appended to its `sluice.yml` (written
    /// without a `lake:`), the server's keys in its `.env` as an operator keeps them.
    fn move_to_s3(&self, prefix: &str) {
        let yml = std::fs::read_to_string(self.s3.join("sluice.yml")).unwrap_or_default();
        assert!(!yml.contains("lake:"), "{yml}");
        common::write(
            &self.s3,
            "sluice.yml",
            &format!("{yml}{}", self.server.sluice_yml(prefix)),
        );
        let env: String = self
            .server
            .env()
            .iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect();
        common::write(&self.s3, ".env", &env);
    }

    /// Runs `args` in both copies; both must succeed (or both fail, with `expect_ok` false).
    fn both(&self, args: &[&str], expect_ok: bool) -> [String; 2] {
        self.dirs().map(|dir| {
            let out = sluice(dir, args);
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            assert_eq!(
                out.status.success(),
                expect_ok,
                "sluice {args:?} in {}\nstdout:\n{stdout}\nstderr:\n{}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            stdout
        })
    }

    /// The rows of `sql` in both copies, which must be equal; returns them.
    fn same(&self, sql: &str) -> Vec<Value> {
        let [local, s3] = self.dirs().map(|dir| rows(dir, sql));
        assert_eq!(local, s3, "{sql}: local disk vs S3");
        local
    }

    /// Nothing of the S3 copy's lake is on local disk.
    fn assert_nothing_on_disk(&self) {
        assert!(!self.s3.join("lake").exists());
        assert!(self.local.join("lake").is_dir());
    }
}

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

fn rows(dir: &Path, sql: &str) -> Vec<Value> {
    let out = sluice(dir, &["query", "--format", "json", sql]);
    assert!(
        out.status.success(),
        "{sql} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn every_materialization_seeds_and_snapshots_of_a_dbt_project_on_s3() {
    let Some(twin) = Twin::new("dbt") else {
        return;
    };
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dbt_shop");
    for dir in twin.dirs() {
        copy_dir(&fixture, dir);
    }
    // A sluice.yml beside dbt_project.yml brings the lake.
    common::write(&twin.s3, "sluice.yml", "name: shop\n");
    twin.move_to_s3("dbt");
    twin.both(&["run"], true);
    // New data for every kind of model, as in dbt.rs: a snapshot row changes, an incremental
    // model gets new and changed rows.
    for dir in twin.dirs() {
        common::write(
            dir,
            "seeds/raw_customers.csv",
            "customer_id,first_name,last_name,zip,updated_at\n1,Ada,Lovelace,01234,2024-01-01 00:00:00\n2,Grace,Murray,02139,2024-02-01 00:00:00\n3,Alan,Mathison,99501,2024-01-01 00:00:00\n4,Edsger,Dijkstra,10001,2024-02-02 00:00:00\n",
        );
        common::write(
            dir,
            "seeds/raw_orders.csv",
            "order_id,customer_id,order_date,status\n1,1,2024-01-05,completed\n2,1,2024-01-06,shipped\n3,2,2024-01-07,completed\n4,3,2024-01-08,returned\n5,9,2024-01-09,placed\n",
        );
        common::write(
            dir,
            "seeds/raw_events.csv",
            "event_id,order_id,status,updated_at\n1,1,placed,2024-01-01 10:00:00\n2,2,PLACED,2024-01-01 11:00:00\n3,2,shipped,2024-01-02 09:00:00\n4,1,shipped,2024-01-03 08:00:00\n5,3,placed,2024-01-03 09:00:00\n",
        );
    }
    twin.both(&["run"], true);
    twin.assert_nothing_on_disk();

    // Seeds (silver), a table, a view, an ephemeral model read as a view.
    twin.same("select * from silver.raw_customers order by customer_id");
    twin.same("select * from gold.orders order by order_id");
    twin.same("select count(*) as n, sum(amount) as a from silver.stg_payments");
    // Snapshots: timestamp (history closed by updated_at) and check strategies.
    let snapshot = twin.same(
        "select customer_id, last_name, cast(dbt_valid_from as varchar) as f, \
         cast(dbt_valid_to as varchar) as t from silver.customers_snapshot \
         order by customer_id, dbt_valid_from",
    );
    assert_eq!(snapshot.len(), 5, "{snapshot:?}");
    let versions = twin.same(
        "select order_id, count(*) as versions, sum(case when dbt_valid_to is null then 1 else 0 end) \
         as current from silver.order_status_snapshot group by order_id order by order_id",
    );
    assert_eq!(versions[0]["versions"], 2, "{versions:?}");
    // Incremental append, merge and delete+insert.
    let appended = twin.same("select event_id, status from gold.events_append order by event_id");
    assert_eq!(appended.len(), 5, "{appended:?}");
    let merged =
        twin.same("select order_id, status from gold.order_status_merge order by order_id");
    assert_eq!(merged.len(), 3, "{merged:?}");
    twin.same("select * from gold.order_events_delete_insert order by event_id");
    // The tests ran against the published data in the bucket as on disk.
    let [local, s3] = twin.both(&["test"], true);
    let verdicts = |out: &str| -> Vec<String> {
        let mut v: Vec<String> = out
            .lines()
            .filter(|l| l.starts_with("PASS") || l.starts_with("WARN") || l.starts_with("FAIL"))
            .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
            .collect();
        v.sort();
        v
    };
    assert_eq!(verdicts(&local), verdicts(&s3), "{local}\n{s3}");
    assert!(!verdicts(&s3).is_empty(), "{s3}");
}

/// A native project: JSON-lines events and Parquet items; `daily` partitioned by day, `items_total`
/// a table over the Parquet source, `guarded` a table with an error check.
fn native_project(dir: &Path) {
    use std::sync::Arc;

    use sluice_transform::arrow::array::{Int64Array, RecordBatch, StringArray};
    use sluice_transform::arrow::datatypes::{DataType, Field, Schema};

    common::write(dir, "sluice.yml", "name: ops\ndefaults:\n  retries: 0\n");
    common::write(
        dir,
        "sources/files.yml",
        "kind: files\ntables:\n  - name: events\n    path: landing/*.jsonl\n  \
         - name: items\n    path: parquet/*.parquet\n",
    );
    let lines: String = (0..60)
        .map(|i| {
            let day = 25 + i % 6;
            format!(
                "{{\"id\": {i}, \"ts\": \"2024-06-{day:02}T{:02}:00:00Z\", \"amount\": {}}}\n",
                i % 24,
                i * 3
            )
        })
        .collect();
    common::write(dir, "landing/a.jsonl", &lines);
    std::fs::create_dir_all(dir.join("parquet")).unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3, 4])),
            Arc::new(StringArray::from(vec![
                Some("a"),
                None,
                Some("c"),
                Some("d"),
            ])),
        ],
    )
    .unwrap();
    let file = std::fs::File::create(dir.join("parquet/items-1.parquet")).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    common::write(
        dir,
        "models/gold/daily.sql",
        "{{ config(partition_by={'field': 'ts', 'granularity': 'day', 'start': '2024-06-25'}) }}\n\
         select id, cast(ts as timestamp) as ts, amount from {{ source('files', 'events') }}\n\
         where cast(ts as timestamp) >= '{{ partition_start }}' and cast(ts as timestamp) < '{{ partition_end }}'\n",
    );
    common::write(
        dir,
        "models/gold/items_total.sql",
        "{{ config(materialized='table') }}\n\
         select count(*) as n, sum(id) as ids, count(name) as named from {{ source('files', 'items') }}",
    );
    common::write(
        dir,
        "models/gold/guarded.sql",
        "{{ config(materialized='table') }}\n\
         select id, amount from {{ source('files', 'events') }}",
    );
    common::write(
        dir,
        "models/gold/schema.yml",
        "version: 2\nmodels:\n  - name: guarded\n    tests:\n      - expression: {expr: \"amount < 1000\"}\n",
    );
}

#[test]
fn partitions_backfills_checks_time_travel_and_maintenance_on_s3() {
    let Some(twin) = Twin::new("ops") else {
        return;
    };
    for dir in twin.dirs() {
        native_project(dir);
    }
    twin.move_to_s3("ops");
    twin.both(&["run"], true);
    twin.assert_nothing_on_disk();
    let per_partition = "select _partition as p, count(*) as n, sum(amount) as a from gold.daily \
                         group by _partition order by _partition";
    let parts = twin.same(per_partition);
    assert_eq!(
        parts.len(),
        6,
        "one partition per day 25..30 June: {parts:?}"
    );
    let items = twin.same("select * from gold.items_total");
    assert_eq!(items[0]["n"], 4, "{items:?}");
    assert_eq!(items[0]["named"], 3, "{items:?}");
    twin.same("select id, name, _source from bronze.files__items order by id");

    // A backfill of two days rebuilds exactly those partitions, in one commit each.
    let history = |dir: &Path, asset: &str| -> Vec<Value> {
        let out = sluice(dir, &["history", asset, "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    };
    let before = history(&twin.s3, "daily").len();
    twin.both(
        &[
            "backfill",
            "--select",
            "daily",
            "--from",
            "2024-06-26",
            "--to",
            "2024-06-27",
        ],
        true,
    );
    assert_eq!(history(&twin.s3, "daily").len(), before + 2);
    assert_eq!(
        twin.same(per_partition),
        parts,
        "a backfill changes nothing"
    );

    // New events: one breaks `guarded`'s check, whose table keeps its published rows.
    let guarded = twin.same("select count(*) as n, max(amount) as m from gold.guarded");
    for dir in twin.dirs() {
        common::write(
            dir,
            "landing/b.jsonl",
            "{\"id\": 100, \"ts\": \"2024-06-30T10:00:00Z\", \"amount\": 5000}\n",
        );
    }
    let [local, s3] = twin
        .dirs()
        .map(|dir| sluice(dir, &["run"]).status.success());
    assert_eq!(local, s3);
    assert!(!s3, "the check fails the run");
    assert_eq!(
        twin.same("select count(*) as n, max(amount) as m from gold.guarded"),
        guarded,
        "a failed check publishes nothing"
    );
    twin.same(per_partition);
    twin.same("select count(*) as n from bronze.files__events");

    // Time travel: history, VERSION AS OF, restore (a new version, recorded as a run).
    let [local, s3] = twin.dirs().map(|dir| history(dir, "guarded").len());
    assert_eq!(local, s3);
    let first = twin.same("select count(*) as n from bronze.files__events version as of 0");
    assert_eq!(first[0]["n"], 60, "{first:?}");
    let [local, s3] = twin.dirs().map(|dir| history(dir, "items_total").len());
    assert_eq!(local, s3);
    assert!(s3 >= 2, "items_total is rebuilt by every run");
    let [_, out] = twin.both(&["restore", "items_total", "--version", "0"], true);
    assert!(out.contains("restored to version 0"), "{out}");
    assert_eq!(history(&twin.s3, "items_total").len(), s3 + 1);
    twin.same("select * from gold.items_total");
    twin.same("select * from gold.items_total version as of 0");

    // Maintenance: compaction and checkpoints on the bucket; the rows do not change.
    let counts = "select (select count(*) from gold.daily) as d, \
                  (select count(*) from bronze.files__events) as e";
    let counted = twin.same(counts);
    let [_, out] = twin.both(&["maintain"], true);
    assert!(out.contains("daily"), "{out}");
    assert_eq!(twin.same(counts), counted);
}

#[test]
fn a_lake_url_with_credentials_in_it_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    common::write(
        dir,
        "sluice.yml",
        "name: p\nlake: s3://AKIAEXAMPLEKEY:wJalrXUtnFEMI@bucket/lake\n",
    );
    let out = sluice(dir, &["validate"]);
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{shown}");
    assert!(shown.contains("sluice.yml:2:"), "{shown}");
    assert!(shown.contains("carries a password"), "{shown}");
    assert!(
        !shown.contains("wJalrXUtnFEMI") && !shown.contains("AKIAEXAMPLEKEY"),
        "{shown}"
    );
    // In lake_options, a secret in clear is refused the same way (the key is named).
    common::write(
        dir,
        "sluice.yml",
        "name: p\nlake: s3://bucket/lake\nlake_options:\n  secret_access_key: wJalrXUtnFEMI\n",
    );
    let out = sluice(dir, &["validate"]);
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{shown}");
    assert!(shown.contains("lake_options.secret_access_key"), "{shown}");
    assert!(!shown.contains("wJalrXUtnFEMI"), "{shown}");
}
