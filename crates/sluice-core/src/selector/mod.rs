//! Node selection with dbt's grammar: `--select` and `--exclude` of `sluice run`, `ls`, `compile`,
//! `test`, `backfill` and `POST /api/runs`.
//!
//! | text | selects |
//! |---|---|
//! | `a b` (space) | the union of `a` and `b` |
//! | `a,b` (comma) | the intersection of `a` and `b` |
//! | `name` | a node by name (`stg_orders`), a source table (`shop.orders`, or just `orders`), a fully qualified name (`staging.stg_orders`, `staging` = every model in `models/staging/`), globs (`stg_*`) |
//! | `+name`, `name+`, `+name+` | with every ancestor / descendant |
//! | `2+name`, `name+1` | with ancestors / descendants up to that many generations |
//! | `@name` | the node, its descendants, and every ancestor of those (what a CI build of `name` needs) |
//! | `tag:x`, `path:models/staging`, `file:stg_orders.sql`, `fqn:staging.*` | by tag, file or folder, file name, qualified name |
//! | `config.materialized:incremental`, `config.<key>:<value>` | by resolved config |
//! | `source:shop`, `source:shop.orders` | a source's tables |
//! | `resource_type:model` | model, seed, snapshot, source or export |
//! | `export:name` | an export (reverse ETL) node |
//! | `state:modified`, `state:modified+`, `state:new`, `state:modified.body`, `.configs`, `.relation`, `.persisted_descriptions`, `.macros`, `.contract` | compared with a previous run's `manifest.json` (`--state DIR`) |
//!
//! `--exclude` takes the same grammar and removes what it selects. Empty selection text selects every
//! node. A selector that names nothing (a typo) is an error with a suggestion; `tag:`, `config.` and
//! `state:` selectors may match nothing.
//!
//! What the evaluator needs to know about a node (its kind, path, tags, config, and how it compares
//! with a previous manifest) comes through [`NodeFacts`], so this module knows nothing of rendering;
//! `sluice-transform` implements it for a compiled project.
//!
//! ```
//! use sluice_core::selector::{select, TagsOnly};
//! let mut g = sluice_core::AssetGraph::new();
//! g.add_edge("shop.orders", "stg_orders");
//! g.add_edge("stg_orders", "fct_orders");
//! let facts = TagsOnly(|_: &str| Vec::new());
//! let picked = select(&g, &facts, "+fct_orders", "shop.orders").unwrap();
//! assert_eq!(picked.into_iter().collect::<Vec<_>>(), ["fct_orders", "stg_orders"]);
//! ```

use crate::node_id::{NodeId, NodeKind};

mod eval;
pub mod parse;
#[cfg(test)]
mod tests;

pub use eval::{evaluate, glob_match, select};
pub use parse::{Atom, Depth, Method, Selection, Term, parse};

/// The kind of a node, as `resource_type:` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceType {
    /// A SQL model.
    Model,
    /// A CSV seed.
    Seed,
    /// A snapshot (SCD2 history).
    Snapshot,
    /// A source table landed by a connector.
    Source,
    /// An export (reverse ETL) node.
    Export,
}

impl ResourceType {
    /// The name `resource_type:` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Model => "model",
            ResourceType::Seed => "seed",
            ResourceType::Snapshot => "snapshot",
            ResourceType::Source => "source",
            ResourceType::Export => "export",
        }
    }
}

/// How a node compares with the same node in a previous run's manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// Not in the previous manifest.
    New,
    /// Same body and config.
    Unmodified,
    /// Changed in at least one of the ways [`Changes`] lists.
    Modified(Changes),
}

/// What changed in a modified node: dbt's `state:modified.<part>` sub-selectors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    /// `modified.body`: the body (checksum of the SQL, the seed's CSV, the source's or export's file).
    pub body: bool,
    /// `modified.configs`: the config, apart from `database`, `schema` and `alias`.
    pub configs: bool,
    /// `modified.relation`: where it lands (`database`, `schema`, `alias`).
    pub relation: bool,
    /// `modified.persisted_descriptions`: the model's or its columns' descriptions, where
    /// `persist_docs` persists them.
    pub persisted_descriptions: bool,
    /// `modified.macros`: a macro it calls, directly or through other macros.
    pub macros: bool,
    /// `modified.contract`: its contract (enforced, or the columns' names and data types).
    pub contract: bool,
}

impl Changes {
    /// Whether anything changed.
    pub fn any(self) -> bool {
        self.body
            || self.configs
            || self.relation
            || self.persisted_descriptions
            || self.macros
            || self.contract
    }
}

/// What the evaluator asks about a node. Every method has a conservative default so that a caller
/// that only knows tags (see [`TagsOnly`]) still gets the graph operators and name selectors.
pub trait NodeFacts {
    /// The node's kind.
    fn resource_type(&self, node: &str) -> ResourceType {
        match node.parse::<NodeId>().map(|n| n.kind()) {
            Ok(NodeKind::Export) => ResourceType::Export,
            Ok(NodeKind::Source) => ResourceType::Source,
            Ok(NodeKind::Model) | Err(_) => ResourceType::Model,
        }
    }
    /// The fully qualified name: `[project, folders…, name]` for a model, `[project, source, table]`
    /// for a source table.
    fn fqn(&self, node: &str) -> Vec<String> {
        node.split('.').map(str::to_string).collect()
    }
    /// The file that defines the node, relative to the project folder, with `/` separators.
    fn path(&self, _node: &str) -> Option<String> {
        None
    }
    /// Tags.
    fn tags(&self, node: &str) -> Vec<String>;
    /// A resolved config value; `key` may be dotted (`meta.owner`).
    fn config(&self, _node: &str, _key: &str) -> Option<serde_json::Value> {
        None
    }
    /// How the node compares with a previous manifest; `None` when no previous state was given.
    fn state(&self, _node: &str) -> Option<NodeState> {
        None
    }
    /// Whether a previous state was given (`state:` selectors need one).
    fn has_state(&self) -> bool {
        false
    }
}

/// Facts from a tag lookup alone (kinds guessed from the node name; no paths, config or state).
pub struct TagsOnly<F>(pub F);

impl<F: Fn(&str) -> Vec<String>> NodeFacts for TagsOnly<F> {
    fn tags(&self, node: &str) -> Vec<String> {
        (self.0)(node)
    }
}

pub use crate::error::SelectorError;

/// Resolves a selection in dbt's grammar over `graph` (space = union, comma = intersection, `+`/`n+`
/// graph operators, `@`, methods such as `tag:` and `path:`; empty input selects everything), as
/// a graph error. `facts` tells the selector about each node (a compiled project implements it;
/// [`TagsOnly`] wraps a tag lookup).
pub fn select_nodes(
    graph: &crate::graph::AssetGraph,
    selection: &str,
    facts: &dyn NodeFacts,
) -> Result<std::collections::BTreeSet<String>, crate::error::GraphError> {
    Ok(select(graph, facts, selection, "")?)
}
