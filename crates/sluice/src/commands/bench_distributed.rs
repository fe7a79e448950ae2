//! `sluice bench --distributed df://host:port`: a TPC-H-like aggregation over ShopFlow at `--scale`,
//! in this process and on a Ballista cluster (docs/distributed.md), as JSON.
//!
//! ShopFlow is generated, landed and built locally first; then the query (order lines joined with
//! customers, grouped by month, channel and category: TPC-H Q1/Q5's shape) runs [`RUNS`] times on
//! each engine over the same pinned table versions. The report gives each engine's median and best
//! wall time, the rows returned, and whether both engines returned the same rows. The cluster is
//! the caller's (`sluice-ballista scheduler` and executors, docs/distributed.md): timings depend on
//! how many executors it has and where they run, which the report cannot see, so it says so.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use serde_json::json;
use sluice_core::engine_spec::EngineSpec;
use sluice_ingest::generator::{GeneratorConfig, generate};
use sluice_orchestrate::{NodeStatus, RunOptions};
use sluice_transform::arrow::array::RecordBatch;
use sluice_transform::{Engine, pretty};

use super::demo::write_example;
use super::open;

/// Runs of the query on each engine.
const RUNS: usize = 3;

/// The query: order lines joined with customers, filtered, grouped and ordered.
const QUERY: &str = "
select
    date_trunc('month', f.order_ts) as month,
    coalesce(c.acquisition_channel, 'unknown') as acquisition_channel,
    coalesce(f.category, 'unknown') as category,
    count(distinct f.order_id) as orders,
    count(*) as lines,
    sum(f.quantity) as units,
    round(sum(f.line_amount), 2) as gross_revenue,
    round(sum(f.net_amount), 2) as net_revenue,
    round(avg(f.unit_price), 4) as avg_price
from silver.fct_orders f
left join silver.stg_customers c on c.customer_id = f.customer_id
where not f.is_cancelled_or_abandoned
group by 1, 2, 3
order by 1, 2, 3";

/// Settings of the distributed benchmark.
#[derive(Debug, Clone)]
pub struct DistributedBench {
    /// ShopFlow scale.
    pub scale: f64,
    /// Generator seed.
    pub seed: u64,
    /// The `engine:` of the cluster (`df://host:port`).
    pub url: String,
}

/// Builds ShopFlow locally, then times [`QUERY`] locally and on the cluster.
pub async fn bench_distributed(
    settings: &DistributedBench,
    dir: Option<&Path>,
) -> Result<ExitCode> {
    let engine_spec = EngineSpec::from_value(&json!({"kind": "ballista", "url": settings.url}))
        .map_err(|e| anyhow!("--distributed: {e}"))?;
    let temp;
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => {
            temp = tempfile::tempdir().context("creating a temporary folder")?;
            temp.path().to_path_buf()
        }
    };
    write_example(&dir)?;
    generate(
        &GeneratorConfig {
            scale: settings.scale,
            seed: settings.seed,
        },
        &dir.join("data"),
    )?;
    let ws = open(&dir).await?;
    let built = sluice_orchestrate::run(
        ws.compiled.clone(),
        ws.engine.clone(),
        ws.state.clone(),
        RunOptions {
            threads: ws.compiled.project.config.defaults.threads,
            command: "bench".into(),
            ..RunOptions::default()
        },
    )
    .await?;
    if built.count(NodeStatus::Failed) > 0 {
        return Err(anyhow!("building ShopFlow failed; see `sluice runs`"));
    }
    let lines = ws
        .engine
        .query("select count(*) from silver.fct_orders")
        .await?;
    let input_rows = count_of(&lines);

    let local = time_query(&ws.engine, &EngineSpec::Local).await?;
    let distributed = time_query(&ws.engine, &engine_spec).await?;
    let same_rows = pretty(&local.batches) == pretty(&distributed.batches);
    let report = json!({
        "scale": settings.scale,
        "seed": settings.seed,
        "query": "order lines joined with customers, grouped by month, channel and category",
        "input_rows": input_rows,
        "runs": RUNS,
        "local": local.report(),
        "distributed": {
            "engine": settings.url,
            "timing": distributed.report(),
        },
        "same_rows": same_rows,
        "note": "the cluster's executors (how many, on which machines) are not visible here; on one \
                 machine they share its cores with this process",
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(if same_rows {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

struct Timing {
    seconds: Vec<f64>,
    batches: Vec<RecordBatch>,
}

impl Timing {
    fn report(&self) -> serde_json::Value {
        let mut sorted = self.seconds.clone();
        sorted.sort_by(f64::total_cmp);
        let rows: usize = self.batches.iter().map(RecordBatch::num_rows).sum();
        json!({
            "median_seconds": sorted.get(sorted.len() / 2).copied().unwrap_or_default(),
            "best_seconds": sorted.first().copied().unwrap_or_default(),
            "rows": rows,
        })
    }
}

async fn time_query(engine: &Engine, spec: &EngineSpec) -> Result<Timing> {
    let mut seconds = Vec::with_capacity(RUNS);
    let mut batches = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let df = engine.plan_on(spec, QUERY, None).await?;
        batches = df.collect().await.context("running the query")?;
        seconds.push(t.elapsed().as_secs_f64());
    }
    Ok(Timing { seconds, batches })
}

fn count_of(batches: &[RecordBatch]) -> u64 {
    use sluice_transform::arrow::array::{Array, Int64Array};
    batches
        .first()
        .and_then(|b| b.column(0).as_any().downcast_ref::<Int64Array>().cloned())
        .filter(|a| !a.is_empty())
        .map_or(0, |a| a.value(0) as u64)
}
