//! Connecting to PostgreSQL and telling transient failures from permanent ones.
//!
//! The orchestrator retries transient ingestion errors with backoff, so the distinction matters: a
//! server that is restarting, refusing connections or out of connection slots will likely be back,
//! while a missing table, a syntax error or a wrong password will not.

use std::error::Error as _;

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls};

/// A PostgreSQL failure, classified (see [`is_transient_state`]).
pub(crate) type PgFailure = crate::sources::relational::DbFailure;

impl From<tokio_postgres::Error> for PgFailure {
    fn from(e: tokio_postgres::Error) -> Self {
        if let Some(db) = e.as_db_error() {
            let mut message = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
            if let Some(detail) = db.detail() {
                message.push_str(&format!(" ({detail})"));
            }
            if let Some(hint) = db.hint() {
                message.push_str(&format!("; hint: {hint}"));
            }
            return PgFailure {
                message,
                transient: is_transient_state(db.code()),
            };
        }
        let mut message = e.to_string();
        let mut cause = e.source();
        let mut io = false;
        while let Some(c) = cause {
            io |= c.is::<std::io::Error>();
            message.push_str(&format!(": {c}"));
            cause = c.source();
        }
        // Without a server error, the client failed to talk to the server: a closed or reset
        // connection, an I/O error or a timeout. Bad configuration is the exception.
        let config = message.starts_with("invalid connection string")
            || message.starts_with("invalid configuration")
            || message.starts_with("error performing TLS handshake");
        PgFailure {
            transient: !config
                && (io
                    || e.is_closed()
                    || message.starts_with("timeout waiting for server")
                    || message.starts_with("error connecting to server")
                    || message.starts_with("error communicating with the server")),
            message,
        }
    }
}

/// SQLSTATEs a retry can outlive: connection exceptions (class 08), operator intervention
/// (admin/crash shutdown, cannot connect now), insufficient resources (class 53, e.g. too many
/// connections), serialization failures and deadlocks.
pub(crate) fn is_transient_state(code: &SqlState) -> bool {
    let c = code.code();
    c.starts_with("08")
        || c.starts_with("53")
        || *code == SqlState::ADMIN_SHUTDOWN
        || *code == SqlState::CRASH_SHUTDOWN
        || *code == SqlState::CANNOT_CONNECT_NOW
        || *code == SqlState::T_R_SERIALIZATION_FAILURE
        || *code == SqlState::T_R_DEADLOCK_DETECTED
}

/// Opens a connection (no TLS); the connection task runs until the client is dropped.
pub(crate) async fn connect(config: &Config) -> Result<Client, PgFailure> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "postgres connection ended with an error");
        }
    });
    Ok(client)
}

/// `ident` as a quoted SQL identifier.
pub(crate) fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_states() {
        assert!(is_transient_state(&SqlState::ADMIN_SHUTDOWN));
        assert!(is_transient_state(&SqlState::TOO_MANY_CONNECTIONS));
        assert!(is_transient_state(&SqlState::CONNECTION_FAILURE));
        assert!(!is_transient_state(&SqlState::UNDEFINED_TABLE));
        assert!(!is_transient_state(&SqlState::SYNTAX_ERROR));
        assert!(!is_transient_state(&SqlState::INVALID_PASSWORD));
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("Order Lines"), "\"Order Lines\"");
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
    }

    #[tokio::test]
    async fn refused_connection_is_transient() {
        // Port 1 on loopback: nothing listens there, so the connection is refused at once.
        let config: Config = "host=127.0.0.1 port=1 user=x dbname=x connect_timeout=2"
            .parse()
            .unwrap();
        let err = connect(&config).await.unwrap_err();
        assert!(err.transient, "{err:?}");
        assert!(
            err.message.contains("error connecting to server"),
            "{err:?}"
        );
    }
}
