//! The server's limits, resolved from `serve.limits` in `sluice.yml` with their defaults.
//!
//! Every limit exists so that one client, careless or hostile, cannot take the service from the
//! others: the reference with sizing advice is `docs/operations.md`.

use std::time::Duration;

use sluice_core::config::ServeLimitsConfig;
use sluice_core::duration::parse_duration;
use sluice_core::size::parse_size;
use sluice_transform::guard::{DEFAULT_MAX_EXPR_DEPTH, DEFAULT_MAX_SQL_BYTES, SqlLimits};

/// Resolved limits of one `sluice serve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest time one query runs (a wire client's `SET statement_timeout` may only lower it).
    pub statement_timeout: Duration,
    /// Queries running at once (HTTP and wire together).
    pub max_concurrent_queries: usize,
    /// How long a query waits for a slot before "too busy".
    pub queue_timeout: Duration,
    /// Bytes all queries and builds of the process may hold.
    pub memory_limit: usize,
    /// Bytes one query may hold.
    pub query_memory_limit: usize,
    /// SQL text length and nesting depth.
    pub sql: SqlLimits,
    /// Open HTTP connections served normally.
    pub max_connections: usize,
    /// Open wire sessions.
    pub pg_max_connections: usize,
    /// Time to send a request's headers; also the idle keep-alive time.
    pub header_read_timeout: Duration,
    /// A wire session with no query for this long is closed.
    pub pg_idle_timeout: Duration,
    /// Largest request body.
    pub max_request_bytes: usize,
    /// Largest request line plus headers.
    pub max_header_bytes: usize,
    /// How long a shutdown waits for in-flight work.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        let memory = default_memory_limit();
        Limits {
            statement_timeout: Duration::from_secs(300),
            max_concurrent_queries: 16,
            queue_timeout: Duration::from_secs(10),
            memory_limit: memory,
            query_memory_limit: memory / 4,
            sql: SqlLimits {
                max_bytes: DEFAULT_MAX_SQL_BYTES,
                max_depth: DEFAULT_MAX_EXPR_DEPTH,
            },
            max_connections: 1024,
            pg_max_connections: 256,
            header_read_timeout: Duration::from_secs(30),
            pg_idle_timeout: Duration::from_secs(3600),
            max_request_bytes: 2 << 20,
            max_header_bytes: 64 << 10,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Half of the machine's memory (1 GiB when it cannot be read): room for the process's own data,
/// other services and the page cache.
fn default_memory_limit() -> usize {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<usize>().ok())
        })
        .map(|kb| kb.saturating_mul(1024));
    total.map(|t| t / 2).unwrap_or(1 << 30)
}

