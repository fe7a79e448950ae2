//! Who owns each asset, what SLA it has, and where each owner's alerts go — resolved once from the
//! compiled project.
//!
//! Models take `freshness:` (without `column:`) from their properties file; source tables take it
//! from their source file, where a table's value overrides the source's. Source files come parsed
//! (`SourceDecl::freshness`, validated with their position when the project loads), so the monitor
//! needs no knowledge of connector configs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sluice_core::alerts::{AlertChannel, DEFAULT_OWNER, FreshnessSla};
use sluice_core::env::expand_env;
use sluice_transform::CompiledProject;

/// Whether an asset is a source table or a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssetKind {
    /// `source.table`.
    Source,
    /// A SQL model.
    Model,
}

impl AssetKind {
    /// `source` or `model`.
    pub fn as_str(self) -> &'static str {
        match self {
            AssetKind::Source => "source",
            AssetKind::Model => "model",
        }
    }
}

/// One asset as the monitor sees it.
#[derive(Debug, Clone)]
pub struct MonitoredAsset {
    /// Asset name.
    pub name: String,
    /// Source table or model.
    pub kind: AssetKind,
    /// Its owner (the asset's, else `defaults.owner`).
    pub owner: Option<String>,
    /// Its freshness SLA, if it declares one.
    pub sla: Option<FreshnessSla>,
}

/// A usable alert channel, with `${ENV}` expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Channel {
    /// POST the alert as JSON to this URL.
    Webhook(String),
    /// Run this with `sh -c` in the project folder.
    Command(String),
}

impl Channel {
    /// `webhook` or `command` (what is recorded: a webhook URL often holds a secret token).
    pub fn kind(&self) -> &'static str {
        match self {
            Channel::Webhook(_) => "webhook",
            Channel::Command(_) => "command",
        }
    }
}

/// Where an owner's alerts go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// To this channel (the owner's own, or `default`'s), named by its `owners:` key.
    To {
        /// The `owners:` key whose channel is used.
        via: String,
        /// The channel.
        channel: Channel,
    },
    /// The owner's channel is declared but unusable (e.g. its `${ENV}` is not set).
    Broken {
        /// The `owners:` key.
        via: String,
        /// Why.
        reason: String,
    },
    /// Nobody to tell: no channel for the owner and no `default`.
    Nowhere,
}

/// Every asset's owner and SLA, and every owner's channel.
#[derive(Debug, Clone)]
pub struct AlertConfig {
    /// Project name (in every alert).
    pub project: String,
    /// Project folder (commands run here).
    pub root: PathBuf,
    /// Assets by name.
    pub assets: BTreeMap<String, MonitoredAsset>,
    channels: BTreeMap<String, Result<Channel, String>>,
}

/// What `sluice validate` reports about alerting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems {
    /// Stop validation: a malformed channel or SLA.
    pub errors: Vec<String>,
    /// Reported only: alerts that would go nowhere.
    pub warnings: Vec<String>,
}

impl AlertConfig {
    /// Resolves the project's alerting (SLAs were validated when the project loaded).
    pub fn from_project(compiled: &CompiledProject) -> AlertConfig {
        let project = &compiled.project;
        let mut assets = BTreeMap::new();
        for (name, m) in &compiled.models {
            let sla = project
                .model(name)
                .and_then(|f| f.properties.freshness.as_ref())
                .filter(|f| f.get("column").is_none())
                .and_then(|f| FreshnessSla::from_yaml(f).ok());
            assets.insert(
                name.clone(),
                MonitoredAsset {
                    name: name.clone(),
                    kind: AssetKind::Model,
                    owner: m.config.owner.clone(),
                    sla,
                },
            );
        }
        let mut source_slas = BTreeMap::new();
        for decl in &project.sources {
            for t in &decl.tables {
                if let Some(sla) = t.freshness.or(decl.freshness) {
                    source_slas.insert(decl.asset_name(&t.name), sla);
                }
            }
        }
        for (name, s) in &compiled.sources {
            assets.insert(
                name.clone(),
                MonitoredAsset {
                    name: name.clone(),
                    kind: AssetKind::Source,
                    owner: s.owner.clone(),
                    sla: source_slas.get(name).copied(),
                },
            );
        }
        let channels = project
            .config
            .owners
            .iter()
            .map(|(owner, c)| (owner.clone(), usable(c, &project.root.join("sluice.yml"))))
            .collect();
        AlertConfig {
            project: project.config.name.clone(),
            root: project.root.clone(),
            assets,
            channels,
        }
    }

