//! What every handler can reach: [`AppState`], shared by the HTTP handlers ([`crate::http`]) and
//! built by the binary. It depends on the parts it holds, never on a handler.

use std::sync::Arc;

use sluice_orchestrate::StateStore;
use sluice_transform::{CompiledProject, Engine};

use crate::auth::AuthMode;
use crate::counters::HttpMetrics;
use crate::error::ApiError;
use crate::limits::Limits;
use crate::query::registry::QueryRegistry;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The compiled project (graph, models, sources).
    pub compiled: Arc<CompiledProject>,
    /// The SQL engine over the lake.
    pub engine: Engine,
    /// The state database.
    pub state: Arc<StateStore>,
    /// HTTP request counters for `/metrics`.
    pub metrics: Arc<HttpMetrics>,
    /// The server's limits.
    pub limits: Arc<Limits>,
    /// Running queries (HTTP and wire).
    pub queries: Arc<QueryRegistry>,
    /// Runs requested here are queued in the state database for a scheduler process to execute
    /// (`sluice serve --role api`), instead of running in this process.
    pub queue_runs: bool,
    /// Whether requests need a bearer token ([`crate::http::auth`]).
    pub auth: AuthMode,
}

impl AppState {
    /// Bundles the parts, with fresh request counters and default limits.
    pub fn new(compiled: Arc<CompiledProject>, engine: Engine, state: Arc<StateStore>) -> Self {
        Self::with_limits(compiled, engine, state, Limits::default())
    }

    /// [`AppState::new`] with the given limits.
    pub fn with_limits(
        compiled: Arc<CompiledProject>,
        engine: Engine,
        state: Arc<StateStore>,
        limits: Limits,
    ) -> Self {
        let queries = QueryRegistry::new(
            limits.max_concurrent_queries,
            limits.statement_timeout,
            limits.queue_timeout,
        );
        Self {
            compiled,
            engine,
            state,
            metrics: Arc::new(HttpMetrics::default()),
            limits: Arc::new(limits),
            queries,
            queue_runs: false,
            auth: AuthMode::Open,
        }
    }

    /// The SQL relation of an asset, or 404 with a suggestion.
    pub fn relation_of(&self, name: &str) -> Result<String, ApiError> {
        if let Some(m) = self.compiled.models.get(name) {
            return Ok(m.relation.clone());
        }
        if let Some(src) = self.compiled.sources.get(name) {
            return Ok(sluice_transform::source_relation(&src.source, &src.table));
        }
        let hint = sluice_core::graph::suggest(name, self.compiled.graph.nodes())
            .map(|h| format!(" (did you mean `{h}`?)"))
            .unwrap_or_default();
        Err(ApiError::UnknownAsset {
            name: name.to_string(),
            hint,
        })
    }
}
