//! Errors of the HTTP API and how each becomes a response.
//!
//! Every error before the first byte of a response is a JSON body `{"error": "..."}` with a status that
//! says whose fault it is: 400 for a bad parameter or query, 403 for a refused write, 404 for an unknown
//! asset or run, 409 for a request that does not fit a run's state, 406 for a format the API cannot produce, 500 for a failure of the server. Errors in the
//! middle of a streamed body cannot change the status any more: they end the stream (see
//! [`crate::http::respond`]).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::format::Format;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No asset of that name in the project.
    #[error("no asset `{name}`{hint}")]
    UnknownAsset {
        /// The requested name.
        name: String,
        /// ` (did you mean `x`?)` or empty.
        hint: String,
    },
    /// The asset is declared but its table has not been built yet.
    #[error("asset `{name}` has no table yet; build it with `sluice run --select {name}`")]
    NotBuilt {
        /// The asset.
        name: String,
    },
    /// No dashboard of that name in the project.
    #[error("no dashboard `{name}`{hint}")]
    UnknownDashboard {
        /// The requested name.
        name: String,
        /// ` (did you mean `x`?)` or empty.
        hint: String,
    },
    /// A dashboard has no chart at that index.
    #[error("dashboard `{dashboard}` has no chart `{index}`; charts are numbered 0 to {count} - 1")]
    UnknownChart {
        /// The dashboard.
        dashboard: String,
        /// The requested index.
        index: String,
        /// How many charts it has.
        count: usize,
    },
    /// No run with that id.
    #[error("no run `{id}`")]
    UnknownRun {
        /// The requested id.
        id: String,
    },
    /// `?format=` names a format the API does not produce.
    #[error(
        "unsupported format `{requested}`; supported formats: {}",
        Format::supported_list()
    )]
    UnsupportedFormat {
        /// The requested format.
        requested: String,
    },
    /// Nothing in the `Accept` header is a format the API produces.
    #[error(
        "no acceptable format in `Accept: {accept}`; supported media types: {}",
        Format::media_type_list()
    )]
    NotAcceptable {
        /// The `Accept` header.
        accept: String,
    },
    /// The result cannot be written in the chosen format (a nested column in CSV).
    #[error("{}; choose another format ({})", .0, Format::supported_list())]
    Unencodable(String),
    /// A parameter names a column the table does not have.
    #[error("unknown column `{column}` in `{param}`; available columns: {}", available.join(", "))]
    UnknownColumn {
        /// The column.
        column: String,
        /// The parameter it appeared in (`columns`, `order`, or the filter itself).
        param: String,
        /// The table's columns.
        available: Vec<String>,
    },
    /// A parameter could not be understood.
    #[error("invalid `{param}={value}`: {expected}")]
    BadParameter {
        /// The parameter name.
        param: String,
        /// Its value.
        value: String,
        /// What was expected instead.
        expected: String,
    },
    /// The request body could not be understood.
    #[error("invalid request body: {0}")]
    BadBody(String),
    /// A write, DDL or file-reading function was refused.
    #[error("read-only: {0}")]
    ReadOnly(String),
    /// The principal may not do or read this (its role's grants).
    #[error("{0}")]
    Forbidden(String),
    /// No running query has this id.
    #[error("no running query `{id}` (it may have finished; see GET /api/queries)")]
    UnknownQuery {
        /// The id asked for.
        id: String,
    },
    /// A request or query is larger, deeper or longer than the server's limits.
    #[error("refused: {0}")]
    Limit(String),
    /// The query ran past its statement timeout, or was cancelled.
    #[error("{0}")]
    Cancelled(String),
    /// The server is at its limit of concurrent work; the client may retry.
    #[error("{0}")]
    Busy(String),
    /// A user query failed to plan or run (bad SQL, unknown table, division by zero).
    #[error("query failed: {0}")]
    Query(String),
    /// The engine failed on a query the API built (a lake file unreadable, an encoding error).
    #[error("engine error: {0}")]
    Engine(String),
    /// The request does not fit the resource's state (cancelling a finished run, retrying a run
    /// where everything succeeded).
    #[error("{0}")]
    Conflict(String),
    /// The state database failed.
    #[error(transparent)]
    State(#[from] sluice_orchestrate::StateError),
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::UnknownAsset { .. }
            | ApiError::NotBuilt { .. }
            | ApiError::UnknownRun { .. }
            | ApiError::UnknownQuery { .. }
            | ApiError::UnknownDashboard { .. }
            | ApiError::UnknownChart { .. } => StatusCode::NOT_FOUND,
            ApiError::UnsupportedFormat { .. }
            | ApiError::NotAcceptable { .. }
            | ApiError::Unencodable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::UnknownColumn { .. }
            | ApiError::BadParameter { .. }
            | ApiError::BadBody(_)
            | ApiError::Limit(_)
            | ApiError::Query(_) => StatusCode::BAD_REQUEST,
            ApiError::Cancelled(m) if m.contains("timeout") => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Cancelled(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::ReadOnly(_) | ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Engine(_) | ApiError::State(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Maps an engine error on a user's SQL: refused writes are 403, everything else 400.
    pub fn from_user_sql(e: sluice_transform::TransformError) -> ApiError {
        match e {
            sluice_transform::TransformError::ReadOnly(m) => ApiError::ReadOnly(m),
            sluice_transform::TransformError::Limit(m) => ApiError::Limit(m),
            sluice_transform::TransformError::Query(m) if crate::access::is_denied(&m) => {
                ApiError::Forbidden(m)
            }
            sluice_transform::TransformError::Query(m) => ApiError::Query(m),
            other => ApiError::Query(other.to_string()),
        }
    }

    /// A bad parameter.
    pub fn bad_param(param: &str, value: &str, expected: impl Into<String>) -> ApiError {
        ApiError::BadParameter {
            param: param.to_string(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if matches!(self, ApiError::Busy(_) | ApiError::Cancelled(_)) {
            // Load shedding, timeouts and cancels are the limits doing their job, not faults.
            tracing::info!(error = %self, %status, "query refused or stopped");
        } else if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        } else {
            tracing::debug!(error = %self, %status, "request refused");
        }
        let mut body = json!({"error": self.to_string()});
        match &self {
            ApiError::UnsupportedFormat { .. }
            | ApiError::NotAcceptable { .. }
            | ApiError::Unencodable(_) => {
                body["supported"] = json!(Format::ALL.map(|f| f.name()));
                body["media_types"] = json!(Format::ALL.map(|f| f.media_type()));
            }
            ApiError::UnknownColumn { available, .. } => {
                body["available"] = json!(available);
            }
            _ => {}
        }
        (status, Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_whose_fault_it_is() {
        assert_eq!(
            ApiError::UnknownRun { id: "r".into() }.status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            ApiError::UnsupportedFormat {
                requested: "xml".into()
            }
            .status(),
            StatusCode::NOT_ACCEPTABLE
        );
        assert_eq!(
            ApiError::ReadOnly("x".into()).status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            ApiError::Engine("x".into()).status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn the_error_stays_small_enough_to_return_by_value() {
        assert!(std::mem::size_of::<ApiError>() <= 128);
    }

    #[test]
    fn unknown_column_message_lists_the_available_ones() {
        let e = ApiError::UnknownColumn {
            column: "regio".into(),
            param: "columns".into(),
            available: vec!["region".into(), "amount".into()],
        };
        assert_eq!(
            e.to_string(),
            "unknown column `regio` in `columns`; available columns: region, amount"
        );
    }
}
