//! Distributed SQL (docs/distributed.md): models whose `engine` is a Ballista cluster run their
//! SELECT on it and are staged, checked and committed by `sluice run` as local models are.
//!
//! The test starts a Ballista scheduler and two executors (the `sluice-ballista` crate: Ballista's
//! own scheduler and executor) in this test process, on a runtime of their own, and waits until
//! both executors have been accepted by the scheduler. They are in-process rather than
//! `sluice-ballista` child processes because Cargo gives a test the path of its own package's
//! binaries only (`CARGO_BIN_EXE_*`), and `cargo test -p sluice` does not build another package's
//! binary; `sluice run` is still a separate process, which reaches the scheduler and the executors
//! over gRPC and Arrow Flight on loopback sockets, as it would on several machines. The
//! `sluice-ballista` binary itself is tested in its crate.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{query_json, sluice, sluice_ok, write};
use sluice_ballista::{ExecutorOptions, start_executor, start_scheduler};

/// A scheduler and two executors, alive while this value is.
struct Cluster {
    scheduler: SocketAddr,
    work_dirs: Vec<PathBuf>,
    _tmp: tempfile::TempDir,
    // Dropped last: stopping the runtime stops the scheduler and the executors.
    _runtime: tokio::runtime::Runtime,
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn start_cluster() -> Cluster {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(32 << 20)
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let work_dirs: Vec<PathBuf> = (0..2)
        .map(|i| tmp.path().join(format!("executor-{i}")))
        .collect();
    let scheduler = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (addr, _task) = start_scheduler(listener, None).await.unwrap();
        let mut executors = Vec::new();
        for dir in &work_dirs {
            std::fs::create_dir_all(dir).unwrap();
            executors.push(start_executor(ExecutorOptions {
                scheduler_host: "127.0.0.1".into(),
                scheduler_port: addr.port(),
                bind: "127.0.0.1".into(),
                external_host: None,
                port: free_port(),
                grpc_port: free_port(),
                vcores: 2,
                work_dir: Some(dir.clone()),
            }));
        }
        for e in &executors {
            e.wait_ready(Duration::from_secs(120)).await.unwrap();
        }
        addr
    });
    Cluster {
        scheduler,
        work_dirs,
        _tmp: tmp,
        _runtime: runtime,
    }
}

/// Job folders in the executors' work folders (one per job an executor ran tasks of; kept for
/// the scheduler's clean-up delay, 300 s by default).
fn job_dirs(cluster: &Cluster) -> Vec<usize> {
    cluster
        .work_dirs
        .iter()
        .map(|d| {
            std::fs::read_dir(d)
                .map(|entries| {
                    entries
                        .filter_map(Result::ok)
                        .filter(|e| e.path().is_dir())
                        .count()
                })
                .unwrap_or(0)
        })
        .collect()
}

/// A TPC-H-like aggregation over ShopFlow (a join of order lines with customers, grouped and
/// ordered): several stages with shuffles between them.
const REVENUE_SQL: &str = "
select
    date_trunc('month', f.order_ts) as month,
    coalesce(c.acquisition_channel, 'unknown') as acquisition_channel,
    f.category,
    count(distinct f.order_id) as orders,
    count(*) as lines,
    sum(f.quantity) as units,
    round(sum(f.net_amount), 2) as net_revenue,
    min(f.unit_price) as min_price,
    max(f.unit_price) as max_price
from {{ ref('fct_orders') }} f
left join {{ ref('stg_customers') }} c on c.customer_id = f.customer_id
where not f.is_cancelled_or_abandoned
group by 1, 2, 3
";

fn rows(project: &Path, sql: &str) -> Vec<serde_json::Value> {
    query_json(project, sql)
}

fn count(project: &Path, sql: &str) -> u64 {
    let r = rows(project, &format!("select count(*) as n from ({sql}) t"));
    r[0]["n"].as_u64().expect("a count")
}

