//! Where each table lives in the lake.
//!
//! The folder layout is a contract shared with every other crate and with the users who point
//! Spark, Trino or DuckDB at the lake:
//!
//! ```text
//! <lake>/bronze/<source>/<table>/
//! <lake>/silver/<model>/
//! <lake>/gold/<model>/
//! <lake>/_quarantine/<node>/
//! ```
//!
//! A [`TableId`] names one of those tables. Names become folder names, so they are restricted
//! to characters that are safe in a path and in a URL on every platform and object store.

use std::fmt;
use std::str::FromStr;

/// A layer or table name that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// A layer name other than `bronze`, `silver`, `gold` or `quarantine`.
    #[error("unknown lake layer `{0}`: expected one of bronze, silver, gold, quarantine")]
    UnknownLayer(String),

    /// A table name that cannot be used as a lake path.
    #[error("invalid table id `{id}`: {reason}")]
    InvalidTableId {
        /// The id as given (`layer.name`).
        id: String,
        /// Which rule it breaks.
        reason: String,
    },
}

type Result<T> = std::result::Result<T, LayoutError>;

/// Longest allowed name segment, in bytes (the usual file-name limit).
const MAX_SEGMENT_LEN: usize = 255;

/// The lake layer a table belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layer {
    /// Raw data as the source sent it: `<lake>/bronze/<source>/<table>/`.
    Bronze,
    /// Cleaned, conformed models: `<lake>/silver/<model>/`.
    Silver,
    /// Consumer-specific marts and features: `<lake>/gold/<model>/`.
    Gold,
    /// Rejected rows with their reason: `<lake>/_quarantine/<node>/`.
    Quarantine,
}

impl Layer {
    /// All layers, in data-flow order.
    pub const ALL: [Layer; 4] = [Layer::Bronze, Layer::Silver, Layer::Gold, Layer::Quarantine];

    /// The layer's name: `bronze`, `silver`, `gold` or `quarantine`.
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Bronze => "bronze",
            Layer::Silver => "silver",
            Layer::Gold => "gold",
            Layer::Quarantine => "quarantine",
        }
    }

    /// The folder under the lake root that holds this layer's tables.
    ///
    /// Quarantine uses `_quarantine`: the leading underscore keeps it apart from data layers
    /// in listings and tells other engines' directory scans that it is not a dataset.
    pub fn dir_name(self) -> &'static str {
        match self {
            Layer::Quarantine => "_quarantine",
            other => other.as_str(),
        }
    }

    /// Number of folder levels in a table name of this layer (`source/table` for bronze).
    pub fn name_depth(self) -> usize {
        match self {
            Layer::Bronze => 2,
            _ => 1,
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Layer {
    type Err = LayoutError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "bronze" => Ok(Layer::Bronze),
            "silver" => Ok(Layer::Silver),
            "gold" => Ok(Layer::Gold),
            "quarantine" | "_quarantine" => Ok(Layer::Quarantine),
            other => Err(LayoutError::UnknownLayer(other.to_string())),
        }
    }
}

/// One table of the lake: its layer and its name inside the layer.
///
/// Bronze names are `source/table`; silver and gold names are the model name; quarantine
/// names are the node name. Displayed (and parsed) as `layer.name`, e.g. `bronze.shop/orders`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableId {
    /// The layer.
    pub layer: Layer,
    /// `source/table` for bronze, the model or node name otherwise.
    pub name: String,
}

impl TableId {
    /// The bronze table for `table` of `source`.
    pub fn bronze(source: &str, table: &str) -> Self {
        TableId {
            layer: Layer::Bronze,
            name: format!("{source}/{table}"),
        }
    }

    /// The silver table of model `model`.
    pub fn silver(model: &str) -> Self {
        TableId {
            layer: Layer::Silver,
            name: model.to_string(),
        }
    }

    /// The gold table of model `model`.
    pub fn gold(model: &str) -> Self {
        TableId {
            layer: Layer::Gold,
            name: model.to_string(),
        }
    }

    /// The quarantine table of node `node`.
    pub fn quarantine(node: &str) -> Self {
        TableId {
            layer: Layer::Quarantine,
            name: node.to_string(),
        }
    }

