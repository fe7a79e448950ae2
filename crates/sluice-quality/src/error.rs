//! Errors of the quality layer.

use std::path::PathBuf;

/// Errors building or running checks.
#[derive(Debug, thiserror::Error)]
pub enum QualityError {
    /// The declaration is invalid (unknown kind, missing argument).
    #[error("{path}: check `{check}`: {message}")]
    Invalid {
        /// The properties file.
        path: PathBuf,
        /// The check name.
        check: String,
        /// What was expected.
        message: String,
    },
    /// The check's query failed (for example, a column that does not exist).
    #[error("check `{check}` on `{model}` could not run: {message}")]
    Query {
        /// The check.
        check: String,
        /// The model.
        model: String,
        /// The engine's message.
        message: String,
    },
}
