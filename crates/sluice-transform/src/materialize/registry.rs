//! The registry of materializations: one list (with [`Materialized`], the typed names it is indexed
//! by), from which the materializations a dbt project may use, the behaviour a model build runs
//! ([`super::materialization_for`]) and the docs table derive.

use super::{
    CdcMergeMaterialization, EphemeralMaterialization, IncrementalMaterialization, Materialization,
    SeedMaterialization, SnapshotMaterialization, TableMaterialization, ViewMaterialization,
};
use crate::compiled::Materialized;

/// One materialization, listed once in [`MATERIALIZATIONS`].
#[derive(Clone, Copy)]
pub struct MaterializationKind {
    /// Its typed name; its discriminant is this entry's position in [`MATERIALIZATIONS`].
    pub materialized: Materialized,
    /// The `materialized:` config value.
    pub name: &'static str,
    /// What it builds, in one line (the materializations table of `docs/plugins.md` repeats it).
    pub description: &'static str,
    /// Whether a dbt project may use it (`merge` is Sluice's own, for CDC change streams).
    pub dbt: bool,
    /// How a model build stages and publishes it.
    pub behaviour: &'static dyn Materialization,
}

impl std::fmt::Debug for MaterializationKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaterializationKind")
            .field("name", &self.name)
            .field("dbt", &self.dbt)
            .finish_non_exhaustive()
    }
}

/// Every materialization, in [`Materialized`]'s order.
///
/// Adding one: implement [`Materialization`], add a variant to [`Materialized`] (its discriminant the
/// next index), one line here, and the same name and description in `docs/plugins.md`.
pub static MATERIALIZATIONS: &[MaterializationKind] = &[
    MaterializationKind {
        materialized: Materialized::View,
        name: Materialized::View.as_str(),
        description: "Not stored: registered in every session from its SQL.",
        dbt: true,
        behaviour: &ViewMaterialization,
    },
    MaterializationKind {
        materialized: Materialized::Table,
        name: Materialized::Table.as_str(),
        description: "Rebuilt and replaced in one Delta commit (the default).",
        dbt: true,
        behaviour: &TableMaterialization,
    },
    MaterializationKind {
        materialized: Materialized::Incremental,
        name: Materialized::Incremental.as_str(),
        description: "New rows appended, or merged on `unique_key`; built like a table the first time.",
        dbt: true,
        behaviour: &IncrementalMaterialization,
    },
    MaterializationKind {
        materialized: Materialized::Ephemeral,
        name: Materialized::Ephemeral.as_str(),
        description: "Not stored: inlined as a CTE into the models that `ref()` it.",
        dbt: true,
        behaviour: &EphemeralMaterialization,
    },
    MaterializationKind {
        materialized: Materialized::Seed,
        name: Materialized::Seed.as_str(),
        description: "A CSV file of the project loaded as a table.",
        dbt: true,
        behaviour: &SeedMaterialization,
    },
    MaterializationKind {
        materialized: Materialized::Snapshot,
        name: Materialized::Snapshot.as_str(),
        description: "Type 2 history of a query: one version per change.",
        dbt: true,
        behaviour: &SnapshotMaterialization,
    },
    MaterializationKind {
        materialized: Materialized::Merge,
        name: Materialized::Merge.as_str(),
        description: "A current-state table from a CDC change stream: the latest change per `unique_key`, deletes delete.",
        dbt: false,
        behaviour: &CdcMergeMaterialization,
    },
];

/// Whether a dbt project may use `materialized: name`.
pub fn dbt_accepts(name: &str) -> bool {
    MATERIALIZATIONS.iter().any(|k| k.dbt && k.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_sit_at_their_discriminant_and_name_their_behaviour() {
        for (i, k) in MATERIALIZATIONS.iter().enumerate() {
            assert_eq!(k.materialized as usize, i, "`{}` is out of place", k.name);
            assert_eq!(k.behaviour.name(), k.name);
            assert_eq!(k.materialized.as_str(), k.name);
            assert_eq!(Materialized::from_name(k.name), Some(k.materialized));
            assert!(!k.description.trim().is_empty(), "`{}`", k.name);
        }
        assert_eq!(Materialized::from_name("tabel"), None);
        assert!(dbt_accepts("snapshot") && !dbt_accepts("merge"));
    }

    #[test]
    fn an_unknown_materialization_lists_the_registry_and_suggests() {
        let mut map = serde_json::Map::new();
        map.insert("materialized".into(), "tabel".into());
        let err = crate::compiled::ModelConfig::from_map(&map, std::path::Path::new("m.sql"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("did you mean `table`"), "{err}");
        assert!(
            err.contains("expected view, table, incremental, ephemeral, seed, snapshot or merge"),
            "{err}"
        );
    }
}
