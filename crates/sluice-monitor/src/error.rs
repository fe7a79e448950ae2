//! Errors of the monitor. Delivery failures are not errors: they are recorded with the alert and
//! logged, because an unreachable webhook must never fail a run.

/// What can go wrong while tracking incidents.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// The state database could not be opened, read or written.
    #[error(transparent)]
    State(#[from] sluice_state::StateError),
    /// `state:` in sluice.yml names no usable location.
    #[error(transparent)]
    Config(#[from] sluice_core::ConfigError),
    /// A stored timestamp is not RFC 3339.
    #[error("state database {path}: `{value}` in {table}.{column} is not an RFC 3339 time")]
    BadTime {
        /// The database (a file, or a URL without its password).
        path: String,
        /// Table.
        table: &'static str,
        /// Column.
        column: &'static str,
        /// What was stored.
        value: String,
    },
    /// A blocking database task panicked or was cancelled.
    #[error("monitor task failed: {0}")]
    Task(String),
}
