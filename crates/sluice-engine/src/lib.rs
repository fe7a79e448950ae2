//! The query engine facade: the one crate of Sluice that depends on DataFusion.
//!
//! Lake, ingest, transform and serve run SQL, register tables and stream record batches through
//! this crate, so an upgrade of DataFusion is made here (deny.toml refuses `datafusion` as a direct
//! dependency of any other crate of the workspace). It has four parts:
//!
//! - [`session`]: building a configured session — the lake's settings ([`session::lake_config`]),
//!   the memory pool ([`session::runtime_env`]), DataFusion's functions plus Sluice's guards
//!   ([`session::session_builder`]), read-only SQL options, record batch streams;
//! - [`isolate`]: how plans execute — on a runtime of their own, cancelled on drop, each query within
//!   its memory share, values of bounded size;
//! - [`distributed`]: sessions whose plans run on an Apache DataFusion Ballista cluster (the client
//!   side; the scheduler and executor are the `sluice-ballista` crate);
//! - re-exports of the DataFusion types the other crates name, grouped by use: the items at the root
//!   (session, data frame, streams, errors, scalar values), [`expr`] (filters built in code),
//!   [`catalog`] (table registration), [`plan`] (logical plans and streaming sources), [`sql`] (the
//!   SQL parser), and [`extension`] (the modules an analyzer rule is written with: transform's dialect
//!   rewrites).
//!
//! ```no_run
//! # async fn example() -> sluice_engine::DfResult<()> {
//! use sluice_engine::session::{lake_config, plan_read_only, runtime_env, session_builder};
//! use sluice_engine::{EngineOptions, SessionContext};
//!
//! let options = EngineOptions {
//!     memory_limit: Some(1 << 30),
//!     query_memory_limit: Some(256 << 20),
//! };
//! let config = lake_config("sluice", "gold");
//! let state = session_builder(config, runtime_env(&options)?, options.query_memory_limit).build();
//! let ctx = SessionContext::new_with_state(state);
//! // Tables are registered with `session::replace_table`; a query streams with `execute_stream`.
//! let batches = plan_read_only(&ctx, "SELECT 1 AS one").await?.collect().await?;
//! # let _ = batches;
//! # Ok(())
//! # }
//! ```
//!
//! Another crate needs a DataFusion type: re-export it here, in the group of its use, and name it
//! through `sluice_engine` (never add `datafusion` to that crate's manifest: `cargo deny` refuses it).
//!
//! What stays elsewhere: the transform crate's `Engine` (a session over one lake, the project's views
//! and its dialect), the Delta table providers (delta-rs, in `sluice-lake`), and the PostgreSQL wire
//! adapter (`datafusion-postgres`, in `sluice-serve`).

pub mod distributed;
pub mod isolate;
pub mod session;

pub use isolate::{EngineOptions, QUERY_THREAD_STACK, query_runtime};

pub use datafusion::common::{DFSchema, ParamValues, ScalarValue, SchemaError, TableReference};
pub use datafusion::error::{DataFusionError, Result as DfResult};
pub use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
pub use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream, TaskContext};
pub use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};

/// Expressions built in code (the rows endpoint's filters and keyset cursors, merge predicates and
/// the key ranges that prune them).
pub mod expr {
    pub use datafusion::common::{Column, ScalarValue};
    pub use datafusion::functions_aggregate::expr_fn::{max, min};
    pub use datafusion::prelude::{Expr, cast, col, ident, lit};
}

/// Catalogs, schemas and tables: what a session's tables are registered as.
pub mod catalog {
    pub use datafusion::catalog::streaming::StreamingTable;
    pub use datafusion::catalog::view::ViewTable;
    pub use datafusion::catalog::{
        CatalogProvider, MemoryCatalogProvider, MemoryCatalogProviderList, MemorySchemaProvider,
        SchemaProvider, Session, TableProvider,
    };
    pub use datafusion::datasource::{MemTable, TableType, provider_as_source};
}

/// Logical plans and the streams that feed or read them.
pub mod plan {
    pub use datafusion::logical_expr::{EmptyRelation, LogicalPlan, LogicalPlanBuilder};
    pub use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
    pub use datafusion::physical_plan::streaming::PartitionStream;
    pub use datafusion::physical_plan::{ExecutionPlan, collect};
}

/// The SQL parser (statements, tokens, keywords) and the options a statement is planned with.
pub mod sql {
    pub use datafusion::execution::context::SQLOptions;
    pub use datafusion::sql::parser::Statement;
    pub use datafusion::sql::sqlparser;
}

/// What analyzer rules are written with: logical expressions and their rewriters, the optimizer's
/// analyzer passes, tree traversal, configuration, the built-in function library, the SQL type
/// planner hook, and the null tracking of grouped aggregates. Only the transform crate's dialect
/// rewrites need these.
pub mod extension {
    pub use datafusion::common::config::ConfigOptions;
    pub use datafusion::common::tree_node;
    pub use datafusion::functions;
    pub use datafusion::logical_expr;
    pub use datafusion::optimizer;
    pub use datafusion::physical_expr::NullState;
}
