//! `sluice bench --serve`: query latency over HTTP (`POST /api/sql`), the PostgreSQL wire protocol
//! and Arrow Flight SQL, at a fixed number of concurrent clients, on the demo's gold tables; then
//! the rows/s of one large result through each protocol ([`super::bench_serve_bulk`]).
//!
//! The servers run in this process on loopback, over the lake the benchmark just built; each client
//! is a real client (reqwest over HTTP/1.1, tokio-postgres, arrow-flight's Flight SQL client) on its
//! own connection, sending the same mix of dashboard queries one after another for a fixed time.
//! The report gives queries/s, p50, p99 and max latency per protocol.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use sluice_core::duration::parse_duration;

use super::Workspace;

/// The dashboard queries, as a BI tool or a script would send them.
pub const QUERIES: [(&str, &str); 4] = [
    (
        "sales_one_category_30_days",
        "select order_date, net_revenue from gold.daily_sales_by_category where category = 'books' \
         order by order_date desc limit 30",
    ),
    (
        "revenue_by_category",
        "select category, sum(net_revenue) as revenue from gold.daily_sales_by_category \
         group by category order by revenue desc",
    ),
    (
        "revenue_by_month_and_channel",
        "select month, acquisition_channel, net_revenue from gold.mart_revenue \
         order by month, acquisition_channel",
    ),
    (
        "active_users_last_week",
        "select event_date, sum(active_users) as users from gold.daily_active_users \
         group by event_date order by event_date desc limit 7",
    ),
];

/// Settings of the serving benchmark.
#[derive(Debug, Clone)]
pub struct ServeBench {
    /// Concurrent clients per protocol.
    pub clients: usize,
    /// How long each protocol runs, e.g. `5s`.
    pub duration: String,
    /// Rows of the large result (0: not measured).
    pub rows: u64,
}

/// Runs the protocols one after the other and returns the `serve` section of the report.
pub async fn run(ws: &Workspace, settings: &ServeBench) -> Result<Value> {
    let duration =
        parse_duration(&settings.duration).map_err(|e| anyhow::anyhow!("--serve-duration: {e}"))?;
    let clients = settings.clients.max(1);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the benchmark's HTTP server")?;
    let http_addr = listener.local_addr()?;
    let app = sluice_serve::router(sluice_serve::AppState::new(
        ws.compiled.clone(),
        ws.engine.clone(),
        ws.state.clone(),
    ));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let http = tokio::spawn(sluice_serve::serve(listener, app, async {
        let _ = stop_rx.await;
    }));
    let pg = sluice_serve::pg::PgServer::bind(&ws.engine, "127.0.0.1:0").await?;
    let pg_addr = pg.local_addr();
    let pg = pg.spawn();
    let flight = sluice_serve::flight::FlightServer::bind(&ws.engine, "127.0.0.1:0").await?;
    let flight_addr = flight.local_addr();
    let flight = flight.spawn();

    let http_result = measure(clients, duration, |_| {
        let url = format!("http://{http_addr}/api/sql");
        async move { HttpClient::new(url) }
    })
    .await;
    let pg_result = measure(clients, duration, |_| async move {
        PgClient::connect(&format!(
            "host={} port={} dbname=sluice user=bench",
            pg_addr.ip(),
            pg_addr.port()
        ))
        .await
    })
    .await;
    let flight_result = measure(clients, duration, |_| async move {
        FlightClient::connect(flight_addr).await
    })
    .await;
    let bulk = if settings.rows > 0 {
        Some(super::bench_serve_bulk::run(http_addr, pg_addr, flight_addr, settings.rows).await)
    } else {
        None
    };

    let _ = stop_tx.send(());
    let _ = http.await;
    pg.stop().await?;
    flight.stop().await?;
    Ok(json!({
        "clients": clients,
        "seconds_per_protocol": duration.as_secs_f64(),
        "queries": QUERIES.iter().map(|(name, _)| *name).collect::<Vec<_>>(),
        "http": http_result?,
        "postgres_wire": pg_result?,
        "flight_sql": flight_result?,
        "large_result": bulk.transpose()?,
    }))
}

