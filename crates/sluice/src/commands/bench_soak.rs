//! `sluice bench --soak`: many concurrent clients against a real `sluice serve` for minutes.
//!
//! The server runs as a child process over the demo's lake (so its memory is measured alone, from
//! `/proc`), with its default limits. HTTP clients (reqwest, one connection each) alternate dashboard
//! queries (`POST /api/sql`) and rows pages; a few of them send heavy queries instead; wire clients
//! (tokio-postgres) send the dashboard queries. The report counts every outcome — successes,
//! deliberate refusals (503, SQLSTATE 53000/53300/57014), other server errors (5xx) and client-side
//! failures — with dashboard-query latency per protocol and the server's peak resident memory, and
//! whether the server was still alive at the end.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use serde_json::{Value, json};
use sluice_core::duration::parse_duration;
use std::io::BufRead;
use tokio::sync::Mutex;

use super::bench_serve::QUERIES;

/// A query that keeps a core busy for seconds (10^8 pairs), as an analyst's mistake would.
const HEAVY: &str = "select sum(a.v * b.v) from generate_series(1, 20000) as a(v) \
                     cross join generate_series(1, 5000) as b(v)";

/// Settings of the soak benchmark.
#[derive(Debug, Clone)]
pub struct SoakBench {
    /// Demo scale.
    pub scale: f64,
    /// Concurrent HTTP clients.
    pub http_clients: usize,
    /// Concurrent PostgreSQL wire clients.
    pub pg_clients: usize,
    /// HTTP clients (among `http_clients`) that send heavy queries.
    pub heavy_clients: usize,
    /// How long the load runs, e.g. `5m`.
    pub duration: String,
}

/// Outcome counters of one kind of request.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    refused: AtomicU64,
    server_errors: AtomicU64,
    client_errors: AtomicU64,
    first_problem: Mutex<Option<String>>,
    latencies: Mutex<Vec<Duration>>,
}

impl Tally {
    async fn problem(&self, what: String) {
        let mut first = self.first_problem.lock().await;
        if first.is_none() {
            *first = Some(what);
        }
    }

    async fn report(&self) -> Value {
        let mut l = self.latencies.lock().await.clone();
        l.sort();
        let ms = |d: Option<&Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
        let pct = |q: f64| {
            let idx = ((q * l.len() as f64).ceil() as usize).saturating_sub(1);
            ms(l.get(idx))
        };
        json!({
            "ok": self.ok.load(Ordering::Relaxed),
            "refused_deliberately": self.refused.load(Ordering::Relaxed),
            "server_errors": self.server_errors.load(Ordering::Relaxed),
            "client_errors": self.client_errors.load(Ordering::Relaxed),
            "first_problem": *self.first_problem.lock().await,
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "max_ms": ms(l.last()),
        })
    }
}

