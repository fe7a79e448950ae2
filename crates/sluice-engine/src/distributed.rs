//! Sessions whose plans run on a distributed engine: an Apache DataFusion Ballista cluster.
//!
//! A Ballista client session is an ordinary DataFusion session whose query planner is Ballista's:
//! planning a data frame to execute sends its logical plan (protobuf, DataFusion's default codec) to
//! the scheduler at `host:port`, which splits it into stages that its executors run; the result
//! streams back to this process over Arrow Flight. Everything else — SQL parsing, analyzer rules
//! (a dialect's rewrites, [`ValueSizeRule`](crate::isolate)), the logical optimizer — runs here, on
//! the session built by [`session_builder`](crate::session::session_builder), so a model plans alike
//! on both engines. The tables a plan scans must be serialisable: listing tables over Parquet files
//! ([`parquet_files`](crate::session::parquet_files)) are; custom providers (a Delta table's) are
//! not.
//!
//! Nothing connects when the session is built: [`check_reachable`] tells an unreachable scheduler
//! apart (within a timeout) before a plan is sent, and [`ballista_config`] bounds the client's own
//! gRPC connection attempts by the same timeout.

use std::time::Duration;

use ballista::extension::{SessionConfigExt, SessionStateExt};
use datafusion::common::TableReference;
use datafusion::error::Result as DfResult;
use datafusion::execution::session_state::SessionState;
use datafusion::prelude::{SessionConfig, SessionContext};

/// The Ballista client setting for how long a gRPC connection attempt may take.
const CONNECT_TIMEOUT_KEY: &str = "ballista.client.grpc_connect_timeout_seconds";

/// `config` with Ballista's settings, the client's connection attempts bounded by `connect_timeout`
/// (whole seconds, at least one).
pub fn ballista_config(config: SessionConfig, connect_timeout: Duration) -> SessionConfig {
    config
        .upgrade_for_ballista()
        .set_u64(CONNECT_TIMEOUT_KEY, connect_timeout.as_secs().max(1))
}

/// The gRPC URL of the scheduler at `host:port` (brackets around an IPv6 address).
pub fn scheduler_url(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("http://[{host}]:{port}")
    } else {
        format!("http://{host}:{port}")
    }
}

/// A session over `state` whose plans run on the Ballista scheduler at `host:port`: the state's
/// functions, analyzer rules and catalogs stay, its query planner becomes Ballista's. Connects to
/// nothing yet.
pub fn remote_context(state: SessionState, host: &str, port: u16) -> DfResult<SessionContext> {
    let state = state.upgrade_for_ballista(scheduler_url(host, port))?;
    Ok(SessionContext::new_with_state(state))
}

/// The tables `sql` reads, as written (common table expressions left out): what a distributed
/// session must register before planning it. Parsed with `ctx`'s SQL dialect.
pub fn table_references(ctx: &SessionContext, sql: &str) -> DfResult<Vec<TableReference>> {
    let state = ctx.state();
    let dialect = state.config().options().sql_parser.dialect;
    let statement = state.sql_to_statement(sql, &dialect)?;
    state.resolve_table_references(&statement)
}

/// Whether the scheduler at `host:port` accepts a TCP connection within `timeout`; the error says
/// which of refused, unresolvable or silent it was.
pub async fn check_reachable(host: &str, port: u16, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host, port))).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!(
            "the Ballista scheduler at {host}:{port} cannot be reached: {e}"
        )),
        Err(_) => Err(format!(
            "the Ballista scheduler at {host}:{port} did not answer within {}s (connect_timeout)",
            timeout.as_secs_f64()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_scheduler_is_told_apart_quickly() {
        // A port that was free a moment ago: refused at once.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let started = std::time::Instant::now();
        let e = check_reachable("127.0.0.1", port, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(e.contains("cannot be reached"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        check_reachable("127.0.0.1", port, Duration::from_secs(5))
            .await
            .unwrap();
    }

    #[test]
    fn a_remote_session_keeps_its_settings() {
        let config = ballista_config(SessionConfig::new(), Duration::from_millis(300));
        let value = config
            .options()
            .entries()
            .into_iter()
            .find(|e| e.key == CONNECT_TIMEOUT_KEY)
            .and_then(|e| e.value);
        assert_eq!(value.as_deref(), Some("1"));
        assert_eq!(scheduler_url("::1", 7), "http://[::1]:7");
        let state = datafusion::execution::session_state::SessionStateBuilder::new()
            .with_config(config)
            .with_default_features()
            .build();
        let ctx = remote_context(state, "127.0.0.1", 50050).unwrap();
        // The upgrade to a Ballista session keeps the timeout it was given.
        let kept = ctx
            .state()
            .config()
            .options()
            .entries()
            .into_iter()
            .find(|e| e.key == CONNECT_TIMEOUT_KEY)
            .and_then(|e| e.value);
        assert_eq!(kept.as_deref(), Some("1"));
    }
}
