//! Bring your dbt project: the binary runs a dbt project folder (no sluice.yml) as it is.
//!
//! The fixture `fixtures/dbt_shop` is a small jaffle-shop-like project: seeds (one with `column_types`),
//! staging models (view / table / ephemeral by the config precedence), marts (table, three incremental
//! strategies), macros (with `adapter.dispatch` and `return`), `{% docs %}`, generic tests with config,
//! singular tests and two snapshots (timestamp and check). It is copied to a temporary folder, run, and
//! its seeds are changed between runs.

mod common;

use std::path::Path;

use common::{query_f64, sluice, sluice_ok, write};

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

fn fixture(name: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    copy_dir(&src, tmp.path());
    tmp
}

/// Result rows as CSV lines with `|` between fields (no field here holds a comma or a quote).
fn strings(project: &Path, sql: &str) -> Vec<String> {
    let out = sluice_ok(project, &["query", "--format", "csv", sql]);
    out.lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| l.replace(',', "|"))
        .collect()
}

#[test]
fn a_dbt_project_runs_as_it_is_across_runs() {
    let tmp = fixture("dbt_shop");
    let dir = tmp.path();

    let out = sluice_ok(dir, &["validate"]);
    assert!(out.contains("OK:"), "{out}");

    // Run 1.
    let out = sluice_ok(dir, &["run"]);
    // The relationships test has 1 failing row, under `error_if: ">10"` and over `warn_if: ">0"`.
    assert!(
        out.lines()
            .any(|l| l.starts_with("WARN relationships_stg_orders_customer_id")),
        "{out}"
    );
    // The warn singular test reports the two customers over 20 dollars; the error one passes.
    assert!(
        out.lines()
            .any(|l| l.starts_with("WARN assert_no_big_spenders") && l.contains("2 failing")),
        "{out}"
    );
    assert!(!out.contains("FAIL"), "{out}");

    // Layers: staging → silver, marts → gold; state and lake live inside the project.
    assert!(dir.join(".sluice/state.db").is_file());
    assert!(dir.join("lake/gold/orders/_delta_log").is_dir());
    // Config precedence: stg_customers is a view by dbt_project.yml, a table by its properties file.
    assert!(dir.join("lake/silver/stg_customers/_delta_log").is_dir());
    // stg_orders is a view (dbt_project.yml default for the project): queryable, nothing stored.
    assert!(!dir.join("lake/silver/stg_orders").exists());
    assert_eq!(
        query_f64(dir, "select count(*) from silver.stg_orders"),
        5.0
    );
    // stg_payments: table in its properties, ephemeral by config() in the SQL: nothing stored; its SQL
    // is inlined in `orders` (and readable as a view for tests and ad-hoc queries).
    assert!(!dir.join("lake/silver/stg_payments").exists());
    assert_eq!(
        query_f64(dir, "select sum(amount) from silver.stg_payments"),
        67.0
    );

    // Seeds: types inferred, `column_types` keeps the zip code as text.
    assert_eq!(
        strings(
            dir,
            "select zip from silver.raw_customers order by customer_id"
        ),
        ["01234", "02139", "99501"]
    );
    assert_eq!(
        strings(
            dir,
            "select arrow_typeof(customer_id) as t from silver.raw_customers limit 1"
        ),
        ["Int64"]
    );

    // Marts: the ephemeral CTE, the macro and the Jinja loop give dollars per payment method.
    assert_eq!(
        strings(
            dir,
            "select order_id, credit_card_amount, coupon_amount, amount from gold.orders order by order_id"
        ),
        [
            "1|10.0|0.0|10.0",
            "2|12.5|2.5|15.0",
            "3|0.0|0.0|30.0",
            "4|0.0|0.0|5.0",
            "5|7.0|0.0|7.0"
        ]
    );
    assert_eq!(
        strings(
            dir,
            "select customer_id, number_of_orders, lifetime_value, returns, currency from gold.customers order by customer_id"
        ),
        ["1|2|25.0|0|EUR", "2|1|30.0|0|EUR", "3|1|5.0|1|EUR"]
    );
    assert_eq!(
        query_f64(dir, "select count(*) from gold.events_append"),
        3.0
    );
    // Built-in cross-database macros: dbt.datediff, dbt_utils.generate_surrogate_key.
    assert_eq!(
        strings(
            dir,
            "select days_active, customer_key = md5('1-Ada') as k from gold.customers order by customer_id"
        ),
        ["1|true", "0|false", "0|false"]
    );

    // Snapshots, first run: every row current.
    assert_eq!(
        query_f64(
            dir,
            "select count(*) from silver.customers_snapshot where dbt_valid_to is null"
        ),
        3.0
    );

    // New data: customer 2 changes (newer updated_at), customer 3 changes without a newer updated_at
    // (the timestamp strategy ignores it), customer 4 arrives; order 1's status changes.
    write(
        dir,
        "seeds/raw_customers.csv",
        "customer_id,first_name,last_name,zip,updated_at\n1,Ada,Lovelace,01234,2024-01-01 00:00:00\n2,Grace,Murray,02139,2024-02-01 00:00:00\n3,Alan,Mathison,99501,2024-01-01 00:00:00\n4,Edsger,Dijkstra,10001,2024-02-02 00:00:00\n",
    );
    write(
        dir,
        "seeds/raw_orders.csv",
        "order_id,customer_id,order_date,status\n1,1,2024-01-05,completed\n2,1,2024-01-06,shipped\n3,2,2024-01-07,completed\n4,3,2024-01-08,returned\n5,9,2024-01-09,placed\n",
    );
    // Events: event 2 is rewritten with the same timestamp (incremental filters skip it), order 1 gets
    // a new event, order 3 appears.
    write(
        dir,
        "seeds/raw_events.csv",
        "event_id,order_id,status,updated_at\n1,1,placed,2024-01-01 10:00:00\n2,2,PLACED,2024-01-01 11:00:00\n3,2,shipped,2024-01-02 09:00:00\n4,1,shipped,2024-01-03 08:00:00\n5,3,placed,2024-01-03 09:00:00\n",
    );
    sluice_ok(dir, &["run"]);

    // Snapshot (timestamp): customer 2 has a closed and a current version; 3 is unchanged; 4 is new.
    assert_eq!(
        strings(
            dir,
            "select customer_id, last_name, cast(dbt_valid_from as varchar) as f, coalesce(cast(dbt_valid_to as varchar), '-') as t \
             from silver.customers_snapshot order by customer_id, dbt_valid_from"
        ),
        [
            "1|Lovelace|2024-01-01T00:00:00|-",
            "2|Hopper|2024-01-01T00:00:00|2024-02-01T00:00:00",
            "2|Murray|2024-02-01T00:00:00|-",
            "3|Turing|2024-01-01T00:00:00|-",
            "4|Dijkstra|2024-02-02T00:00:00|-",
        ]
    );
    assert_eq!(
        query_f64(
            dir,
            "select count(distinct dbt_scd_id) from silver.customers_snapshot"
        ),
        5.0
    );
    // Snapshot (check): order 1's status changed → two versions; the others one each.
    assert_eq!(
        strings(
            dir,
            "select order_id, count(*) as versions, sum(case when dbt_valid_to is null then 1 else 0 end) as current \
             from silver.order_status_snapshot group by order_id order by order_id"
        ),
        ["1|2|1", "2|1|1", "3|1|1", "4|1|1", "5|1|1"]
    );

    // Incremental, append: the 2 new events only (event 2 keeps its first version).
    assert_eq!(
        strings(
            dir,
            "select event_id, status from gold.events_append order by event_id"
        ),
        ["1|placed", "2|placed", "3|shipped", "4|shipped", "5|placed"]
    );
    // Incremental, merge on order_id: one row per order, the latest status.
    assert_eq!(
        strings(
            dir,
            "select order_id, status from gold.order_status_merge order by order_id"
        ),
        ["1|shipped", "2|shipped", "3|placed"]
    );
    // Incremental, delete+insert: every event of orders 1 and 3 replaced; order 2 untouched (its
    // event 2 still says `placed`, which a full rebuild would have turned into `PLACED`).
    assert_eq!(
        strings(
            dir,
            "select event_id, order_id, status from gold.order_events_delete_insert order by event_id"
        ),
        [
            "1|1|placed",
            "2|2|placed",
            "3|2|shipped",
            "4|1|shipped",
            "5|3|placed"
        ]
    );

    // Run 3 with no change: snapshots keep their history, nothing duplicates.
    sluice_ok(dir, &["run"]);
    assert_eq!(
        query_f64(dir, "select count(*) from silver.customers_snapshot"),
        5.0
    );
    assert_eq!(
        query_f64(dir, "select count(*) from silver.order_status_snapshot"),
        6.0
    );
    assert_eq!(
        query_f64(dir, "select count(*) from gold.events_append"),
        5.0
    );

    // `sluice test` runs the generic and singular tests against the published data.
    let out = sluice_ok(dir, &["test"]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("WARN assert_no_big_spenders")),
        "{out}"
    );

    // The models share the graph with everything else: lineage goes through the ephemeral model.
    let out = sluice_ok(dir, &["lineage", "stg_payments"]);
    assert!(
        out.contains("orders") && out.contains("raw_payments"),
        "{out}"
    );
}