    /// The folder names below the layer folder (`["shop", "orders"]` for `bronze.shop/orders`).
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.name.split('/')
    }

    /// Check that the name can be used as a folder: the right number of segments for the
    /// layer, each 1-255 bytes of ASCII letters, digits, `_`, `-` or `.`, not starting with `.`.
    pub fn validate(&self) -> Result<()> {
        let segments: Vec<&str> = self.segments().collect();
        let depth = self.layer.name_depth();
        if segments.len() != depth {
            let expected = if depth == 2 {
                "`source/table`"
            } else {
                "a single name without `/`"
            };
            return Err(self.invalid(format!(
                "a {} name must be {expected}, found {} part(s)",
                self.layer,
                segments.len()
            )));
        }
        for segment in segments {
            validate_segment(segment).map_err(|reason| self.invalid(reason))?;
        }
        Ok(())
    }

    fn invalid(&self, reason: String) -> LayoutError {
        LayoutError::InvalidTableId {
            id: self.to_string(),
            reason,
        }
    }
}

/// Check one folder name; returns the reason when it is not allowed.
fn validate_segment(segment: &str) -> std::result::Result<(), String> {
    if segment.is_empty() {
        return Err("empty name part".to_string());
    }
    if segment.len() > MAX_SEGMENT_LEN {
        return Err(format!(
            "name part `{segment}` is {} bytes long, the limit is {MAX_SEGMENT_LEN}",
            segment.len()
        ));
    }
    if segment.starts_with('.') {
        return Err(format!("name part `{segment}` must not start with `.`"));
    }
    if let Some(bad) = segment
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(format!(
            "name part `{segment}` contains `{bad}`; allowed are ASCII letters, digits, `_`, `-` and `.`"
        ));
    }
    Ok(())
}

impl fmt::Display for TableId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.layer, self.name)
    }
}

impl FromStr for TableId {
    type Err = LayoutError;

    /// Parse `layer.name` (the [`Display`](fmt::Display) form) and validate the name.
    fn from_str(s: &str) -> Result<Self> {
        let (layer, name) = s
            .split_once('.')
            .ok_or_else(|| LayoutError::InvalidTableId {
                id: s.to_string(),
                reason: "expected `layer.name`, e.g. `bronze.shop/orders` or `silver.customers`"
                    .to_string(),
            })?;
        let id = TableId {
            layer: layer.parse()?,
            name: name.to_string(),
        };
        id.validate()?;
        Ok(id)
    }
}

/// The Delta table property that limits file statistics to the listed columns.
pub(crate) const STATS_COLUMNS_KEY: &str = "delta.dataSkippingStatsColumns";

/// The value of [`STATS_COLUMNS_KEY`] on a quarantine table: every column but the rejected rows'
/// content (`reason`, `raw`), whose values must not be repeated in statistics (they may hold PII).
/// Here rather than in `quarantine` because the writer sets it when it creates such a table.
pub(crate) const QUARANTINE_STATS_COLUMNS: &str = "source_file,line,batch_id,quarantined_at";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_round_trips_through_its_name() {
        for layer in Layer::ALL {
            assert_eq!(layer.as_str().parse::<Layer>().unwrap(), layer);
        }
        assert_eq!(Layer::Quarantine.dir_name(), "_quarantine");
        assert!(matches!(
            "platinum".parse::<Layer>(),
            Err(LayoutError::UnknownLayer(name)) if name == "platinum"
        ));
    }

    #[test]
    fn table_id_displays_and_parses() {
        let id = TableId::bronze("shop", "orders");
        assert_eq!(id.to_string(), "bronze.shop/orders");
        assert_eq!("bronze.shop/orders".parse::<TableId>().unwrap(), id);
        assert_eq!(
            "quarantine.load_orders".parse::<TableId>().unwrap(),
            TableId::quarantine("load_orders")
        );
        assert_eq!(
            "gold.daily.v2".parse::<TableId>().unwrap(),
            TableId::gold("daily.v2")
        );
    }

    #[test]
    fn invalid_names_are_rejected_with_the_reason() {
        let cases = [
            (TableId::silver("a/b"), "single name"),
            (TableId::bronze("shop", ""), "empty"),
            (
                TableId {
                    layer: Layer::Bronze,
                    name: "orders".into(),
                },
                "`source/table`",
            ),
            (TableId::gold(".."), "must not start with `.`"),
            (TableId::silver("my model"), "contains ` `"),
            (TableId::silver(&"x".repeat(300)), "limit is 255"),
        ];
        for (id, reason) in cases {
            let err = id.validate().unwrap_err().to_string();
            assert!(err.contains(reason), "{id}: {err}");
            assert!(err.starts_with("invalid table id"), "{err}");
        }
        assert!("silver".parse::<TableId>().is_err());
        assert!("silver.a b".parse::<TableId>().is_err());
    }
}
