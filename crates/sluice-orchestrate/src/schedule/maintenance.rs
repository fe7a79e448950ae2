//! Table maintenance on a schedule: `schedule:` in a maintenance policy (`maintenance:` in
//! `sluice.yml`, docs/maintenance.md).
//!
//! The tables whose resolved policy has the same schedule are maintained together, in one pass of
//! [`crate::maintain::maintain`] (every table of the group, whatever `after_commits` says), recorded
//! as a run of command `maintain` with selection `(schedule <cron>)`. A group's ticks are claimed
//! and recorded in the state database under the key `maintenance:<cron>`, like a node's, so two
//! schedulers never both maintain at one tick and a restart does not repeat a handled tick; missed
//! ticks make one pass (maintenance has no use for catching up tick by tick).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sluice_lake::Lake;
use sluice_transform::CompiledProject;
use tokio::task::{JoinError, JoinSet};

use super::ScheduleError;
use super::cadence::Cadence;
use super::scheduler::{Live, Scheduler};
use crate::maintain::{MaintainOptions, Target, maintain, targets};
use crate::state::StateStore;

/// The tables maintained at the ticks of one schedule.
#[derive(Debug, Clone)]
pub struct MaintenanceSchedule {
    /// The key of its ticks in the state database: `maintenance:<schedule as written>`.
    pub key: String,
    /// When.
    pub cadence: Cadence,
    /// What, in graph order.
    pub targets: Vec<Target>,
}

/// The maintenance schedules of `project`, one per distinct `schedule:` value; every value that does
/// not parse is an error at its line of `sluice.yml`.
pub(super) fn maintenance_schedules(
    project: &CompiledProject,
) -> Result<Vec<MaintenanceSchedule>, Vec<ScheduleError>> {
    let config = &project.project.config.maintenance;
    let mut written: Vec<(String, &str)> = [
        ("bronze", &config.bronze),
        ("silver", &config.silver),
        ("gold", &config.gold),
    ]
    .into_iter()
    .filter_map(|(layer, policy)| {
        let text = policy.as_ref()?.schedule.as_deref()?;
        Some((format!("{layer}.schedule"), text))
    })
    .collect();
    for (asset, policy) in &config.assets {
        if let Some(text) = policy.schedule.as_deref() {
            written.push((format!("assets.{asset}.schedule"), text));
        }
    }
    let sluice_yml = project.project.root.join("sluice.yml");
    let errors: Vec<ScheduleError> = written
        .iter()
        .filter_map(|(field, text)| {
            let e = Cadence::parse(text).err()?;
            let line = position_in(&sluice_yml, field);
            Some(ScheduleError::At {
                file: sluice_yml.clone(),
                line: line.map(|p| p.line),
                column: line.map(|p| p.column),
                field: format!("maintenance.{field}"),
                source: Box::new(e),
            })
        })
        .collect();
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut groups: BTreeMap<String, Vec<Target>> = BTreeMap::new();
    for target in targets(project, None) {
        if let Some(schedule) = target.policy.schedule.clone() {
            groups.entry(schedule).or_default().push(target);
        }
    }
    Ok(groups
        .into_iter()
        .filter_map(|(text, targets)| {
            // Every value parsed above; a resolved one is one of them.
            let cadence = Cadence::parse(&text).ok()?;
            Some(MaintenanceSchedule {
                key: format!("maintenance:{text}"),
                cadence,
                targets,
            })
        })
        .collect())
}

/// Where `maintenance.<field>` (a dotted path) is in `sluice.yml`; only looked up for an error.
fn position_in(sluice_yml: &Path, field: &str) -> Option<sluice_core::error::Position> {
    let text = std::fs::read_to_string(sluice_yml).ok()?;
    let doc = sluice_core::yaml::parse_doc(sluice_yml, &text).ok()?;
    let mut node = doc.get("maintenance")?;
    // Asset names may hold dots (`shop.orders`): split off the first and last segments only.
    let (head, rest) = field.split_once('.')?;
    node = node.get(head)?;
    if head == "assets" {
        let (asset, key) = rest.rsplit_once('.')?;
        node = node.get(asset)?.get(key)?;
    } else {
        node = node.get(rest)?;
    }
    Some(node.pos)
}

