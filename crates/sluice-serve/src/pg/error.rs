//! Errors of the PostgreSQL endpoint, and the SQLSTATE each query failure carries on the wire.
//!
//! Two kinds of failure live here. [`PgError`] is what `sluice serve` sees: the endpoint could not
//! start (the address is taken) or stopped unexpectedly. [`sqlstate_of`] is what a client sees: a
//! query failed, and the ErrorResponse should carry a code a BI tool can act on (`42P01` for an
//! unknown table, `42703` for an unknown column) rather than the catch-all `XX000`.

use std::net::SocketAddr;

use sluice_engine::DataFusionError;
use sluice_engine::sql::sqlparser::parser::ParserError;

/// Why the PostgreSQL endpoint could not start or keep serving.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The listening address could not be bound (in use, not local, no permission).
    #[error(
        "cannot listen for PostgreSQL clients on {addr}: {source}; \
         choose another address with --pg ADDR (or serve.pg in sluice.yml), or disable it with --no-pg"
    )]
    Bind {
        /// The address as configured.
        addr: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The bound socket could not report its address.
    #[error("cannot read the address of the PostgreSQL listener: {0}")]
    LocalAddr(std::io::Error),
    /// The `pg_catalog` emulation or the served catalog could not be set up (a bug, not user input).
    #[error("cannot set up the PostgreSQL catalog over the lake: {0}")]
    Catalog(String),
    /// The engine's session has no `sluice` catalog (a bug: [`sluice_transform::Engine`] creates it).
    #[error("the SQL engine has no `{0}` catalog to serve")]
    NoCatalog(String),
    /// The endpoint's task ended abnormally (it panicked or was cancelled).
    #[error("the PostgreSQL endpoint at {addr} stopped unexpectedly: {reason}")]
    Stopped {
        /// The address it was serving.
        addr: SocketAddr,
        /// What the runtime reported.
        reason: String,
    },
}

/// SQLSTATE `25006` read_only_sql_transaction: a write, DDL or server setting was refused.
pub const READ_ONLY: &str = "25006";
/// SQLSTATE `0A000` feature_not_supported.
pub const NOT_SUPPORTED: &str = "0A000";
/// SQLSTATE `XX000` internal_error (the code when nothing more specific fits).
pub const INTERNAL: &str = "XX000";

/// The SQLSTATE for an error raised while parsing, planning or running a query.
///
/// Wrapped errors (`Context`, `Shared`, `Diagnostic`) are unwrapped to their root first. Unknown
/// errors map to `XX000`, as PostgreSQL does for internal errors.
pub fn sqlstate_of(error: &(dyn std::error::Error + 'static)) -> &'static str {
    // A table the role may not read (access.yml): insufficient_privilege.
    if crate::access::is_denied(&error.to_string()) {
        return "42501";
    }
    if error.downcast_ref::<ParserError>().is_some() {
        return "42601";
    }
    let Some(df) = error.downcast_ref::<DataFusionError>() else {
        return INTERNAL;
    };
    match df.find_root() {
        DataFusionError::SQL(..) => "42601",
        DataFusionError::SchemaError(e, _) => {
            if matches!(**e, sluice_engine::SchemaError::FieldNotFound { .. }) {
                "42703"
            } else if matches!(**e, sluice_engine::SchemaError::AmbiguousReference { .. }) {
                "42702"
            } else {
                "42P18"
            }
        }
        DataFusionError::Plan(msg) => plan_sqlstate(msg),
        DataFusionError::NotImplemented(_) => NOT_SUPPORTED,
        DataFusionError::ArrowError(e, _) => match **e {
            arrow::error::ArrowError::DivideByZero => "22012",
            arrow::error::ArrowError::CastError(_) | arrow::error::ArrowError::ParseError(_) => {
                "22P02"
            }
            _ => "22000",
        },
        DataFusionError::Execution(msg) if msg.to_ascii_lowercase().contains("divide by zero") => {
            "22012"
        }
        DataFusionError::ResourcesExhausted(_) => "53200",
        _ => INTERNAL,
    }
}

/// Planning errors are plain strings in DataFusion; these are the shapes it produces for the mistakes a
/// client can make.
fn plan_sqlstate(msg: &str) -> &'static str {
    let m = msg.to_ascii_lowercase();
    if m.contains("table") && (m.contains("not found") || m.contains("doesn't exist")) {
        "42P01"
    } else if m.contains("invalid function") || m.contains("function") && m.contains("not found") {
        "42883"
    } else if m.contains("no field named") {
        "42703"
    } else {
        // syntax_error_or_access_rule_violation: the query, not the server, is at fault.
        "42000"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_engine::SchemaError;
    use sluice_engine::expr::Column;

    fn code(e: DataFusionError) -> &'static str {
        sqlstate_of(&e)
    }

    #[test]
    fn client_mistakes_get_specific_codes() {
        assert_eq!(
            code(DataFusionError::Plan(
                "table 'sluice.gold.nope' not found".into()
            )),
            "42P01"
        );
        assert_eq!(
            code(DataFusionError::SchemaError(
                Box::new(SchemaError::FieldNotFound {
                    field: Box::new(Column::from_name("nope")),
                    valid_fields: vec![],
                }),
                Box::new(None),
            )),
            "42703"
        );
        assert_eq!(
            code(DataFusionError::Plan("Invalid function 'nope'".into())),
            "42883"
        );
        assert_eq!(
            code(DataFusionError::ArrowError(
                Box::new(arrow::error::ArrowError::DivideByZero),
                None
            )),
            "22012"
        );
        assert_eq!(
            code(DataFusionError::NotImplemented("x".into())),
            NOT_SUPPORTED
        );
    }

    #[test]
    fn wrapped_errors_are_unwrapped_and_unknown_ones_are_internal() {
        let wrapped = DataFusionError::Context(
            "while planning".into(),
            Box::new(DataFusionError::Plan("table 't' not found".into())),
        );
        assert_eq!(code(wrapped), "42P01");
        assert_eq!(code(DataFusionError::Internal("bug".into())), INTERNAL);
        let io = std::io::Error::other("disk");
        assert_eq!(sqlstate_of(&io), INTERNAL);
        let parse = ParserError::ParserError("Expected: an expression".into());
        assert_eq!(sqlstate_of(&parse), "42601");
    }

    #[test]
    fn bind_error_names_the_address_and_the_way_out() {
        let e = PgError::Bind {
            addr: "127.0.0.1:5433".into(),
            source: std::io::Error::from(std::io::ErrorKind::AddrInUse),
        };
        let msg = e.to_string();
        assert!(msg.contains("127.0.0.1:5433"), "{msg}");
        assert!(msg.contains("--no-pg"), "{msg}");
    }
}
