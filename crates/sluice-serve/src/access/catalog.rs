//! The catalog as one principal sees it (see the module doc of [`super`]): the engine's lake
//! schemas, live (a table re-registered after a run is seen at once), with the tables the role
//! may not read left out and those it reads in part replaced by a view.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use sluice_core::access::LAYERS;
use sluice_engine::catalog::{
    CatalogProvider, SchemaProvider, Session, TableProvider, TableType, ViewTable,
    provider_as_source,
};
use sluice_engine::expr::{Column, Expr};
use sluice_engine::extension::logical_expr::TableProviderFilterPushDown;
use sluice_engine::plan::{ExecutionPlan, LogicalPlan, LogicalPlanBuilder};
use sluice_engine::{DFSchema, DataFusionError, DfResult, SessionContext, TableReference};
use sluice_transform::time_travel::TIME_TRAVEL_SCHEMA;

use super::Denied;
use super::mask::masked;
use super::view::{Restriction, RoleView, TableAccess};

/// A catalog filtered by a [`RoleView`].
#[derive(Debug)]
pub struct GrantedCatalog {
    inner: Arc<dyn CatalogProvider>,
    view: Arc<RoleView>,
}

impl GrantedCatalog {
    /// `inner` (the engine's `sluice` catalog) as `view` sees it.
    pub fn new(inner: Arc<dyn CatalogProvider>, view: Arc<RoleView>) -> Self {
        Self { inner, view }
    }
}

impl CatalogProvider for GrantedCatalog {
    fn schema_names(&self) -> Vec<String> {
        self.inner
            .schema_names()
            .into_iter()
            .filter(|s| LAYERS.contains(&s.as_str()))
            .collect()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        let inner = self.inner.schema(name)?;
        if LAYERS.contains(&name) || name == TIME_TRAVEL_SCHEMA {
            return Some(Arc::new(GrantedSchema {
                inner,
                schema: name.to_string(),
                view: self.view.clone(),
            }));
        }
        // `staging` (unchecked model output) and anything else: not for restricted principals.
        None
    }

    fn register_schema(
        &self,
        name: &str,
        _schema: Arc<dyn SchemaProvider>,
    ) -> DfResult<Option<Arc<dyn SchemaProvider>>> {
        Err(DataFusionError::Plan(format!(
            "cannot replace schema `{name}`: the lake is served read-only"
        )))
    }
}

/// One lake schema (or the time-travel schema, whose tables are `layer.table@version`) filtered
/// by a [`RoleView`].
#[derive(Debug)]
pub struct GrantedSchema {
    inner: Arc<dyn SchemaProvider>,
    schema: String,
    view: Arc<RoleView>,
}

impl GrantedSchema {
    /// The layer and SQL table name a table of this schema stands for.
    fn relation(&self, name: &str) -> Option<(String, String)> {
        if self.schema != TIME_TRAVEL_SCHEMA {
            return Some((self.schema.clone(), name.to_string()));
        }
        let (table, _version) = name.rsplit_once('@')?;
        let id: sluice_lake::TableId = table.parse().ok()?;
        Some(sluice_transform::relation::sql_name(&id))
    }

    fn access(&self, name: &str) -> TableAccess {
        match self.relation(name) {
            Some((s, t)) => self.view.table(&s, &t),
            None => TableAccess::Hidden,
        }
    }
}

#[async_trait]
impl SchemaProvider for GrantedSchema {
    fn table_names(&self) -> Vec<String> {
        self.inner
            .table_names()
            .into_iter()
            .filter(|t| self.access(t) != TableAccess::Hidden)
            .collect()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let Some(table) = self.inner.table(name).await? else {
            return Ok(None);
        };
        match self.access(name) {
            TableAccess::Full => Ok(Some(table)),
            TableAccess::Hidden => {
                let (s, t) = self
                    .relation(name)
                    .unwrap_or_else(|| (self.schema.clone(), name.to_string()));
                Err(DataFusionError::External(Box::new(Denied {
                    table: format!("{s}.{t}"),
                    role: self.view.role().to_string(),
                })))
            }
            TableAccess::Restricted(r) => {
                // Named as the query names it, so the audit log's tables (read off the plan,
                // where the view is inlined) are `layer.table`.
                let reference = TableReference::partial(self.schema.as_str(), name);
                Ok(Some(restrict(reference, table, &r, &self.view)?))
            }
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name) && self.access(name) != TableAccess::Hidden
    }

    fn register_table(
        &self,
        name: String,
        _table: Arc<dyn TableProvider>,
    ) -> DfResult<Option<Arc<dyn TableProvider>>> {
        Err(DataFusionError::Plan(format!(
            "cannot create table `{name}`: the lake is served read-only"
        )))
    }

    fn deregister_table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        Err(DataFusionError::Plan(format!(
            "cannot drop table `{name}`: the lake is served read-only"
        )))
    }
}

/// `table` seen through `r`: scan, row filter, then the granted columns with masks. The planner
/// inlines the plan under the query, so the filter holds whatever the query does on top.
pub fn restrict(
    reference: TableReference,
    table: Arc<dyn TableProvider>,
    r: &Restriction,
    view: &RoleView,
) -> DfResult<Arc<dyn TableProvider>> {
    let kind = table.table_type();
    let schema = table.schema();
    let name = reference.to_string();
    let mut plan = LogicalPlanBuilder::scan(reference.clone(), provider_as_source(table), None)?;
    if let Some(filter) = &r.filter {
        let df_schema: DFSchema = plan.schema().as_ref().clone();
        let predicate = SessionContext::new()
            .parse_sql_expr(filter, &df_schema)
            .map_err(|e| {
                DataFusionError::Plan(format!(
                    "the row filter of role `{}` on `{name}` (access.yml) cannot be used: {e}",
                    view.role()
                ))
            })?;
        plan = plan.filter(predicate)?;
    }
    let mut columns = Vec::new();
    for field in schema.fields() {
        if r.columns
            .as_ref()
            .is_some_and(|c| !c.contains(field.name()))
        {
            continue;
        }
        let column = Expr::Column(Column::new(Some(reference.clone()), field.name()));
        columns.push(match r.masks.get(field.name()) {
            Some(kind) => masked(column, field, *kind, view.pii_key())?,
            None => column,
        });
    }
    let plan = plan.project(columns)?.build()?;
    Ok(Arc::new(Restricted {
        view: ViewTable::new(plan, None),
        kind,
    }))
}

/// A restricted table: a view, but listed with its table's type (psql's `\dt` lists tables).
#[derive(Debug)]
struct Restricted {
    view: ViewTable,
    kind: TableType,
}

#[async_trait]
impl TableProvider for Restricted {
    fn schema(&self) -> SchemaRef {
        self.view.schema()
    }

    fn table_type(&self) -> TableType {
        self.kind
    }

    fn get_logical_plan(&'_ self) -> Option<Cow<'_, LogicalPlan>> {
        self.view.get_logical_plan()
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        self.view.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.view.scan(state, projection, filters, limit).await
    }
}
