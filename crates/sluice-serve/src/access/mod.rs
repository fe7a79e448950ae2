//! Authorization: what each principal may read, masked and filtered how, and whether it may
//! operate or administer, from the project's `access.yml` ([`sluice_core::access`]).
//!
//! Enforcement sits in the catalog, not in the endpoints: [`Access::view`] resolves a principal to
//! a [`RoleView`], and [`catalog::GrantedCatalog`] wraps the engine's catalog with it. A table the
//! role may not read is absent from every listing and refused by name ([`Denied`]); a table read in
//! part is a view over the real one with the ungranted columns left out, the masked columns
//! replaced ([`mask`]) and the row filter applied under everything the query does. Every query path
//! (HTTP SQL and rows, dashboards, the PostgreSQL wire, Flight SQL) plans in a session over that
//! catalog ([`session`]), so a new path inherits the rules by using the same session.
//!
//! Without `access.yml` the built-in roles keep today's meaning and nothing is wrapped; without
//! authentication (the loopback development mode) there is no principal and nothing is wrapped.

pub mod catalog;
pub mod mask;
pub mod sample;
pub mod session;
pub mod view;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sluice_core::access::{AccessConfig, RoleGrants};
use sluice_core::pii::PiiKey;

pub use view::{RoleView, TableAccess};

use crate::audit::Auditor;
use crate::auth::{Principal, Role};

/// What a refused read says (PostgreSQL's wording, so the wire's SQLSTATE 42501 reads naturally);
/// the HTTP API and Flight SQL recognise it in engine errors.
pub const DENIED: &str = "permission denied for table";

/// A read of a table the role may not read.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{DENIED} {table}: role `{role}` may not read it (access.yml)")]
pub struct Denied {
    /// `layer.table`.
    pub table: String,
    /// The principal's role.
    pub role: String,
}

/// Whether an error (or its text, after passing through the engine) is a [`Denied`].
pub fn is_denied(message: &str) -> bool {
    message.contains(DENIED)
}

struct Inner {
    config: Option<Arc<AccessConfig>>,
    key: Option<PiiKey>,
    auditor: Option<Auditor>,
    views: Mutex<HashMap<String, Arc<RoleView>>>,
}

/// The project's access rules, shared by every listener.
#[derive(Clone)]
pub struct Access(Arc<Inner>);

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("configured", &self.0.config.is_some())
            .finish()
    }
}

impl Default for Access {
    fn default() -> Self {
        Access::built_in()
    }
}

impl Access {
    /// No `access.yml`: the built-in roles only.
    pub fn built_in() -> Access {
        Access(Arc::new(Inner {
            config: None,
            key: None,
            auditor: None,
            views: Mutex::new(HashMap::new()),
        }))
    }

    /// The rules of `config` (None: built-in roles only); `key` hashes the `hash` masks (without
    /// it, hashed columns read as NULL); every read is recorded by `auditor` when given.
    pub fn new(
        config: Option<AccessConfig>,
        key: Option<PiiKey>,
        auditor: Option<Auditor>,
    ) -> Access {
        Access(Arc::new(Inner {
            config: config.map(Arc::new),
            key,
            auditor,
            views: Mutex::new(HashMap::new()),
        }))
    }

    /// Where reads are recorded (the audit log), when they are.
    pub fn auditor(&self) -> Option<&Auditor> {
        self.0.auditor.as_ref()
    }

    /// Whether an `access.yml` is in force.
    pub fn configured(&self) -> bool {
        self.0.config.is_some()
    }

    /// The grants of `role`: from `access.yml` when there is one, else the built-in role's. A role
    /// no longer defined gets nothing.
    pub fn grants(&self, role: &Role) -> RoleGrants {
        match &self.0.config {
            Some(c) => c.role(role.as_str()).cloned().unwrap_or_default(),
            None => RoleGrants::built_in(role.as_str()).unwrap_or_default(),
        }
    }

    /// Whether `p` may run, cancel, retry, backfill and export.
    pub fn may_operate(&self, p: &Principal) -> bool {
        self.grants(&p.role).operate
    }

    /// Whether `p` may manage tokens and grants and read the audit log.
    pub fn may_administer(&self, p: &Principal) -> bool {
        self.grants(&p.role).administer
    }

    /// What `principal` sees, or None when it sees everything as it is (no principal: the open
    /// development mode; or a role that reads everything unmasked and unfiltered). Cached per user
    /// and role.
    pub fn view(&self, principal: Option<&Principal>) -> Option<Arc<RoleView>> {
        let p = principal?;
        let cache_key = view_key(p);
        if let Some(v) = lock(&self.0.views).get(&cache_key) {
            return v.is_restricted().then(|| v.clone());
        }
        let (masks, attrs) = match &self.0.config {
            Some(c) => (
                c.masks.clone(),
                c.users.get(&p.user).cloned().unwrap_or_default(),
            ),
            None => Default::default(),
        };
        let view = Arc::new(RoleView::new(
            p.user.clone(),
            p.role.as_str().to_string(),
            self.grants(&p.role),
            masks,
            attrs,
            self.0.key.clone(),
        ));
        lock(&self.0.views).insert(cache_key, view.clone());
        view.is_restricted().then_some(view)
    }
}

/// The cache key of a principal's view (its user and role).
pub fn view_key(p: &Principal) -> String {
    format!("{}\u{0}{}", p.user, p.role.as_str())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A cache of what is built per view (sessions), keyed by [`RoleView::key`].
pub struct ViewCache<T>(Mutex<HashMap<String, T>>);

impl<T> std::fmt::Debug for ViewCache<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewCache")
            .field("views", &lock(&self.0).len())
            .finish()
    }
}

impl<T> Default for ViewCache<T> {
    fn default() -> Self {
        ViewCache(Mutex::new(HashMap::new()))
    }
}

impl<T: Clone> ViewCache<T> {
    /// The cached value for `view`, or `build`'s (kept when it succeeds).
    pub fn get_or_try<E>(
        &self,
        view: &RoleView,
        build: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        let key = view.key();
        if let Some(v) = lock(&self.0).get(&key) {
            return Ok(v.clone());
        }
        let v = build()?;
        lock(&self.0).insert(key, v.clone());
        Ok(v)
    }
}

#[cfg(test)]
pub(crate) mod tests;
