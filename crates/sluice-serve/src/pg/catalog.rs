//! The session PostgreSQL clients query: the engine's lake schemas, read-only, plus `pg_catalog`.
//!
//! Clients need `pg_catalog` (psql's `\d`, Grafana's and Metabase's schema browsers) and a few
//! PostgreSQL functions (`current_database()`, `format_type`, `pg_table_is_visible`, ...), which
//! `datafusion-pg-catalog` provides by registering them into a session. Registering them into the
//! engine's own session would leak `pg_catalog` into `sluice query` and the HTTP API, so the wire
//! endpoint gets its own session that *shares* the engine's schema providers and runtime:
//!
//! - the same [`SchemaProvider`]s, so a table the engine re-registers after a run (a new Delta
//!   version, a new model) is visible to the next wire query without any refresh here;
//! - the same runtime environment, so object stores registered for the lake resolve;
//! - only the published layers (`bronze`, `silver`, `gold`, `quarantine`): the `staging` schema
//!   holds unchecked model output and is not served;
//! - every lake schema wrapped in [`ReadOnlySchema`], which refuses to register or drop tables, a
//!   second line behind the statement checks of [`super::read_only`].

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_postgres::datafusion_pg_catalog::setup_pg_catalog;
use sluice_engine::catalog::{CatalogProvider, SchemaProvider, TableProvider, TableType};
use sluice_engine::session::session_builder;
use sluice_engine::{DataFusionError, DfResult, SessionContext};
use sluice_transform::Engine;
use sluice_transform::relation::CATALOG;
use sluice_transform::time_travel::TIME_TRAVEL_SCHEMA;

use super::error::PgError;
use super::information_schema::{self, PgInformationSchema};
use super::pg_attribute::PgCatalogSchema;
use crate::access::RoleView;
use crate::access::catalog::GrantedCatalog;

/// The schema the catalog emulation registers.
const PG_CATALOG: &str = "pg_catalog";

/// The lake schemas served over the wire, in the order clients list them.
pub const SERVED_SCHEMAS: [&str; 4] = ["bronze", "silver", "gold", "quarantine"];

/// Builds the session the PostgreSQL endpoint runs queries in (see the module doc).
pub fn session_for(
    engine: &Engine,
    query_memory_limit: Option<usize>,
) -> Result<Arc<SessionContext>, PgError> {
    session_for_view(engine, query_memory_limit, None)
}

/// [`session_for`] as `view` sees the lake (None: all of it): its tables only, masked and
/// filtered ([`crate::access`]), in queries and in every listing (`pg_catalog`,
/// `information_schema`).
pub fn session_for_view(
    engine: &Engine,
    query_memory_limit: Option<usize>,
    view: Option<Arc<RoleView>>,
) -> Result<Arc<SessionContext>, PgError> {
    let source = engine.context();
    let lake = source
        .catalog(CATALOG)
        .ok_or_else(|| PgError::NoCatalog(CATALOG.to_string()))?;
    let lake: Arc<dyn CatalogProvider> = match view {
        Some(view) => Arc::new(GrantedCatalog::new(lake, view)),
        None => lake,
    };
    // The engine's settings (default catalog `sluice`, default schema `gold`), but a catalog list of
    // its own: the default catalog is not created, ours is registered below. DataFusion's
    // information_schema is off: PostgreSQL's shape of it is registered instead (see
    // [`super::information_schema`]).
    let config = source
        .copied_config()
        .with_create_default_catalog_and_schema(false)
        .with_information_schema(false);
    // The engine's guards: wire queries run on the query runtime too, each within its memory share.
    let state = session_builder(config, source.runtime_env(), query_memory_limit).build();
    let ctx = SessionContext::new_with_state(state);
    let served = Arc::new(ServedCatalog::new(lake.clone()));
    served
        .register_schema(
            information_schema::NAME,
            Arc::new(PgInformationSchema::new(lake, CATALOG)),
        )
        .map_err(|e| PgError::Catalog(e.to_string()))?;
    ctx.register_catalog(CATALOG, served.clone());
    setup_pg_catalog(&ctx, CATALOG, EmptyContextProvider)
        .map_err(|e| PgError::Catalog(e.to_string()))?;
    // Its `pg_attribute` with the lake's column types (lists, numeric precision).
    if let Some(pg_catalog) = served.schema(PG_CATALOG) {
        served
            .register_schema(
                PG_CATALOG,
                Arc::new(PgCatalogSchema::new(pg_catalog, served.lake.clone())),
            )
            .map_err(|e| PgError::Catalog(e.to_string()))?;
    }
    // After the library's, so `version()` and the privilege functions are ours.
    super::functions::register(&ctx);
    Ok(Arc::new(ctx))
}

