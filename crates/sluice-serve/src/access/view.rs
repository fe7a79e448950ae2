//! A principal's view of the lake: for each table, hidden, whole, or restricted (some columns,
//! masks, a row filter).

use std::collections::{BTreeMap, BTreeSet};

use sluice_core::access::{MaskKind, RoleGrants, grant_covers};
use sluice_core::pii::PiiKey;

/// How a principal may read one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableAccess {
    /// Not at all: absent from listings, refused by name.
    Hidden,
    /// As it is.
    Full,
    /// In part.
    Restricted(Restriction),
}

/// What a principal sees of a table it may read in part.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Restriction {
    /// The columns it may see (None: all).
    pub columns: Option<BTreeSet<String>>,
    /// Masked columns.
    pub masks: BTreeMap<String, MaskKind>,
    /// The row filter, as SQL with the user's attributes filled in.
    pub filter: Option<String>,
}

/// One principal's grants, masks and attributes, resolved (see [`super::Access::view`]).
#[derive(Debug)]
pub struct RoleView {
    user: String,
    role: String,
    grants: RoleGrants,
    masks: BTreeMap<String, BTreeMap<String, MaskKind>>,
    attrs: BTreeMap<String, String>,
    key: Option<PiiKey>,
}

impl RoleView {
    /// The view of `user` with `role`'s `grants`, the project's `masks` and the user's `attrs`.
    pub fn new(
        user: String,
        role: String,
        grants: RoleGrants,
        masks: BTreeMap<String, BTreeMap<String, MaskKind>>,
        attrs: BTreeMap<String, String>,
        key: Option<PiiKey>,
    ) -> Self {
        Self {
            user,
            role,
            grants,
            masks,
            attrs,
            key,
        }
    }

    /// The user.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The role.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// The PII key the `hash` masks use.
    pub fn pii_key(&self) -> Option<&PiiKey> {
        self.key.as_ref()
    }

    /// The cache key of what is built for this view (see [`super::ViewCache`]).
    pub fn key(&self) -> String {
        format!("{}\u{0}{}", self.user, self.role)
    }

    /// Whether anything is hidden, masked or filtered for it.
    pub fn is_restricted(&self) -> bool {
        let reads_all = self.grants.read.iter().any(|g| g == "*");
        !(reads_all
            && self.grants.columns.is_empty()
            && self.grants.row_filters.is_empty()
            && (self.grants.unmask || self.masks.values().all(BTreeMap::is_empty)))
    }

    /// How it may read `schema.table`.
    pub fn table(&self, schema: &str, table: &str) -> TableAccess {
        let relation = format!("{schema}.{table}");
        let whole = self
            .grants
            .read
            .iter()
            .any(|g| grant_covers(g, schema, table));
        let part = self.grants.columns.get(&relation);
        if !whole && part.is_none() {
            return TableAccess::Hidden;
        }
        let restriction = Restriction {
            columns: if whole { None } else { part.cloned() },
            masks: if self.grants.unmask {
                BTreeMap::new()
            } else {
                self.masks.get(&relation).cloned().unwrap_or_default()
            },
            filter: self
                .grants
                .row_filters
                .get(&relation)
                .map(|t| self.render(t)),
        };
        if restriction == Restriction::default() {
            TableAccess::Full
        } else {
            TableAccess::Restricted(restriction)
        }
    }

    /// A row filter template with `{{ user.x }}` replaced by SQL string literals. A user without
    /// an attribute the filter names gets `FALSE`: no rows rather than all of them.
    pub fn render(&self, template: &str) -> String {
        let mut out = String::new();
        let mut rest = template;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                return "FALSE".to_string();
            };
            let name = after[..end].trim();
            let value = match name.strip_prefix("user.") {
                Some("name") => Some(self.user.as_str()),
                Some("role") => Some(self.role.as_str()),
                Some(attr) => self.attrs.get(attr).map(String::as_str),
                None => None,
            };
            let Some(value) = value else {
                tracing::warn!(user = %self.user, attribute = name, "row filter names an attribute the user lacks; no rows");
                return "FALSE".to_string();
            };
            out.push('\'');
            out.push_str(&value.replace('\'', "''"));
            out.push('\'');
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        out
    }
}
