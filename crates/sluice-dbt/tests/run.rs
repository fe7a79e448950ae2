//! Runs the `dbt_shop` fixture through the orchestrator (below the CLI) three times, changing its seeds
//! in between: snapshots (timestamp and check strategies), the three incremental strategies, the
//! ephemeral CTE, macros and test thresholds. `crates/sluice/tests/dbt.rs` does the same with the binary.

use std::path::Path;
use std::sync::Arc;

use sluice_orchestrate::{NodeStatus, RunOptions, StateStore};
use sluice_quality::CheckStatus;
use sluice_transform::Engine;

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

/// Rows as `a|b|c` strings.
async fn rows(engine: &Engine, sql: &str) -> Vec<String> {
    use sluice_transform::arrow::util::display::{ArrayFormatter, FormatOptions};
    let batches = engine
        .query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let opts = FormatOptions::default().with_null("-");
    let mut out = Vec::new();
    for b in &batches {
        let fmts: Vec<ArrayFormatter> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts).unwrap())
            .collect();
        for r in 0..b.num_rows() {
            out.push(
                fmts.iter()
                    .map(|f| f.value(r).to_string())
                    .collect::<Vec<_>>()
                    .join("|"),
            );
        }
    }
    out
}

async fn run_once(dir: &Path) -> (Engine, sluice_orchestrate::RunSummary) {
    let compiled = Arc::new(sluice_dbt::compile(sluice_dbt::load(dir).unwrap()).unwrap());
    let lake = sluice_lake::Lake::open(&compiled.project.lake_location()).unwrap();
    let engine = Engine::open(&lake, Some(&compiled)).await.unwrap();
    let state = Arc::new(StateStore::in_memory().unwrap());
    let summary = sluice_orchestrate::run(compiled, engine.clone(), state, RunOptions::default())
        .await
        .unwrap();
    (engine, summary)
}

fn write(dir: &Path, rel: &str, text: &str) {
    std::fs::write(dir.join(rel), text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shop_fixture_runs_across_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../sluice/tests/fixtures/dbt_shop"),
        dir,
    );
    let (engine, summary) = run_once(dir).await;
    for n in &summary.nodes {
        assert_eq!(n.status, NodeStatus::Success, "{}: {:?}", n.node, n.error);
    }
    let warned: Vec<&str> = summary
        .checks()
        .filter(|c| c.status == CheckStatus::Warn)
        .map(|c| c.name.as_str())
        .collect();
    // The relationships test is over `warn_if` and under `error_if`; the singular test is `warn`.
    assert!(
        warned.contains(&"relationships_stg_orders_customer_id"),
        "{warned:?}"
    );
    assert!(warned.contains(&"assert_no_big_spenders"), "{warned:?}");
    assert_eq!(warned.len(), 2, "{warned:?}");
    assert_eq!(
        rows(&engine, "select customer_id, number_of_orders, lifetime_value, returns, currency from gold.customers order by customer_id").await,
        ["1|2|25.0|0|EUR", "2|1|30.0|0|EUR", "3|1|5.0|1|EUR"]
    );
    // dbt.datediff and dbt_utils.generate_surrogate_key, built in.
    assert_eq!(
        rows(&engine, "select customer_id, days_active, customer_key = md5('1-Ada') from gold.customers order by customer_id").await,
        ["1|1|true", "2|0|false", "3|0|false"]
    );
    assert_eq!(
        rows(
            &engine,
            "select zip from silver.raw_customers order by customer_id"
        )
        .await,
        ["01234", "02139", "99501"]
    );

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
    write(
        dir,
        "seeds/raw_events.csv",
        "event_id,order_id,status,updated_at\n1,1,placed,2024-01-01 10:00:00\n2,2,PLACED,2024-01-01 11:00:00\n3,2,shipped,2024-01-02 09:00:00\n4,1,shipped,2024-01-03 08:00:00\n5,3,placed,2024-01-03 09:00:00\n",
    );
    let (engine, summary) = run_once(dir).await;
    for n in &summary.nodes {
        assert_eq!(n.status, NodeStatus::Success, "{}: {:?}", n.node, n.error);
    }
    assert_eq!(
        rows(&engine, "select customer_id, last_name, dbt_valid_from, dbt_valid_to from silver.customers_snapshot order by customer_id, dbt_valid_from").await,
        [
            "1|Lovelace|2024-01-01T00:00:00|-",
            "2|Hopper|2024-01-01T00:00:00|2024-02-01T00:00:00",
            "2|Murray|2024-02-01T00:00:00|-",
            "3|Turing|2024-01-01T00:00:00|-",
            "4|Dijkstra|2024-02-02T00:00:00|-",
        ]
    );
    assert_eq!(
        rows(&engine, "select order_id, count(*), sum(case when dbt_valid_to is null then 1 else 0 end), count(distinct dbt_scd_id) from silver.order_status_snapshot group by order_id order by order_id").await,
        ["1|2|1|2", "2|1|1|1", "3|1|1|1", "4|1|1|1", "5|1|1|1"]
    );
    assert_eq!(
        rows(
            &engine,
            "select event_id, status from gold.events_append order by event_id"
        )
        .await,
        ["1|placed", "2|placed", "3|shipped", "4|shipped", "5|placed"]
    );
    assert_eq!(
        rows(
            &engine,
            "select order_id, status from gold.order_status_merge order by order_id"
        )
        .await,
        ["1|shipped", "2|shipped", "3|placed"]
    );
    assert_eq!(
        rows(&engine, "select event_id, order_id, status from gold.order_events_delete_insert order by event_id").await,
        ["1|1|placed", "2|2|placed", "3|2|shipped", "4|1|shipped", "5|3|placed"]
    );

    // A third run with no change keeps the history as it is.
    let (engine, _) = run_once(dir).await;
    assert_eq!(
        rows(&engine, "select count(*) from silver.customers_snapshot").await,
        ["5"]
    );
    assert_eq!(
        rows(&engine, "select count(*) from silver.order_status_snapshot").await,
        ["6"]
    );
    assert_eq!(
        rows(&engine, "select count(*) from gold.events_append").await,
        ["5"]
    );
}

