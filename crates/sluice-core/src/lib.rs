//! The Sluice project model: the files a data engineer writes, and the asset graph built from them.
//!
//! A project is a folder:
//!
//! ```text
//! my-project/
//!   sluice.yml            name, lake location, state database, serve addresses, vars, defaults
//!   sources/*.yml         one file per source system (shared fields typed here; the rest goes to its
//!                         connector in sluice-ingest)
//!   models/<layer>/*.sql  one SELECT per model; the folder (silver | gold) is the layer
//!   models/**/*.yml       dbt-style properties: descriptions, owners, columns, checks, freshness
//! ```
//!
//! [`Project::load`] reads it and reports every problem at once, each as `file:line:column: field`.
//! [`AssetGraph`] is the DAG of assets that the transform layer fills from `ref()` and `source()`.
//!
//! ```
//! let mut g = sluice_core::AssetGraph::new();
//! g.add_edge("shop.orders", "stg_orders");
//! g.add_edge("stg_orders", "fct_orders");
//! assert_eq!(g.topological_order().unwrap(), ["shop.orders", "stg_orders", "fct_orders"]);
//! ```
//!
//! Modules: [`config`] (`sluice.yml`), [`source`] (the envelope every source file shares), [`model`]
//! (models, properties, check declarations), [`project`] (loading), [`graph`] (DAG, cycles), [`node_id`] (what a node is: source table, model, export), [`selector`] (dbt's selection grammar),
//! [`error`], and small helpers for YAML ([`yaml`]), durations ([`duration`]) and `${ENV}` ([`env`]).

pub mod access;
pub mod alerts;
pub mod config;
pub mod dashboard;
pub mod duration;
pub mod engine_spec;
pub mod env;
pub mod error;
pub mod exports;
pub mod graph;
pub mod lake_options;
pub mod macros;
pub mod maintenance;
pub mod model;
pub mod node_id;
pub mod parallel;
pub mod pii;
pub mod project;
pub mod seeds;
pub mod selector;
pub mod size;
pub mod source;
pub mod state_location;
pub mod threshold;
pub mod yaml;

pub use config::ProjectConfig;
pub use error::{ConfigError, GraphError};
pub use exports::ExportDecl;
pub use graph::AssetGraph;
pub use model::{CheckSpec, ModelFile, ModelLayer, ModelProperties, Severity};
pub use node_id::{NodeId, NodeKind};
pub use project::{PartialProject, Project, ProjectErrors};
pub use source::SourceDecl;
pub use state_location::StateLocation;
