//! Errors of the Flight SQL endpoint: [`FlightError`] for `sluice serve` (the endpoint could not
//! start or stopped), and the gRPC [`Status`] a client sees when a request fails.
//!
//! A query failure keeps the SQLSTATE the PostgreSQL wire would send ([`sqlstate_of`]) at the start
//! of its message (`[42P01] table 'sluice.gold.nope' not found`) and gets the gRPC code a Flight
//! client acts on:
//!
//! | what | code |
//! |---|---|
//! | a SQL mistake (syntax, unknown column, bad cast) | `INVALID_ARGUMENT` |
//! | an unknown table, an unknown prepared statement | `NOT_FOUND` |
//! | a write, DDL or server `SET` refused by the read-only guard | `PERMISSION_DENIED` |
//! | updates, ingestion, Substrait, transactions, SQL-level `PREPARE` | `UNIMPLEMENTED` |
//! | no free query slot in time, out of query memory | `RESOURCE_EXHAUSTED` |
//! | the statement timeout passed | `DEADLINE_EXCEEDED` |
//! | the query was cancelled (`DELETE /api/queries/{id}`, shutdown) | `CANCELLED` |
//! | anything else (a bug, an unreadable file) | `INTERNAL` |

use std::net::SocketAddr;

use sluice_transform::TransformError;
use sluice_transform::guard::SqlLimitError;
use tonic::Status;

use crate::pg::error::{NOT_SUPPORTED, READ_ONLY, sqlstate_of};
use crate::pg::read_only::Refusal;
use crate::query::registry::{Interrupted, interruption_of};

