//! What every handler can reach: [`AppState`], shared by the HTTP handlers ([`crate::http`]) and
//! built by the binary. It depends on the parts it holds, never on a handler.

use std::sync::Arc;

use sluice_orchestrate::StateStore;
use sluice_transform::{CompiledProject, Engine};

use crate::access::{Access, ViewCache};
use crate::auth::{AuthMode, Principal};
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
    /// Who may read, operate and administer what (`access.yml`, [`crate::access`]).
    pub access: Access,
    /// The engine as each restricted principal sees it.
    engines: Arc<ViewCache<Engine>>,
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
            access: Access::default(),
            engines: Arc::default(),
        }
    }

    /// The engine `principal` queries: the engine itself when it sees everything, else one over
    /// its filtered catalog ([`crate::access`]).
    pub fn engine_for(&self, principal: Option<&Principal>) -> Result<Engine, ApiError> {
        match self.access.view(principal) {
            None => Ok(self.engine.clone()),
            Some(view) => self.engines.get_or_try(&view, || {
                crate::access::session::engine_for(&self.engine, view.clone())
                    .map_err(|e| ApiError::Engine(e.to_string()))
            }),
        }
    }

    /// 403 when `principal` may not read `relation` (`schema.table`); its absence from listings is
    /// [`AppState::readable_assets`]'s.
    pub fn check_readable(
        &self,
        principal: Option<&Principal>,
        relation: &str,
    ) -> Result<(), ApiError> {
        let Some(view) = self.access.view(principal) else {
            return Ok(());
        };
        let r = sluice_engine::TableReference::from(relation);
        let schema = r.schema().unwrap_or("gold");
        if view.table(schema, r.table()) == crate::access::TableAccess::Hidden {
            return Err(ApiError::Forbidden(
                crate::access::Denied {
                    table: format!("{schema}.{}", r.table()),
                    role: view.role().to_string(),
                }
                .to_string(),
            ));
        }
        Ok(())
    }

    /// Whether `principal` may read asset `name` (a model or source table; other nodes, such as
    /// exports, hold no rows and are readable).
    pub fn may_read_asset(&self, principal: Option<&Principal>, name: &str) -> bool {
        let is_table =
            self.compiled.models.contains_key(name) || self.compiled.sources.contains_key(name);
        !is_table
            || self
                .relation_of(name)
                .and_then(|r| self.check_readable(principal, &r))
                .is_ok()
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
