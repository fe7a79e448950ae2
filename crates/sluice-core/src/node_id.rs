//! The id of a node of the asset graph, typed.
//!
//! The graph, the state database, the CLI, the HTTP API and the UI name nodes by text: a source
//! table is `<source>.<table>`, a model (seeds and snapshots are models) its name, an export
//! `export:<name>`. Those strings are a contract (they are stored in run histories), so [`NodeId`]
//! prints exactly them; code that needs to know what a node is matches on the enum instead of
//! looking at prefixes.
//!
//! ```
//! use sluice_core::{NodeId, NodeKind};
//! let id: NodeId = "export:revenue_to_crm".parse().unwrap();
//! assert_eq!(id, NodeId::Export("revenue_to_crm".into()));
//! assert_eq!(id.kind(), NodeKind::Export);
//! assert_eq!(NodeId::source_table("shop", "orders").to_string(), "shop.orders");
//! ```

use std::fmt;
use std::str::FromStr;

/// Export nodes are named `export:<name>`.
const EXPORT_PREFIX: &str = "export:";

/// A node of the asset graph.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeId {
    /// A table a connector lands in bronze: `<source>.<table>`.
    SourceTable {
        /// The source (file) name.
        source: String,
        /// The table name.
        table: String,
    },
    /// A model, seed or snapshot: its name.
    Model(String),
    /// An export (reverse ETL): `export:<name>`.
    Export(String),
}

/// What a node is, as the state database records it (`kind` of a node run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeKind {
    /// A source table.
    Source,
    /// A model (seeds and snapshots included).
    Model,
    /// An export.
    Export,
}

impl NodeKind {
    /// `source`, `model` or `export`.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Source => "source",
            NodeKind::Model => "model",
            NodeKind::Export => "export",
        }
    }
}

impl fmt::Display for NodeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl NodeId {
    /// The node of table `table` of source `source`.
    pub fn source_table(source: &str, table: &str) -> NodeId {
        NodeId::SourceTable {
            source: source.to_string(),
            table: table.to_string(),
        }
    }

    /// What the node is.
    pub fn kind(&self) -> NodeKind {
        match self {
            NodeId::SourceTable { .. } => NodeKind::Source,
            NodeId::Model(_) => NodeKind::Model,
            NodeId::Export(_) => NodeKind::Export,
        }
    }

    /// The export's name, for an export node.
    pub fn export_name(&self) -> Option<&str> {
        match self {
            NodeId::Export(name) => Some(name),
            _ => None,
        }
    }

    /// The name without the node's kind: the table of a source table, the model's or export's name.
    pub fn short_name(&self) -> &str {
        match self {
            NodeId::SourceTable { table, .. } => table,
            NodeId::Model(name) | NodeId::Export(name) => name,
        }
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeId::SourceTable { source, table } => write!(f, "{source}.{table}"),
            NodeId::Model(name) => f.write_str(name),
            NodeId::Export(name) => write!(f, "{EXPORT_PREFIX}{name}"),
        }
    }
}

/// A node name that names no node (empty, or an empty part).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a node name (expected `<source>.<table>`, a model name or `export:<name>`)")]
pub struct NodeIdError(pub String);

/// Reads a node name by its shape alone: `export:` starts an export, a dot separates a source from
/// its table (source and table names are identifiers, and so are model names in practice), anything
/// else is a model. A project knows better (`CompiledProject::node_id` in `sluice-transform` looks
/// the name up); this is for callers that have only the name.
impl FromStr for NodeId {
    type Err = NodeIdError;

    fn from_str(s: &str) -> Result<NodeId, NodeIdError> {
        let bad = || NodeIdError(s.to_string());
        if let Some(name) = s.strip_prefix(EXPORT_PREFIX) {
            return if name.is_empty() {
                Err(bad())
            } else {
                Ok(NodeId::Export(name.to_string()))
            };
        }
        match s.split_once('.') {
            Some((source, table)) if !source.is_empty() && !table.is_empty() => {
                Ok(NodeId::source_table(source, table))
            }
            Some(_) => Err(bad()),
            None if s.is_empty() => Err(bad()),
            None => Ok(NodeId::Model(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The strings of today's state databases, CLI and API: each parses to its node and prints back
    /// unchanged.
    #[test]
    fn strings_round_trip() {
        let cases = [
            (
                "shop.orders",
                NodeId::source_table("shop", "orders"),
                "source",
            ),
            ("stg_orders", NodeId::Model("stg_orders".into()), "model"),
            (
                "export:revenue_to_crm",
                NodeId::Export("revenue_to_crm".into()),
                "export",
            ),
            ("export:a.b", NodeId::Export("a.b".into()), "export"),
        ];
        for (text, id, kind) in cases {
            let parsed: NodeId = text.parse().unwrap();
            assert_eq!(parsed, id, "{text}");
            assert_eq!(parsed.to_string(), text);
            assert_eq!(parsed.kind().as_str(), kind);
            assert_eq!(parsed.kind().to_string(), kind);
        }
    }

    #[test]
    fn names_without_a_node_are_refused() {
        for text in ["", "export:", ".orders", "shop."] {
            assert_eq!(
                text.parse::<NodeId>(),
                Err(NodeIdError(text.to_string())),
                "{text}"
            );
        }
    }

    #[test]
    fn parts() {
        let t = NodeId::source_table("shop", "orders");
        assert_eq!(t.short_name(), "orders");
        assert_eq!(t.export_name(), None);
        let e = NodeId::Export("hook".into());
        assert_eq!(e.export_name(), Some("hook"));
        assert_eq!(e.short_name(), "hook");
    }
}