/// One benchmark client.
trait Client: Send + 'static {
    /// Runs one query to completion (every row received).
    fn query(&mut self, sql: &str) -> impl Future<Output = Result<()>> + Send;
}

struct HttpClient {
    client: reqwest::Client,
    url: String,
}

impl HttpClient {
    fn new(url: String) -> Result<Self> {
        Ok(HttpClient {
            client: reqwest::Client::builder().build()?,
            url,
        })
    }
}

impl Client for HttpClient {
    async fn query(&mut self, sql: &str) -> Result<()> {
        let resp = self
            .client
            .post(&self.url)
            .json(&json!({ "sql": sql }))
            .send()
            .await?;
        let status = resp.status();
        let body = resp.bytes().await?;
        if !status.is_success() {
            bail!("HTTP {status}: {}", String::from_utf8_lossy(&body));
        }
        Ok(())
    }
}

struct PgClient {
    client: tokio_postgres::Client,
}

impl PgClient {
    async fn connect(config: &str) -> Result<Self> {
        let (client, conn) = tokio_postgres::connect(config, tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(PgClient { client })
    }
}

impl Client for PgClient {
    async fn query(&mut self, sql: &str) -> Result<()> {
        self.client.simple_query(sql).await?;
        Ok(())
    }
}

struct FlightClient {
    client: arrow_flight::sql::client::FlightSqlServiceClient<tonic::transport::Channel>,
}

impl FlightClient {
    async fn connect(addr: std::net::SocketAddr) -> Result<Self> {
        let channel = tonic::transport::Endpoint::new(format!("http://{addr}"))?
            .connect()
            .await?;
        Ok(FlightClient {
            client: arrow_flight::sql::client::FlightSqlServiceClient::new(channel),
        })
    }
}

impl Client for FlightClient {
    async fn query(&mut self, sql: &str) -> Result<()> {
        use futures::TryStreamExt;
        let info = self.client.execute(sql.to_string(), None).await?;
        for endpoint in info.endpoint {
            let ticket = endpoint.ticket.context("an endpoint without a ticket")?;
            let mut batches = self.client.do_get(ticket).await?;
            while batches.try_next().await?.is_some() {}
        }
        Ok(())
    }
}

/// Starts `clients` clients, warms each query once, then runs the query mix for `duration`.
async fn measure<C, F, Fut>(clients: usize, duration: Duration, connect: F) -> Result<Value>
where
    C: Client,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<C>>,
{
    let mut conns = Vec::with_capacity(clients);
    for i in 0..clients {
        let mut c = connect(i).await?;
        for (name, sql) in QUERIES {
            c.query(sql)
                .await
                .with_context(|| format!("warm-up query `{name}`"))?;
        }
        conns.push(c);
    }
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for (i, mut c) in conns.into_iter().enumerate() {
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut first_error = None;
            let mut n = i;
            while Instant::now() < deadline {
                let (_, sql) = QUERIES[n % QUERIES.len()];
                n += 1;
                let t = Instant::now();
                match c.query(sql).await {
                    Ok(()) => latencies.push(t.elapsed()),
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| e.to_string());
                    }
                }
            }
            (latencies, errors, first_error)
        });
    }
    let mut all = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        let (l, e, f) = joined?;
        all.extend(l);
        errors += e;
        first_error = first_error.or(f);
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort();
    let ms = |d: Option<&Duration>| d.map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0);
    let pct = |q: f64| {
        let idx = ((q * all.len() as f64).ceil() as usize).saturating_sub(1);
        ms(all.get(idx))
    };
    Ok(json!({
        "queries": all.len(),
        "errors": errors,
        "first_error": first_error,
        "queries_per_sec": all.len() as f64 / elapsed,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": ms(all.last()),
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_query_reads_a_gold_table() {
        for (name, sql) in super::QUERIES {
            assert!(sql.contains("from gold."), "{name}");
        }
    }
}