    /// Where alerts for `owner` go: the owner's channel, else `default`'s, else nowhere.
    pub fn route(&self, owner: Option<&str>) -> Route {
        let key = owner
            .filter(|o| self.channels.contains_key(*o))
            .unwrap_or(DEFAULT_OWNER);
        match self.channels.get(key) {
            Some(Ok(channel)) => Route::To {
                via: key.to_string(),
                channel: channel.clone(),
            },
            Some(Err(reason)) => Route::Broken {
                via: key.to_string(),
                reason: reason.clone(),
            },
            None => Route::Nowhere,
        }
    }

    /// Assets that declare a freshness SLA.
    pub fn with_sla(&self) -> impl Iterator<Item = (&MonitoredAsset, FreshnessSla)> {
        self.assets
            .values()
            .filter_map(|a| a.sla.map(|sla| (a, sla)))
    }
}

/// A channel with `${ENV}` expanded, or why it cannot be used.
fn usable(c: &AlertChannel, sluice_yml: &Path) -> Result<Channel, String> {
    c.validate()?;
    let expand = |v: &str| {
        expand_env(v, sluice_yml).map_err(|e| match e {
            sluice_core::ConfigError::MissingEnv { name, .. } => {
                format!("environment variable `{name}` is not set")
            }
            other => other.to_string(),
        })
    };
    match (&c.webhook, &c.command) {
        (Some(url), _) => {
            let url = expand(url)?;
            if url.starts_with("http://") || url.starts_with("https://") {
                Ok(Channel::Webhook(url))
            } else {
                Err("`webhook` must be an http:// or https:// URL".into())
            }
        }
        (None, Some(cmd)) => expand(cmd).map(Channel::Command),
        (None, None) => Err("no channel".into()),
    }
}

/// Checks the project's alerting: malformed channels and source SLAs are errors; owners whose alerts
/// would go nowhere, and channels whose `${ENV}` is not set, are warnings (a variable is often set
/// only where `sluice serve` runs).
pub fn validate(compiled: &CompiledProject) -> Problems {
    let project = &compiled.project;
    let sluice_yml = project.root.join("sluice.yml");
    let mut p = Problems::default();
    for (owner, c) in &project.config.owners {
        if let Err(e) = c.validate() {
            p.errors.push(format!(
                "{}: field `owners.{owner}`: {e}",
                sluice_yml.display()
            ));
        } else if let Err(e) = usable(c, &sluice_yml) {
            let line = format!("{}: field `owners.{owner}`: {e}", sluice_yml.display());
            if e.contains("environment variable") {
                p.warnings
                    .push(format!("{line}; alerts to `{owner}` fail until it is set"));
            } else {
                p.errors.push(line);
            }
        }
    }
    let cfg = AlertConfig::from_project(compiled);
    let with_sla = cfg.with_sla().count();
    if project.config.owners.is_empty() {
        if with_sla > 0 {
            p.warnings.push(format!(
                "{with_sla} asset(s) declare a freshness SLA but sluice.yml has no `owners:`; \
                 incidents are recorded, no alert is sent (see docs/alerts.md)"
            ));
        }
        return p;
    }
    let mut silent: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for a in cfg.assets.values() {
        if cfg.route(a.owner.as_deref()) == Route::Nowhere {
            let owner = a.owner.clone().unwrap_or_else(|| "(no owner)".into());
            silent.entry(owner).or_default().push(&a.name);
        }
    }
    for (owner, names) in silent {
        p.warnings.push(format!(
            "owner `{owner}` ({} asset(s), e.g. `{}`) has no channel in sluice.yml `owners:` and there is \
             no `default`; its alerts are recorded but not sent",
            names.len(),
            names[0]
        ));
    }
    p
}