/// One schedule's progress in a running scheduler.
pub(super) struct MaintenanceCursor {
    pub(super) schedule: MaintenanceSchedule,
    /// Ticks up to here are handled or pending.
    pub(super) after: DateTime<Utc>,
    /// The tick waiting for the previous pass to end.
    pub(super) pending: Option<DateTime<Utc>>,
    /// A pass is under way.
    pub(super) running: bool,
}

impl MaintenanceCursor {
    /// Takes the newest tick that came by `now` as pending (missed ticks make one pass).
    pub(super) fn enqueue(&mut self, now: DateTime<Utc>) {
        if self
            .schedule
            .cadence
            .next_after(self.after)
            .is_none_or(|t| t > now)
        {
            return;
        }
        let tick = self.schedule.cadence.last_at_or_before(now).unwrap_or(now);
        self.pending = Some(tick);
        self.after = tick;
    }

    pub(super) fn next_wake(&self) -> Option<DateTime<Utc>> {
        self.schedule.cadence.next_after(self.after)
    }
}

/// A finished pass: the tick it handled.
pub(super) type PassDone = DateTime<Utc>;

impl Scheduler {
    /// Starts a maintenance pass for each schedule with a pending tick and no pass under way, when
    /// this scheduler claims the tick.
    pub(super) fn start_maintenance(&self, live: &mut Live, now: DateTime<Utc>) {
        for (index, cursor) in live.maintenance.iter_mut().enumerate() {
            cursor.enqueue(now);
            if cursor.running {
                continue;
            }
            let Some(tick) = cursor.pending.take() else {
                continue;
            };
            let key = tick.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            match self
                .state
                .claim_tick(&cursor.schedule.key, &key, &self.holder)
            {
                Ok(true) => {}
                Ok(false) => {
                    tracing::info!(schedule = %cursor.schedule.key, tick = %key, "maintenance tick claimed by another scheduler");
                    continue;
                }
                Err(e) => {
                    self.problem(format!(
                        "claiming tick {key} of `{}`: {e}",
                        cursor.schedule.key
                    ));
                    continue;
                }
            }
            tracing::info!(schedule = %cursor.schedule.key, tables = cursor.schedule.targets.len(), "starting scheduled maintenance");
            cursor.running = true;
            let task = spawn_pass(
                &mut live.maintaining,
                tick,
                &cursor.schedule,
                self.project.clone(),
                self.engine.lake().clone(),
                self.state.clone(),
            );
            live.maintenance_tasks.insert(task, index);
        }
    }

    /// Records the tick of a finished maintenance pass.
    pub(super) fn maintenance_done(
        &self,
        live: &mut Live,
        done: Result<(tokio::task::Id, PassDone), JoinError>,
    ) {
        let (id, tick) = match done {
            Ok((id, tick)) => (id, Some(tick)),
            Err(e) => {
                // The tick stays unrecorded: the next start maintains again.
                self.problem(format!("scheduled maintenance failed: {e}"));
                (e.id(), None)
            }
        };
        let Some(index) = live.maintenance_tasks.remove(&id) else {
            return;
        };
        if let Some(cursor) = live.maintenance.get_mut(index) {
            cursor.running = false;
            let Some(tick) = tick else {
                return;
            };
            if let Err(e) = self.state.set_schedule_tick(&cursor.schedule.key, tick) {
                self.problem(format!(
                    "recording the tick of `{}`: {e}",
                    cursor.schedule.key
                ));
            }
        }
    }
}

/// Starts the pass of `schedule` for `tick` on `tasks`; returns its task.
fn spawn_pass(
    tasks: &mut JoinSet<PassDone>,
    tick: DateTime<Utc>,
    schedule: &MaintenanceSchedule,
    project: Arc<CompiledProject>,
    lake: Lake,
    state: Arc<StateStore>,
) -> tokio::task::Id {
    let targets = schedule.targets.clone();
    let selection = format!(
        "(schedule {})",
        schedule.key.trim_start_matches("maintenance:")
    );
    let handle = tasks.spawn(async move {
        let opts = MaintainOptions {
            selection,
            ..MaintainOptions::default()
        };
        match maintain(&project, &lake, &state, &targets, &opts).await {
            Ok(run) => {
                let failed = run.tables.iter().filter(|t| t.error.is_some()).count();
                tracing::info!(
                    run_id = run.run_id.as_deref().unwrap_or(""),
                    tables = run.tables.len(),
                    failed,
                    "scheduled maintenance finished"
                );
            }
            Err(e) => tracing::error!(error = %e, "scheduled maintenance could not be recorded"),
        }
        tick
    });
    handle.id()
}
