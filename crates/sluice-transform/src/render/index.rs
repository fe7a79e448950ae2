//! The render scope's lookups (models, sources, vars, ephemeral models) shared by every render.
//!
//! minijinja functions own what they capture, so each render used to clone the scope's maps; with
//! thousands of models that is quadratic. The cache builds one `Arc` copy and rebuilds it when the
//! scope's collections change size (they only grow while a project compiles).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use sluice_core::ModelLayer;

use super::RenderScope;

/// Shared lookups.
#[derive(Debug)]
pub struct RenderIndex {
    /// Model name → layer.
    pub models: BTreeMap<String, ModelLayer>,
    /// Source → tables.
    pub sources: BTreeMap<String, Vec<String>>,
    /// Project variables.
    pub vars: BTreeMap<String, serde_json::Value>,
    /// Ephemeral model names.
    pub ephemeral: BTreeSet<String>,
}

/// A lazily built [`RenderIndex`]; cloning a scope starts a fresh cache.
#[derive(Debug, Default)]
pub struct IndexCache(Mutex<Option<Arc<RenderIndex>>>);

impl Clone for IndexCache {
    fn clone(&self) -> Self {
        IndexCache::default()
    }
}

impl IndexCache {
    /// The index for `scope`, rebuilt when a collection's size differs from the cached one.
    pub fn get(&self, scope: &RenderScope) -> Arc<RenderIndex> {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(idx) = slot.as_ref()
            && idx.models.len() == scope.models.len()
            && idx.sources.len() == scope.sources.len()
            && idx.vars.len() == scope.vars.len()
            && idx.ephemeral.len() == scope.ephemeral.len()
        {
            return idx.clone();
        }
        let idx = Arc::new(RenderIndex {
            models: scope.models.clone(),
            sources: scope.sources.clone(),
            vars: scope.vars.clone(),
            ephemeral: scope.ephemeral.keys().cloned().collect(),
        });
        *slot = Some(idx.clone());
        idx
    }
}