#[test]
fn a_failing_singular_test_blocks_publishing() {
    let tmp = fixture("dbt_shop");
    let dir = tmp.path();
    write(
        dir,
        "tests/assert_no_returns.sql",
        "select * from {{ ref('orders') }} where status = 'returned'\n",
    );
    let out = sluice(dir, &["run"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("FAIL assert_no_returns") && l.contains("1 failing")),
        "{stdout}"
    );
    // `orders` was not published (its staged files were discarded: no Delta table, no data file),
    // and `customers` (downstream) was skipped.
    assert!(!dir.join("lake/gold/orders/_delta_log").exists());
    let left: Vec<_> = std::fs::read_dir(dir.join("lake/gold/orders"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    assert!(!dir.join("lake/gold/customers").exists());
}

#[test]
fn validate_lists_every_unsupported_use_with_file_line_and_column() {
    let tmp = fixture("dbt_unsupported");
    let dir = tmp.path();
    let out = sluice(dir, &["validate"]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    for expected in [
        "dbt_project.yml:3:1: unsupported: `on-run-end`",
        "packages.yml:4:14: unsupported: package `calogica/dbt_expectations`",
        "models/report.sql:2:8: unsupported: package macro `dbt_utils.star`",
        "models/base.sql:1:15: unsupported: `adapter.get_columns_in_relation`",
        "models/forecast.py: unsupported: Python models",
        "models/schema.yml:8:13: unsupported: generic test `dbt_utils.not_constant`",
        "models/schema.yml:9:1: unsupported: `unit_tests:`",
        "tests/generic_positive.sql:1:1: unsupported: custom generic tests",
        // Where the hook is set, not each model it applies to.
        "dbt_project.yml:7:5: unsupported: `post-hook`",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }
    // The unused macro's run_query is not a use; dbt_utils itself and its built-in macros are fine.
    assert!(!text.contains("run_query"), "{text}");
    assert!(!text.contains("dbt-labs/dbt_utils"), "{text}");
    assert!(!text.contains("generate_surrogate_key"), "{text}");
}

/// The warehouse SQL that docs/coming-from-dbt.md says runs as written.
#[test]
fn documented_dialect_features_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "dbt_project.yml", "name: dialect\n");
    write(
        dir,
        "seeds/t.csv",
        "id,name,d,ts\n1,Return A,2024-01-31,2024-01-31 10:00:00\n2,b,2024-02-29,2024-03-01 00:00:00\n",
    );
    write(
        dir,
        "models/staging/m.sql",
        "select\n  id::bigint as id,\n  name,\n  d::date as d,\n  ts,\n  '12.50'::numeric(10,2) as amount,\n  \"name\" ilike 'return%' as is_return\nfrom {{ ref('t') }}\n",
    );
    sluice_ok(dir, &["run"]);
    let one = |sql: &str| strings(dir, sql).join(",");
    assert_eq!(one("select count(*) from silver.m where is_return"), "1");
    assert_eq!(
        one("select cast(amount as varchar) from silver.m where id = 1"),
        "12.50"
    );
    assert_eq!(
        one("select cast(date_trunc('month', ts) as varchar) from silver.m where id = 2"),
        "2024-03-01T00:00:00"
    );
    assert_eq!(
        one("select cast(d + interval '7 days' as varchar) from silver.m where id = 1"),
        "2024-02-07"
    );
    assert_eq!(
        one("select date_part('day', ts) from silver.m where id = 1"),
        "31"
    );
    assert_eq!(
        one("select extract(month from d) from silver.m where id = 2"),
        "2"
    );
    assert_eq!(
        one("select to_char(d, '%Y/%m') from silver.m where id = 2"),
        "2024/02"
    );
    assert_eq!(
        one("select try_cast(name as int) is null from silver.m where id = 2"),
        "true"
    );
    assert_eq!(
        one("select count(*) filter (where id > 1) from silver.m"),
        "1"
    );
    assert_eq!(
        one("select string_agg(name, ';') from (select name from silver.m order by id) x"),
        "Return A;b"
    );
    assert_eq!(
        one(
            "select id from (select id, row_number() over (order by ts desc) as rn from silver.m) x where rn = 1"
        ),
        "2"
    );
}

#[test]
fn bench_generates_and_compiles_a_dbt_project() {
    let tmp = tempfile::tempdir().unwrap();
    let out = sluice_ok(
        tmp.path(),
        &[
            "bench",
            "--dbt-models",
            "300",
            "--dir",
            tmp.path().join("p").to_str().unwrap(),
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("bench JSON");
    // 300 models and the seed.
    assert_eq!(v["dbt"]["models"], 301, "{out}");
    assert_eq!(v["dbt"]["checks"], 60, "{out}");
    assert!(v["dbt"]["parse_compile_s"].as_f64().unwrap() > 0.0);
}

/// Seeds, macros, ephemeral models, delete+insert and snapshots are engine features: a native Sluice
/// project uses them too.
#[test]
fn native_projects_use_seeds_macros_and_ephemeral_models() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "sluice.yml", "name: native\n");
    write(
        dir,
        "seeds/rates.csv",
        "currency,rate\nEUR,1.10\nUSD,1.00\n",
    );
    write(
        dir,
        "macros/fx.sql",
        "{% macro to_usd(amount, currency) %}{{ amount }} * (select max(rate) from {{ ref('rates') }} r where r.currency = {{ currency }}){% endmacro %}\n",
    );
    write(
        dir,
        "models/silver/prices.sql",
        "{{ config(materialized='ephemeral') }}\nselect 'EUR' as currency, 10.0 as amount union all select 'USD', 5.0\n",
    );
    write(
        dir,
        "models/gold/prices_usd.sql",
        "select currency, {{ to_usd('amount', 'p.currency') }} as usd from {{ ref('prices') }} p\n",
    );
    sluice_ok(dir, &["run"]);
    assert_eq!(
        strings(
            dir,
            "select currency, round(usd, 2) as usd from gold.prices_usd order by currency"
        ),
        ["EUR|11.0", "USD|5.0"]
    );
    assert!(!dir.join("lake/silver/prices").exists());
}

/// A dbt `source()` reads what a Sluice connector lands (`sources/<source>.yml` in the dbt project);
/// a dbt source without one is reported by `validate`.
#[test]
fn dbt_sources_read_what_sluice_connectors_land() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "dbt_project.yml", "name: landed\n");
    write(
        dir,
        "sources/raw.yml",
        "kind: files\ntables:\n  - name: orders\n    path: landing/*.csv\n",
    );
    write(dir, "landing/a.csv", "id,amount\n1,10\n2,32\n");
    write(
        dir,
        "models/staging/sources.yml",
        "version: 2\nsources:\n  - name: raw\n    tables:\n      - name: orders\n      - name: refunds\n",
    );
    write(
        dir,
        "models/staging/stg_orders.sql",
        "select id, amount from {{ source('raw', 'orders') }}\n",
    );
    let out = sluice(dir, &["validate"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("models/staging/sources.yml:6:15: unsupported: dbt source `raw.refunds` has no Sluice connector"),
        "{err}"
    );
    write(
        dir,
        "models/staging/sources.yml",
        "version: 2\nsources:\n  - name: raw\n    tables:\n      - name: orders\n",
    );
    sluice_ok(dir, &["run"]);
    assert_eq!(
        query_f64(dir, "select sum(amount) from silver.stg_orders"),
        42.0
    );
    let out = sluice_ok(dir, &["lineage", "stg_orders"]);
    assert!(out.contains("raw.orders"), "{out}");
}
