//! Column lineage: which upstream columns each output column of a query comes from, and how.
//!
//! Lineage is read off DataFusion's logical plan of the query, not off its text: `select *`, CTEs
//! (ephemeral models are inlined as CTEs), joins, aggregates, window functions, unions and subqueries
//! are resolved by the SQL planner exactly as they run, and [`plan_lineage`] walks the plan bottom-up.
//!
//! The vocabulary is OpenLineage's column-lineage facet: a dependency is *direct* when the input's
//! value flows into the output (`IDENTITY`, `TRANSFORMATION`, `AGGREGATION`) and *indirect* when it
//! only decides which rows or groups there are (`FILTER`, `JOIN`, `GROUP_BY`, `SORT`, `WINDOW`,
//! `CONDITIONAL`). Indirect dependencies of a single column (a `CASE` condition, a window's partition)
//! sit with that column; those of the whole dataset (a `WHERE`, a join key, a `GROUP BY`) sit in
//! [`PlanLineage::dataset`].
//!
//! [`project`] applies this to every model of a project and answers upstream and downstream
//! questions across the asset graph.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use sluice_engine::SessionContext;
//! use sluice_transform::lineage::{Subtype, plan_lineage};
//!
//! let ctx = SessionContext::new();
//! ctx.sql("create table orders (id int, amount double, status varchar)").await.unwrap();
//! let plan = ctx
//!     .state()
//!     .create_logical_plan("select status, sum(amount) as revenue from orders where id > 0 group by status")
//!     .await
//!     .unwrap();
//! let lineage = plan_lineage(&plan).unwrap();
//! let (name, inputs) = &lineage.columns[1];
//! assert_eq!(name, "revenue");
//! let (input, how) = inputs.iter().next().unwrap();
//! assert_eq!((input.relation.as_str(), input.column.as_str()), ("orders", "amount"));
//! assert!(how.contains(&Subtype::Aggregation));
//! # });
//! ```

pub mod project;
mod walk;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;
use sluice_engine::extension::logical_expr::LogicalPlan;

/// How an input column reaches an output column (OpenLineage's transformation subtypes; the first three
/// are `DIRECT`, the rest `INDIRECT`). Ordered from the weakest direct change to the indirect kinds, so
/// that composing two direct steps keeps the stronger one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Subtype {
    /// The value is copied unchanged.
    Identity,
    /// The value is computed from the input row by row (a cast, an expression, a function).
    Transformation,
    /// The value is computed from several input rows (an aggregate or window aggregate).
    Aggregation,
    /// The input decides which rows are kept (`WHERE`, `HAVING`, `EXISTS`, `IN (subquery)`).
    Filter,
    /// The input is a join key or join condition.
    Join,
    /// The input is a grouping key.
    GroupBy,
    /// The input orders the rows (`ORDER BY`, an aggregate's ordering).
    Sort,
    /// The input partitions or orders a window function.
    Window,
    /// The input decides which branch computes the value (`CASE WHEN`).
    Conditional,
}

impl Subtype {
    /// Whether the input's value flows into the output.
    pub fn is_direct(self) -> bool {
        matches!(
            self,
            Subtype::Identity | Subtype::Transformation | Subtype::Aggregation
        )
    }

    /// OpenLineage's `type`: `DIRECT` or `INDIRECT`.
    pub fn kind(self) -> &'static str {
        if self.is_direct() {
            "DIRECT"
        } else {
            "INDIRECT"
        }
    }

    /// OpenLineage's `subtype` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Subtype::Identity => "IDENTITY",
            Subtype::Transformation => "TRANSFORMATION",
            Subtype::Aggregation => "AGGREGATION",
            Subtype::Filter => "FILTER",
            Subtype::Join => "JOIN",
            Subtype::GroupBy => "GROUP_BY",
            Subtype::Sort => "SORT",
            Subtype::Window => "WINDOW",
            Subtype::Conditional => "CONDITIONAL",
        }
    }
}

impl fmt::Display for Subtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One column of a relation the query reads: `relation` as the plan names the table (`silver.stg_orders`,
/// `bronze.shop__orders`, or an unqualified name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct InputField {
    /// The table as named in the plan (`schema.table` or `table`).
    pub relation: String,
    /// The column.
    pub column: String,
}

/// The inputs of one output column (or of the whole dataset), each with how it is used.
pub type Sources = BTreeMap<InputField, BTreeSet<Subtype>>;

/// The column lineage of one query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanLineage {
    /// Each output column, in order, with its inputs.
    pub columns: Vec<(String, Sources)>,
    /// Inputs that shape the whole result (filters, join keys, grouping keys, sorts); only indirect
    /// subtypes.
    pub dataset: Sources,
}

/// Why a plan's lineage could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LineageError {
    /// The plan is not a query (DDL, DML, `EXPLAIN`, …).
    #[error("column lineage is read from queries; this plan is a {0}")]
    NotAQuery(String),
    /// A plan node Sluice does not know how to trace.
    #[error("column lineage cannot trace through a {0} plan node")]
    Unsupported(String),
    /// A column the plan refers to is not in its input (a bug in the walk, or a plan DataFusion would
    /// reject).
    #[error("column `{column}` is not in the input of a {node} plan node")]
    Unresolved {
        /// The column as the plan names it.
        column: String,
        /// The plan node.
        node: String,
    },
}

/// The column lineage of a logical plan (use the planner's output, before optimization, so that the
/// plan still has the query's shape).
pub fn plan_lineage(plan: &LogicalPlan) -> Result<PlanLineage, LineageError> {
    let node = walk::Walker.plan(plan, &[])?;
    let columns = plan
        .schema()
        .fields()
        .iter()
        .zip(node.fields)
        .map(|(f, sources)| (f.name().clone(), sources))
        .collect();
    Ok(PlanLineage {
        columns,
        dataset: node.dataset,
    })
}