/// A field of `serve.limits` that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sluice.yml: serve.limits.{field}: {message}")]
pub struct LimitError {
    /// The field.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

impl Limits {
    /// Resolves `serve.limits`: each field given replaces its default.
    pub fn from_config(c: &ServeLimitsConfig) -> Result<Limits, LimitError> {
        let mut l = Limits::default();
        let duration = |field: &'static str, v: &Option<String>, into: &mut Duration| {
            if let Some(text) = v {
                *into = parse_duration(text).map_err(|message| LimitError { field, message })?;
            }
            Ok::<(), LimitError>(())
        };
        let size = |field: &'static str, v: &Option<String>, into: &mut usize| {
            if let Some(text) = v {
                let bytes = parse_size(text).map_err(|message| LimitError { field, message })?;
                *into = usize::try_from(bytes).map_err(|_| LimitError {
                    field,
                    message: format!("`{text}` is too large"),
                })?;
            }
            Ok::<(), LimitError>(())
        };
        let count = |field: &'static str, v: Option<usize>, into: &mut usize| {
            if let Some(n) = v {
                if n == 0 {
                    return Err(LimitError {
                        field,
                        message: "must be at least 1".to_string(),
                    });
                }
                *into = n;
            }
            Ok(())
        };
        duration(
            "statement_timeout",
            &c.statement_timeout,
            &mut l.statement_timeout,
        )?;
        duration("queue_timeout", &c.queue_timeout, &mut l.queue_timeout)?;
        duration(
            "header_read_timeout",
            &c.header_read_timeout,
            &mut l.header_read_timeout,
        )?;
        duration(
            "pg_idle_timeout",
            &c.pg_idle_timeout,
            &mut l.pg_idle_timeout,
        )?;
        duration("shutdown_grace", &c.shutdown_grace, &mut l.shutdown_grace)?;
        let memory_given = c.memory_limit.is_some();
        size("memory_limit", &c.memory_limit, &mut l.memory_limit)?;
        if memory_given {
            l.query_memory_limit = l.memory_limit / 4;
        }
        size(
            "query_memory_limit",
            &c.query_memory_limit,
            &mut l.query_memory_limit,
        )?;
        size("max_sql_bytes", &c.max_sql_bytes, &mut l.sql.max_bytes)?;
        size(
            "max_request_bytes",
            &c.max_request_bytes,
            &mut l.max_request_bytes,
        )?;
        size(
            "max_header_bytes",
            &c.max_header_bytes,
            &mut l.max_header_bytes,
        )?;
        count("max_expr_depth", c.max_expr_depth, &mut l.sql.max_depth)?;
        count(
            "max_concurrent_queries",
            c.max_concurrent_queries,
            &mut l.max_concurrent_queries,
        )?;
        count("max_connections", c.max_connections, &mut l.max_connections)?;
        count(
            "pg_max_connections",
            c.pg_max_connections,
            &mut l.pg_max_connections,
        )?;
        // hyper needs room for at least one ordinary request head.
        if l.max_header_bytes < 8192 {
            return Err(LimitError {
                field: "max_header_bytes",
                message: "must be at least 8KiB".to_string(),
            });
        }
        if l.query_memory_limit > l.memory_limit {
            return Err(LimitError {
                field: "query_memory_limit",
                message: format!(
                    "{} bytes is more than memory_limit ({} bytes)",
                    l.query_memory_limit, l.memory_limit
                ),
            });
        }
        Ok(l)
    }

    /// The engine's memory settings for these limits.
    pub fn engine_options(&self) -> sluice_transform::EngineOptions {
        sluice_transform::EngineOptions {
            memory_limit: Some(self.memory_limit),
            query_memory_limit: Some(self.query_memory_limit),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_fields_replace_defaults_and_bad_ones_name_the_field() {
        let c = ServeLimitsConfig {
            statement_timeout: Some("2s".into()),
            memory_limit: Some("1GiB".into()),
            max_connections: Some(5),
            ..ServeLimitsConfig::default()
        };
        let l = Limits::from_config(&c).unwrap();
        assert_eq!(l.statement_timeout, Duration::from_secs(2));
        assert_eq!(l.memory_limit, 1 << 30);
        assert_eq!(l.query_memory_limit, 1 << 28);
        assert_eq!(l.max_connections, 5);
        assert_eq!(l.pg_max_connections, Limits::default().pg_max_connections);

        let bad = ServeLimitsConfig {
            queue_timeout: Some("soon".into()),
            ..ServeLimitsConfig::default()
        };
        let e = Limits::from_config(&bad).unwrap_err().to_string();
        assert!(e.contains("serve.limits.queue_timeout"), "{e}");
        let bad = ServeLimitsConfig {
            max_connections: Some(0),
            ..ServeLimitsConfig::default()
        };
        assert!(Limits::from_config(&bad).is_err());
        let bad = ServeLimitsConfig {
            memory_limit: Some("1GiB".into()),
            query_memory_limit: Some("2GiB".into()),
            ..ServeLimitsConfig::default()
        };
        assert!(Limits::from_config(&bad).is_err());
    }
}
