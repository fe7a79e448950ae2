//! SQL models: Jinja rendering, compilation into the asset graph, the DataFusion engine over the lake,
//! and materializations.
//!
//! The flow for one run: [`compile::compile`] renders every model once to learn its `ref()`/`source()`
//! dependencies and `config()`, and builds the [`sluice_core::AssetGraph`]; [`engine::Engine`] opens a
//! DataFusion session with every lake table registered under `bronze`/`silver`/`gold`; for each model the
//! orchestrator asks its [`materialize::Materialization`] to `stage` the output (checks run against it),
//! then to `publish` it atomically.
//!
//! DataFusion itself is reached through the engine facade, `sluice-engine` (sessions, execution on the
//! query runtime, memory limits, re-exported types): this crate builds on it the lake's session
//! ([`Engine`]), the SQL guard and the dialect rewrites.
//!
//! Materializations are listed once, in [`materialize::MATERIALIZATIONS`] (name, description, whether
//! dbt projects may use it, behaviour); [`Materialized`]'s names, the values `materialized:` accepts,
//! [`materialization_for`] and dbt's accepted materializations derive from it. Adding one: implement
//! [`materialize::Materialization`], add a variant to [`compile::Materialized`] (its discriminant the
//! next index), one line to [`materialize::MATERIALIZATIONS`], and the same name and description to the
//! materializations table of `docs/plugins.md` (the registry test fails until the docs match).

pub mod compile;
pub mod compiled;
pub mod cross_db;
pub mod dialect;
pub mod dialect_review;
pub mod engine;
pub mod error;
pub mod guard;
pub mod lineage;
pub mod macros;
pub mod materialize;
pub mod partition;
pub mod relation;
pub mod render;
pub mod select;
pub mod singular;
pub mod time_travel;

pub use compile::compile;
pub use compiled::{CompiledModel, CompiledProject, Materialized, ModelConfig, SourceAsset};
pub use dialect::Dialect;
pub use engine::{Engine, pretty};
pub use error::{Result, TransformError};
pub use materialize::{
    MATERIALIZATIONS, Materialization, MaterializationKind, ModelRun, Published, Staged,
    materialization_for,
};
pub use relation::{model_relation, source_relation};
pub use render::builtins::TARGET_CONTEXT_VAR;
pub use sluice_engine::EngineOptions;

pub use arrow;