/// Builds the demo at `scale` in a temporary folder, serves it, loads it, and reports.
pub async fn bench_soak(settings: &SoakBench) -> Result<std::process::ExitCode> {
    let duration =
        parse_duration(&settings.duration).map_err(|e| anyhow!("--soak-duration: {e}"))?;
    let tmp = tempfile::tempdir().context("creating a temporary folder")?;
    let dir = tmp.path();
    let exe = std::env::current_exe().context("finding the sluice binary")?;
    let built = std::process::Command::new(&exe)
        .args([
            "demo",
            "--no-serve",
            "--scale",
            &settings.scale.to_string(),
            "--dir",
        ])
        .arg(dir)
        .env("SLUICE_LOG", "error")
        .stdout(Stdio::null())
        .status()?;
    if !built.success() {
        return Err(anyhow!("building the demo failed ({built})"));
    }
    let report = soak(&exe, dir, settings, duration).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    let clean = report["crashed"] == json!(false) && report["server_errors"] == json!(0);
    Ok(if clean {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}

async fn soak(exe: &Path, dir: &Path, s: &SoakBench, duration: Duration) -> Result<Value> {
    let mut child = std::process::Command::new(exe)
        .arg("--project")
        .arg(dir)
        .args([
            "serve",
            "--http",
            "127.0.0.1:0",
            "--pg",
            "127.0.0.1:0",
            "--no-flight",
            "--no-scheduler",
        ])
        .env("SLUICE_LOG", "error")
        .stdout(Stdio::piped())
        .spawn()
        .context("starting sluice serve")?;
    let pid = child.id();
    let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    // The banner names the bound addresses; then keep reading so the server never blocks on a
    // full pipe.
    let (http, pg) = tokio::task::spawn_blocking(move || {
        let mut lines = std::io::BufReader::new(stdout).lines();
        let (mut http, mut pg) = (None, None);
        while http.is_none() || pg.is_none() {
            let Some(Ok(line)) = lines.next() else { break };
            if let Some(rest) = line.strip_prefix("Serving the Sluice API at http://") {
                http = rest.split('/').next().map(str::to_string);
            }
            if let Some(rest) = line.strip_prefix("PostgreSQL wire protocol at ") {
                pg = rest.split_whitespace().next().map(str::to_string);
            }
        }
        std::thread::spawn(move || for _ in lines {});
        (http, pg)
    })
    .await?;
    let (Some(http), Some(pg)) = (http, pg) else {
        let _ = child.kill();
        return Err(anyhow!(
            "sluice serve ended before announcing its addresses"
        ));
    };
    let baseline = rss_kb(pid).unwrap_or(0);

    let dashboard = Arc::new(Tally::default());
    let rows = Arc::new(Tally::default());
    let heavy = Arc::new(Tally::default());
    let wire = Arc::new(Tally::default());
    let deadline = Instant::now() + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..s.http_clients {
        let (dashboard, rows, heavy) = (dashboard.clone(), rows.clone(), heavy.clone());
        let base = format!("http://{http}");
        let is_heavy = i < s.heavy_clients;
        tasks.spawn(async move {
            let client = match reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .timeout(Duration::from_secs(600))
                .build()
            {
                Ok(c) => c,
                Err(e) => return dashboard.problem(e.to_string()).await,
            };
            let mut n = i;
            while Instant::now() < deadline {
                n += 1;
                if is_heavy {
                    http_sql(&client, &base, HEAVY, &heavy).await;
                } else if n.is_multiple_of(2) {
                    let (_, sql) = QUERIES[(n / 2) % QUERIES.len()];
                    http_sql(&client, &base, sql, &dashboard).await;
                } else {
                    let url = format!(
                        "{base}/api/assets/fct_orders/rows?limit=100&offset={}",
                        (n * 37) % 5000
                    );
                    http_get(&client, &url, &rows).await;
                }
            }
        });
    }
    for i in 0..s.pg_clients {
        let wire = wire.clone();
        let (host, port) = pg.rsplit_once(':').unwrap_or(("127.0.0.1", "5433"));
        let config = format!("host={host} port={port} dbname=sluice user=soak connect_timeout=30");
        tasks.spawn(async move {
            let client = match tokio_postgres::connect(&config, tokio_postgres::NoTls).await {
                Ok((client, conn)) => {
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                    client
                }
                Err(e) => {
                    wire.client_errors.fetch_add(1, Ordering::Relaxed);
                    return wire.problem(format!("connect: {e}")).await;
                }
            };
            let mut n = i;
            while Instant::now() < deadline {
                n += 1;
                let (_, sql) = QUERIES[n % QUERIES.len()];
                let t = Instant::now();
                match client.simple_query(sql).await {
                    Ok(_) => {
                        wire.ok.fetch_add(1, Ordering::Relaxed);
                        wire.latencies.lock().await.push(t.elapsed());
                    }
                    Err(e) => match e.code().map(|c| c.code()) {
                        Some("53000" | "53300" | "57014") => {
                            wire.refused.fetch_add(1, Ordering::Relaxed);
                        }
                        Some(_) => {
                            wire.server_errors.fetch_add(1, Ordering::Relaxed);
                            wire.problem(e.to_string()).await;
                        }
                        None => {
                            wire.client_errors.fetch_add(1, Ordering::Relaxed);
                            wire.problem(e.to_string()).await;
                            if client.is_closed() {
                                return;
                            }
                        }
                    },
                }
            }
        });
    }
    let mut peak = baseline;
    let started = Instant::now();
    let mut sampler = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = sampler.tick() => {
                if let Some(r) = rss_kb(pid) {
                    peak = peak.max(r);
                }
            }
            joined = tasks.join_next() => {
                if joined.is_none() {
                    break;
                }
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let crashed = child.try_wait()?.is_some();
    let after = rss_kb(pid);
    let _ = child.kill();
    let _ = child.wait();
    let mut by: BTreeMap<&str, Value> = BTreeMap::new();
    by.insert("dashboard", dashboard.report().await);
    by.insert("rows", rows.report().await);
    by.insert("heavy", heavy.report().await);
    let total = |t: &Tally| t.ok.load(Ordering::Relaxed) as f64;
    let server_errors: u64 = [&dashboard, &rows, &heavy, &wire]
        .iter()
        .map(|t| t.server_errors.load(Ordering::Relaxed))
        .sum();
    Ok(json!({
        "http_clients": s.http_clients,
        "pg_clients": s.pg_clients,
        "heavy_clients": s.heavy_clients,
        "seconds": elapsed,
        "crashed": crashed,
        "server_errors": server_errors,
        "http": by,
        "postgres_wire": wire.report().await,
        "requests_per_sec": (total(&dashboard) + total(&rows) + total(&heavy) + total(&wire)) / elapsed,
        "server_rss_mb": {
            "baseline": baseline as f64 / 1024.0,
            "peak": peak as f64 / 1024.0,
            "after": after.map(|a| a as f64 / 1024.0),
        },
        "limits": "defaults of serve.limits (docs/operations.md)",
    }))
}

async fn http_sql(client: &reqwest::Client, base: &str, sql: &str, tally: &Tally) {
    let t = Instant::now();
    let sent = client
        .post(format!("{base}/api/sql"))
        .json(&json!({ "sql": sql }))
        .send()
        .await;
    record(sent, t, tally).await;
}

async fn http_get(client: &reqwest::Client, url: &str, tally: &Tally) {
    let t = Instant::now();
    record(client.get(url).send().await, t, tally).await;
}

async fn record(sent: reqwest::Result<reqwest::Response>, t: Instant, tally: &Tally) {
    match sent {
        Ok(resp) => {
            let status = resp.status();
            let body = resp.bytes().await;
            if status.is_success() && body.is_ok() {
                tally.ok.fetch_add(1, Ordering::Relaxed);
                tally.latencies.lock().await.push(t.elapsed());
            } else if status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
                tally.refused.fetch_add(1, Ordering::Relaxed);
            } else if status.is_server_error() {
                tally.server_errors.fetch_add(1, Ordering::Relaxed);
                let text = body.map(|b| String::from_utf8_lossy(&b).into_owned());
                tally
                    .problem(format!("HTTP {status}: {}", text.unwrap_or_default()))
                    .await;
            } else {
                tally.client_errors.fetch_add(1, Ordering::Relaxed);
                tally.problem(format!("HTTP {status}")).await;
            }
        }
        Err(e) => {
            tally.client_errors.fetch_add(1, Ordering::Relaxed);
            tally.problem(e.to_string()).await;
        }
    }
}

fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