/// Why the Flight SQL endpoint could not start or keep serving.
#[derive(Debug, thiserror::Error)]
pub enum FlightError {
    /// The listening address could not be bound (in use, not local, no permission).
    #[error(
        "cannot listen for Flight SQL clients on {addr}: {source}; \
         choose another address with --flight ADDR (or serve.flight in sluice.yml), or disable it \
         with --no-flight"
    )]
    Bind {
        /// The address as configured.
        addr: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The bound socket could not report its address.
    #[error("cannot read the address of the Flight SQL listener: {0}")]
    LocalAddr(std::io::Error),
    /// The session over the lake could not be built (shared with the PostgreSQL wire).
    #[error("cannot set up the Flight SQL session over the lake: {0}")]
    Session(#[from] crate::pg::PgError),
    /// The gRPC server failed while serving.
    #[error("the Flight SQL endpoint at {addr} failed: {source}")]
    Serve {
        /// The address it was serving.
        addr: SocketAddr,
        /// What the gRPC server reported.
        source: tonic::transport::Error,
    },
    /// The endpoint's task ended abnormally (it panicked or was cancelled).
    #[error("the Flight SQL endpoint at {addr} stopped unexpectedly: {reason}")]
    Stopped {
        /// The address it was serving.
        addr: SocketAddr,
        /// What the runtime reported.
        reason: String,
    },
}

/// The status for a statement the read-only guard refused.
pub fn refused(r: Refusal) -> Status {
    // The guard is the PostgreSQL wire's; its messages name that endpoint.
    let message = format!(
        "[{}] {} (Sluice serves the lake read-only; tables are written by `sluice run`)",
        r.code,
        r.message
            .replace("PostgreSQL endpoint", "Flight SQL endpoint")
    );
    match r.code {
        READ_ONLY => Status::permission_denied(message),
        NOT_SUPPORTED => Status::unimplemented(message),
        _ => Status::invalid_argument(message),
    }
}

/// The status for SQL refused before parsing (too long, too deep, not tokenizable).
pub fn over_limit(e: &SqlLimitError) -> Status {
    match e {
        SqlLimitError::Tokenize(_) => Status::invalid_argument(format!("[42601] {e}")),
        SqlLimitError::TooDeep { .. } => Status::invalid_argument(format!("[54001] {e}")),
        SqlLimitError::TooLong { .. } => Status::invalid_argument(format!("[54000] {e}")),
    }
}

/// The status for a query stopped by the registry.
pub fn interrupted(i: &Interrupted) -> Status {
    match i {
        Interrupted::Busy { .. } => Status::resource_exhausted(format!("[53000] {i}")),
        Interrupted::Timeout(_) => Status::deadline_exceeded(format!("[57014] {i}")),
        Interrupted::Cancelled => Status::cancelled(format!("[57014] {i}")),
    }
}

/// The status for an error raised while parsing, planning or running a query.
pub fn query_failed(error: &(dyn std::error::Error + 'static)) -> Status {
    if let Some(i) = interruption_of(error) {
        return interrupted(i);
    }
    let code = sqlstate_of(error);
    let message = format!("[{code}] {}", root_message(error));
    match code {
        "42501" => Status::permission_denied(message),
        "42P01" => Status::not_found(message),
        NOT_SUPPORTED => Status::unimplemented(message),
        "53200" => Status::resource_exhausted(message),
        c if c.starts_with("42") || c.starts_with("22") => Status::invalid_argument(message),
        _ => Status::internal(message),
    }
}

/// The message of a DataFusion error without its backtrace.
fn root_message(error: &(dyn std::error::Error + 'static)) -> String {
    match error.downcast_ref::<sluice_engine::DataFusionError>() {
        Some(df) => df.find_root().to_string(),
        None => error.to_string(),
    }
}

/// The status for a `VERSION AS OF` / `TIMESTAMP AS OF` that cannot be resolved.
pub fn time_travel(e: TransformError) -> Status {
    match e {
        TransformError::TimeTravel(message) => {
            Status::invalid_argument(format!("[22023] {message}"))
        }
        other => Status::internal(format!("[XX000] {other}")),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sluice_engine::DataFusionError;
    use tonic::Code;

    use super::*;

    #[test]
    fn query_failures_get_the_code_a_client_acts_on() {
        let missing = DataFusionError::Plan("table 'sluice.gold.nope' not found".into());
        let s = query_failed(&missing);
        assert_eq!(s.code(), Code::NotFound, "{s:?}");
        assert!(s.message().starts_with("[42P01] "), "{}", s.message());
        let syntax = DataFusionError::SQL(
            Box::new(
                sluice_engine::sql::sqlparser::parser::ParserError::ParserError(
                    "Expected: an expression".into(),
                ),
            ),
            None,
        );
        assert_eq!(query_failed(&syntax).code(), Code::InvalidArgument);
        let unsupported = DataFusionError::NotImplemented("x".into());
        assert_eq!(query_failed(&unsupported).code(), Code::Unimplemented);
        let bug = DataFusionError::Internal("bug".into());
        assert_eq!(query_failed(&bug).code(), Code::Internal);
        let memory = DataFusionError::ResourcesExhausted("query memory".into());
        assert_eq!(query_failed(&memory).code(), Code::ResourceExhausted);
    }

    #[test]
    fn interruptions_keep_their_meaning_inside_engine_errors() {
        let timeout =
            DataFusionError::External(Box::new(Interrupted::Timeout(Duration::from_secs(1))));
        assert_eq!(query_failed(&timeout).code(), Code::DeadlineExceeded);
        let cancelled = DataFusionError::External(Box::new(Interrupted::Cancelled));
        assert_eq!(query_failed(&cancelled).code(), Code::Cancelled);
    }

    #[test]
    fn refusals_name_the_flight_endpoint() {
        let s = refused(Refusal {
            code: READ_ONLY,
            message: "cannot execute INSERT on the read-only PostgreSQL endpoint".into(),
        });
        assert_eq!(s.code(), Code::PermissionDenied);
        assert!(
            s.message()
                .contains("cannot execute INSERT on the read-only Flight SQL endpoint"),
            "{}",
            s.message()
        );
        let s = refused(Refusal {
            code: NOT_SUPPORTED,
            message: "SQL-level PREPARE/EXECUTE is not supported".into(),
        });
        assert_eq!(s.code(), Code::Unimplemented);
    }

    #[test]
    fn bind_error_names_the_address_and_the_way_out() {
        let e = FlightError::Bind {
            addr: "127.0.0.1:50051".into(),
            source: std::io::Error::from(std::io::ErrorKind::AddrInUse),
        };
        let msg = e.to_string();
        assert!(msg.contains("127.0.0.1:50051"), "{msg}");
        assert!(msg.contains("--no-flight"), "{msg}");
    }
}
