//! Sessions over a principal's catalog: the engine's session (its settings, functions, dialect
//! rules, runtime and memory pool) with the `sluice` catalog replaced by a
//! [`GrantedCatalog`](super::catalog::GrantedCatalog).

use std::sync::Arc;

use sluice_engine::catalog::MemoryCatalogProviderList;
use sluice_engine::{DataFusionError, SessionContext, SessionStateBuilder};
use sluice_transform::Engine;
use sluice_transform::relation::CATALOG;

use super::catalog::GrantedCatalog;
use super::view::RoleView;

/// The engine's session as `view` sees it (for the HTTP API: SQL, rows, dashboards, assets).
pub fn engine_for(engine: &Engine, view: Arc<RoleView>) -> Result<Engine, DataFusionError> {
    let source = engine.context();
    let lake = source.catalog(CATALOG).ok_or_else(|| {
        DataFusionError::Internal(format!("the engine has no `{CATALOG}` catalog"))
    })?;
    // A catalog list of its own: registering into the engine's would replace the engine's catalog.
    let state = SessionStateBuilder::new_from_existing(source.state())
        .with_catalog_list(Arc::new(MemoryCatalogProviderList::new()))
        .build();
    let ctx = SessionContext::new_with_state(state);
    ctx.register_catalog(CATALOG, Arc::new(GrantedCatalog::new(lake, view)));
    Ok(engine.with_session(ctx))
}