/// The `sluice` catalog as clients see it: the lake's published schemas, read-only, and the schemas
/// the wire layer adds itself (`pg_catalog`, `information_schema`).
#[derive(Debug)]
pub struct ServedCatalog {
    lake: Arc<dyn CatalogProvider>,
    own: RwLock<BTreeMap<String, Arc<dyn SchemaProvider>>>,
}

impl ServedCatalog {
    /// Serves the published schemas of `lake` (the engine's `sluice` catalog).
    pub fn new(lake: Arc<dyn CatalogProvider>) -> Self {
        Self {
            lake,
            own: RwLock::new(BTreeMap::new()),
        }
    }
}

impl CatalogProvider for ServedCatalog {
    fn schema_names(&self) -> Vec<String> {
        let mut names: Vec<String> = SERVED_SCHEMAS
            .iter()
            .filter(|s| self.lake.schema(s).is_some())
            .map(|s| s.to_string())
            .collect();
        if let Ok(own) = self.own.read() {
            names.extend(own.keys().cloned());
        }
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if SERVED_SCHEMAS.contains(&name) {
            let inner = self.lake.schema(name)?;
            return Some(Arc::new(ReadOnlySchema { inner }));
        }
        if name == TIME_TRAVEL_SCHEMA {
            // Earlier versions read with `AS OF` (sluice_transform::time_travel); not listed.
            return self.lake.schema(name);
        }
        self.own.read().ok()?.get(name).cloned()
    }

    /// Only the wire layer's own schemas (`pg_catalog`) are registered here; the lake's schemas
    /// cannot be replaced through the wire session.
    fn register_schema(
        &self,
        name: &str,
        schema: Arc<dyn SchemaProvider>,
    ) -> DfResult<Option<Arc<dyn SchemaProvider>>> {
        if SERVED_SCHEMAS.contains(&name) {
            return Err(read_only_error(&format!("replace schema `{name}`")));
        }
        let mut own = self
            .own
            .write()
            .map_err(|_| DataFusionError::Internal("served catalog lock poisoned".into()))?;
        Ok(own.insert(name.to_string(), schema))
    }
}

/// A lake schema that lists and returns tables but refuses to register or drop them.
#[derive(Debug)]
pub struct ReadOnlySchema {
    inner: Arc<dyn SchemaProvider>,
}

#[async_trait]
impl SchemaProvider for ReadOnlySchema {
    fn table_names(&self) -> Vec<String> {
        let mut names = self.inner.table_names();
        // Stable order for clients that list without ORDER BY.
        names.sort();
        names
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        self.inner.table(name).await
    }

    async fn table_type(&self, name: &str) -> DfResult<Option<TableType>> {
        self.inner.table_type(name).await
    }

    fn register_table(
        &self,
        name: String,
        _table: Arc<dyn TableProvider>,
    ) -> DfResult<Option<Arc<dyn TableProvider>>> {
        Err(read_only_error(&format!("create table `{name}`")))
    }

    fn deregister_table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        Err(read_only_error(&format!("drop table `{name}`")))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name)
    }
}

fn read_only_error(what: &str) -> DataFusionError {
    DataFusionError::Plan(format!(
        "cannot {what}: the PostgreSQL endpoint serves the lake read-only"
    ))
}
