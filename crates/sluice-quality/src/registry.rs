//! The registry of check kinds: one list, from which [`build_check`], the kinds `validate` names and
//! suggests, the generic tests a dbt project may use, and the checks table of `docs/plugins.md` derive.

use sluice_core::CheckSpec;
use sluice_transform::render::RenderScope;

use crate::checks::{
    AcceptedValues, Expression, Freshness, NotNull, Range, Relationships, RowCount, Unique, invalid,
};
use crate::error::QualityError;
use crate::run::Check;
use crate::singular::Singular;

/// One check kind, listed once in [`CHECK_KINDS`].
#[derive(Debug, Clone, Copy)]
pub struct CheckKind {
    /// The test name in a properties file (`not_null`, `accepted_values`, …).
    pub name: &'static str,
    /// What makes it fail, in one line (the docs table repeats it word for word).
    pub description: &'static str,
    /// A minimal test entry of this kind, as written under a column; the registry test builds it
    /// against column `id` of a model `orders`, in a project that also has a model `customers`.
    pub example: &'static str,
    /// Whether a dbt project may name it as a generic test (`singular` comes from `tests/*.sql`).
    pub dbt_generic: bool,
    /// Parses the declaration's arguments; `scope` resolves `ref()`/`source()` in them.
    pub build: BuildCheck,
}

/// A check kind's constructor from its declaration; the scope resolves `ref()`/`source()`.
pub type BuildCheck = fn(CheckSpec, &RenderScope) -> Result<Box<dyn Check>, QualityError>;

/// Every check kind, in the order the docs list them.
///
/// Adding a kind: a type implementing [`Check`] with a `from_spec` constructor, one line here, and
/// the same name and description in the checks table of `docs/plugins.md`.
pub const CHECK_KINDS: &[CheckKind] = &[
    CheckKind {
        name: "not_null",
        description: "A value is NULL.",
        example: "not_null",
        dbt_generic: true,
        build: |spec, _| Ok(Box::new(NotNull::from_spec(spec)?)),
    },
    CheckKind {
        name: "unique",
        description: "A non-NULL value appears twice.",
        example: "unique",
        dbt_generic: true,
        build: |spec, _| Ok(Box::new(Unique::from_spec(spec)?)),
    },
    CheckKind {
        name: "accepted_values",
        description: "A non-NULL value is not in `values`.",
        example: "accepted_values: {values: [placed, shipped]}",
        dbt_generic: true,
        build: |spec, _| Ok(Box::new(AcceptedValues::from_spec(spec)?)),
    },
    CheckKind {
        name: "relationships",
        description: "A non-NULL value is missing from `field` of the `to` model or source table.",
        example: "relationships: {to: \"ref('customers')\", field: id}",
        dbt_generic: true,
        build: |spec, scope| Ok(Box::new(Relationships::from_spec(spec, scope)?)),
    },
    CheckKind {
        name: "range",
        description: "A value is outside `min`/`max`.",
        example: "range: {min: 0}",
        dbt_generic: true,
        build: |spec, _| Ok(Box::new(Range::from_spec(spec)?)),
    },
    CheckKind {
        name: "row_count",
        description: "The row count is outside `min`/`max`.",
        example: "row_count: {min: 1}",
        dbt_generic: true,
        build: |spec, _| Ok(Box::new(RowCount::from_spec(spec)?)),
    },
    CheckKind {
        name: "expression",
        description: "A row does not satisfy the SQL boolean `expr` (NULL counts as not).",
        example: "expression: {expr: \"id > 0\"}",
        dbt_generic: true,
        build: |spec, _| Ok(Box::new(Expression::from_spec(spec)?)),
    },
    CheckKind {
        name: "freshness",
        description: "The newest value of `column` is older than `warn_after`/`error_after`.",
        example: "freshness: {warn_after: 24h}",
        dbt_generic: true,
        build: |spec, _| Ok(Box::new(Freshness::from_spec(spec)?)),
    },
    CheckKind {
        name: "singular",
        description: "A SQL query (a dbt singular test in `tests/*.sql`) returns rows.",
        example: "singular: {sql: \"select * from {{ ref('orders') }} where id < 0\"}",
        dbt_generic: false,
        build: |spec, scope| Ok(Box::new(Singular::from_spec(spec, scope)?)),
    },
];

/// The registry entry of `kind`.
pub fn check_kind(kind: &str) -> Option<&'static CheckKind> {
    CHECK_KINDS.iter().find(|k| k.name == kind)
}

/// Every check kind's name, in registry order.
pub fn check_kind_names() -> impl Iterator<Item = &'static str> {
    CHECK_KINDS.iter().map(|k| k.name)
}

/// Builds the check a declaration describes. `scope` resolves `ref()`/`source()` in arguments.
pub fn build_check(spec: &CheckSpec, scope: &RenderScope) -> Result<Box<dyn Check>, QualityError> {
    match check_kind(&spec.kind) {
        Some(kind) => (kind.build)(spec.clone(), scope),
        None => {
            let other = spec.kind.as_str();
            let hint = sluice_core::graph::suggest(other, check_kind_names())
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            Err(invalid(
                spec,
                format!(
                    "unknown check kind `{other}`{hint}; known kinds: {}",
                    check_kind_names().collect::<Vec<_>>().join(", ")
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use sluice_core::ModelLayer;

    use super::*;

    fn spec(yaml: &str, column: Option<&str>) -> CheckSpec {
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(yaml).unwrap();
        CheckSpec::parse(&v, "orders", column, Path::new("p.yml")).unwrap()
    }

    #[test]
    fn unknown_kind_suggests_and_lists_the_registry() {
        let err = build_check(&spec("not_nul", Some("a")), &RenderScope::default())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("did you mean `not_null`"), "{err}");
        assert!(
            err.contains("known kinds: not_null, unique, accepted_values, relationships"),
            "{err}"
        );
    }

    #[test]
    fn no_duplicate_kinds() {
        let mut k: Vec<&str> = check_kind_names().collect();
        k.sort();
        k.dedup();
        assert_eq!(k.len(), CHECK_KINDS.len());
    }

    #[test]
    fn every_kind_is_described_and_builds_from_its_example() {
        let mut scope = RenderScope::default();
        scope.models.insert("orders".into(), ModelLayer::Silver);
        scope.models.insert("customers".into(), ModelLayer::Silver);
        for kind in CHECK_KINDS {
            assert!(!kind.description.trim().is_empty(), "`{}`", kind.name);
            let spec = spec(kind.example, Some("id"));
            assert_eq!(spec.kind, kind.name, "the example of `{}`", kind.name);
            let check =
                build_check(&spec, &scope).unwrap_or_else(|e| panic!("`{}`: {e}", kind.name));
            assert_eq!(check.spec().kind, kind.name);
        }
    }
}