/// The jaffle_shop-like fixture (written for dbt-duckdb) under the dialect its profile names, and
/// under others by `vars.sluice_dialect`: `amount / 100` over integer cents, `concat` with a NULL
/// last name, `date + 3`, and a float cast to an integer.
/// One dialect's expectations: the `sluice_dialect` var (none: the profile's), the total, then the
/// orders and customers rows as `a|b|c`.
type DialectCase<'a> = (Option<&'a str>, &'a str, [&'a str; 3], [&'a str; 3]);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jaffle_fixture_means_what_its_adapter_means() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jaffle_dialect");
    let cases: [DialectCase; 4] = [
        // The profile: dbt-duckdb. Float division; concat skips NULL; casts round.
        (
            None,
            "100.0",
            [
                "1|35.01|2018-01-04",
                "2|15.0|2018-02-02",
                "3|49.99|2018-03-03",
            ],
            ["1|Michael P.|35", "2|Shawn |50", "3|Kathleen M.|15"],
        ),
        // PostgreSQL: integer division (DataFusion's own), cents are lost.
        (
            Some("postgres"),
            "98",
            ["1|35|2018-01-04", "2|14|2018-02-02", "3|49|2018-03-03"],
            ["1|Michael P.|35", "2|Shawn |49", "3|Kathleen M.|14"],
        ),
        // Snowflake: NUMBER(38,6) division; concat with NULL is NULL.
        (
            Some("snowflake"),
            "100.000000",
            [
                "1|35.010000|2018-01-04",
                "2|15.000000|2018-02-02",
                "3|49.990000|2018-03-03",
            ],
            ["1|Michael P.|35", "2|-|50", "3|Kathleen M.|15"],
        ),
        // Databricks: DOUBLE division, concat with NULL is NULL, casts truncate.
        (
            Some("databricks"),
            "100.0",
            [
                "1|35.01|2018-01-04",
                "2|15.0|2018-02-02",
                "3|49.99|2018-03-03",
            ],
            ["1|Michael P.|35", "2|-|49", "3|Kathleen M.|15"],
        ),
    ];
    for (var, total, orders, customers) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        copy_dir(&fixture, dir);
        if let Some(d) = var {
            let project = std::fs::read_to_string(dir.join("dbt_project.yml")).unwrap();
            write(
                dir,
                "dbt_project.yml",
                &format!("{project}\nvars:\n  sluice_dialect: {d}\n"),
            );
        }
        let (engine, summary) = run_once(dir).await;
        for n in &summary.nodes {
            assert_eq!(
                n.status,
                NodeStatus::Success,
                "{var:?} {}: {:?}",
                n.node,
                n.error
            );
        }
        assert_eq!(
            rows(&engine, "select round(sum(amount), 6) from gold.orders").await,
            [total],
            "{var:?}"
        );
        assert_eq!(
            rows(
                &engine,
                "select order_id, round(amount, 6), ship_by from gold.orders order by order_id"
            )
            .await,
            orders,
            "{var:?}"
        );
        assert_eq!(
            rows(&engine, "select customer_id, full_name, lifetime_value_rounded from gold.customers order by customer_id").await,
            customers,
            "{var:?}"
        );
    }
}

/// A model whose BIGINT arithmetic overflows fails, naming the model, under every warehouse dialect
/// (DataFusion would wrap around); the other models build with their usual figures. Under
/// `sluice_dialect: datafusion` the wrapped figure is DataFusion's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overflowing_model_fails_under_a_warehouse_dialect() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jaffle_dialect");
    // order_id 1 gives 2^62, order_id 2 gives 2^63: one beyond the largest BIGINT.
    let model =
        "select order_id, order_id * 4611686018427387904 as scaled from {{ ref('stg_orders') }}\n";
    for var in [None, Some("postgres"), Some("datafusion")] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        copy_dir(&fixture, dir);
        write(dir, "models/marts/scaled_orders.sql", model);
        if let Some(d) = var {
            let project = std::fs::read_to_string(dir.join("dbt_project.yml")).unwrap();
            write(
                dir,
                "dbt_project.yml",
                &format!("{project}\nvars:\n  sluice_dialect: {d}\n"),
            );
        }
        let (engine, summary) = run_once(dir).await;
        for n in &summary.nodes {
            let is_scaled = n.node.to_string().contains("scaled_orders");
            if is_scaled && var != Some("datafusion") {
                assert_eq!(n.status, NodeStatus::Failed, "{var:?}");
                let e = n.error.clone().unwrap_or_default();
                assert!(
                    e.contains("scaled_orders") && e.contains("integer overflow"),
                    "{var:?}: {e}"
                );
            } else {
                assert_eq!(
                    n.status,
                    NodeStatus::Success,
                    "{var:?} {}: {:?}",
                    n.node,
                    n.error
                );
            }
        }
        if var == Some("datafusion") {
            assert_eq!(
                rows(
                    &engine,
                    "select scaled from gold.scaled_orders where order_id <= 2 order by order_id"
                )
                .await,
                ["4611686018427387904", "-9223372036854775808"]
            );
        }
        assert_eq!(
            rows(&engine, "select count(*) from gold.orders").await,
            ["3"],
            "{var:?}"
        );
    }
}