/// The same models built on Ballista and locally hold the same rows: an aggregation over a join,
/// and ShopFlow's `fct_orders` (window functions, CTEs, left joins over bronze tables).
#[test]
fn models_on_ballista_build_the_same_tables_as_locally() {
    let cluster = start_cluster();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shop");
    common::demo(&dir, "0.05", "11");
    let engine = format!(
        "{{{{ config(engine={{'kind': 'ballista', 'url': 'df://127.0.0.1:{}', 'connect_timeout': '20s'}}) }}}}\n",
        cluster.scheduler.port()
    );
    write(&dir, "models/gold/revenue_local.sql", REVENUE_SQL);
    write(
        &dir,
        "models/gold/revenue_dist.sql",
        &format!("{engine}{REVENUE_SQL}"),
    );
    let fct = std::fs::read_to_string(dir.join("models/silver/fct_orders.sql")).unwrap();
    write(
        &dir,
        "models/silver/fct_orders_dist.sql",
        &format!("{engine}{fct}"),
    );
    // The checks of a distributed model read its staged output, as a local model's do.
    write(
        &dir,
        "models/gold/dist.yml",
        "version: 2\nmodels:\n  - name: revenue_dist\n    columns:\n      - name: orders\n        tests: [not_null]\n  \
         - name: fct_orders_dist\n    columns:\n      - name: order_item_id\n        tests: [unique, not_null]\n",
    );
    let before = job_dirs(&cluster).iter().sum::<usize>();
    sluice_ok(
        &dir,
        &[
            "run",
            "--select",
            "revenue_local",
            "revenue_dist",
            "fct_orders_dist",
        ],
    );
    let after = job_dirs(&cluster);
    assert!(
        after.iter().sum::<usize>() > before,
        "no executor ran a task: job folders {after:?}"
    );

    for (dist, local) in [
        ("gold.revenue_dist", "gold.revenue_local"),
        ("silver.fct_orders_dist", "silver.fct_orders"),
    ] {
        let n = count(&dir, &format!("select * from {local}"));
        assert!(n > 10, "{local} has {n} rows");
        assert_eq!(count(&dir, &format!("select * from {dist}")), n, "{dist}");
        for (a, b) in [(dist, local), (local, dist)] {
            let extra = count(&dir, &format!("select * from {a} except select * from {b}"));
            assert_eq!(extra, 0, "{a} has rows {b} lacks");
        }
    }
    // Committed once, by this run, as an ordinary Delta table of the lake.
    assert!(
        dir.join("lake/gold/revenue_dist/_delta_log/00000000000000000000.json")
            .exists()
    );
}

/// A model whose engine cannot be reached fails with an error naming the engine, quickly (a
/// refused connection is not waited on; a silent host for `connect_timeout` at most), and its
/// table is not created.
#[test]
fn an_unreachable_engine_fails_the_model_clearly() {
    let (_tmp, dir) = common::init_project();
    let port = free_port();
    write(
        &dir,
        "models/gold/far_away.sql",
        &format!(
            "{{{{ config(engine={{'kind': 'ballista', 'url': 'df://127.0.0.1:{port}', 'connect_timeout': '3s'}}, retries=0) }}}}\nselect 1 as one\n"
        ),
    );
    let started = Instant::now();
    let out = sluice(&dir, &["run", "--select", "far_away"]);
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{shown}");
    assert!(shown.contains("distributed engine unreachable"), "{shown}");
    assert!(shown.contains(&format!("127.0.0.1:{port}")), "{shown}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    assert!(!dir.join("lake/gold/far_away/_delta_log").exists());

    // A bad engine in a model's config is a config error at its file, before anything runs.
    write(
        &dir,
        "models/gold/far_away.sql",
        "{{ config(engine={'kind': 'ballista', 'url': 'http://x'}) }}\nselect 1 as one\n",
    );
    let out = sluice(&dir, &["run", "--select", "far_away"]);
    let shown = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success());
    assert!(shown.contains("far_away.sql"), "{shown}");
    assert!(shown.contains("not a Ballista URL"), "{shown}");
}
