//! The scheduler loop: wake up, gather what is due, start one run for it, sleep until the next tick.
//!
//! One task owns all the scheduling state, so there are no locks: runs execute on their own tasks and
//! report back through a `JoinSet`. The loop wakes for the next tick of any cadence, for the next
//! sensor poll, for a run that finished, or for shutdown. Everything it does with time goes through
//! the [`Clock`], so tests drive it with a [`super::ManualClock`].

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sluice_transform::{CompiledProject, Engine};
use tokio::sync::broadcast;
use tokio::task::{JoinError, JoinSet};

use super::ScheduleError;
use super::cadence::{Cadence, Catchup};
use super::clock::Clock;
use super::events::{DueReason, ScheduleInfo, SchedulerEvent, SchedulerOptions};
use super::maintenance::{MaintenanceCursor, PassDone};
use super::plan::SchedulePlan;
use super::sensor::FileSensor;
use super::store::RunMark;
use crate::abandon::AbandonedRun;
use crate::runner::{self, RunError, RunOptions, RunSummary, new_run_id};
use crate::state::StateStore;
/// Starts runs when nodes are due; see the [module docs](super).
pub struct Scheduler {
    pub(super) project: Arc<CompiledProject>,
    pub(super) engine: Engine,
    pub(super) state: Arc<StateStore>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) opts: SchedulerOptions,
    pub(super) plan: SchedulePlan,
    pub(super) events: broadcast::Sender<SchedulerEvent>,
    /// This scheduler's name in tick claims: two schedulers on one state database (two `sluice
    /// serve` processes) claim each tick and each upstream change, and only the claimer runs it.
    pub(super) holder: String,
}

struct TickCursor {
    cadence: Cadence,
    catchup: Catchup,
    /// Ticks up to here are queued or handled.
    after: DateTime<Utc>,
    /// Due ticks waiting for the node to be free.
    pending: VecDeque<DateTime<Utc>>,
}

pub(super) struct Flight {
    pub(super) run_id: String,
    pub(super) selection: String,
    pub(super) nodes: BTreeSet<String>,
    pub(super) ticks: Vec<(String, DateTime<Utc>)>,
}

pub(super) type Joined = Result<(tokio::task::Id, Result<RunSummary, RunError>), JoinError>;

pub(super) struct Live {
    cursors: BTreeMap<String, TickCursor>,
    sensors: Vec<FileSensor>,
    next_poll: DateTime<Utc>,
    pub(super) tasks: JoinSet<Result<RunSummary, RunError>>,
    pub(super) flights: HashMap<tokio::task::Id, Flight>,
    /// Nodes whose last run could not start; not re-triggered by upstream changes until then.
    cooldown: BTreeMap<String, DateTime<Utc>>,
    /// Scheduled runs this scheduler marked abandoned, whose unfinished nodes it is to take over.
    pub(super) orphans: Vec<AbandonedRun>,
    /// When to look for queued runs next (with [`SchedulerOptions::queue_interval`]).
    pub(super) next_queue_poll: Option<DateTime<Utc>>,
    /// Table maintenance on a schedule: one cursor per schedule, and the passes under way (by
    /// task, the cursor's index).
    pub(super) maintenance: Vec<MaintenanceCursor>,
    pub(super) maintaining: JoinSet<PassDone>,
    pub(super) maintenance_tasks: HashMap<tokio::task::Id, usize>,
}

impl Live {
    pub(super) fn in_flight(&self) -> BTreeSet<String> {
        self.flights
            .values()
            .flat_map(|f| f.nodes.iter().cloned())
            .collect()
    }
}

/// What on-upstream-change models have pending: the inputs' latest data changes against each
/// model's latest attempt, as the state database has them now.
pub(super) struct UpstreamChanges {
    changes: BTreeMap<String, RunMark>,
    attempts: BTreeMap<String, RunMark>,
    unfinished: BTreeSet<String>,
}

impl UpstreamChanges {
    pub(super) fn read(state: &StateStore) -> Result<UpstreamChanges, ScheduleError> {
        Ok(UpstreamChanges {
            changes: state.latest_data_changes()?,
            attempts: state.latest_attempts()?,
            unfinished: state.unfinished_runs()?,
        })
    }

    /// The `parents` of `node` that wrote rows after its last attempt, and the tick-claim key of
    /// those changes (the same in every scheduler that sees them, so one of them runs it); `None`
    /// when nothing changed.
    pub(super) fn of(&self, node: &str, parents: &[&str]) -> Option<(Vec<String>, String)> {
        let attempt = self.attempts.get(node);
        let changed: Vec<String> = parents
            .iter()
            .filter(|p| match (self.changes.get(**p), attempt) {
                (None, _) => false,
                // A run still going passes its changes on itself (or ends, and then we look).
                (Some(c), _) if self.unfinished.contains(&c.run_id) => false,
                (Some(_), None) => true,
                // In the attempt's own run the input was built first; otherwise compare times.
                (Some(c), Some(a)) => c.run_id != a.run_id && c.at > a.at,
            })
            .map(|p| p.to_string())
            .collect();
        if changed.is_empty() {
            return None;
        }
        let key = changed
            .iter()
            .filter_map(|p| self.changes.get(p).map(|c| format!("{p}@{}", c.run_id)))
            .collect::<Vec<_>>()
            .join(",");
        Some((changed, format!("upstream:{key}")))
    }
}

pub(super) fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    // Saturates: a long interval near the end of time must not panic the scheduler.
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl Scheduler {
    /// A scheduler for `project`; fails with every problem in its `schedule:`/`catchup:`/`trigger:`
    /// fields.
    pub fn new(
        project: Arc<CompiledProject>,
        engine: Engine,
        state: Arc<StateStore>,
        clock: Arc<dyn Clock>,
        opts: SchedulerOptions,
    ) -> Result<Scheduler, ScheduleError> {
        let plan = SchedulePlan::from_project(&project)?;
        let (events, _) = broadcast::channel(4096);
        Ok(Scheduler {
            project,
            engine,
            state,
            clock,
            opts,
            plan,
            events,
            holder: format!("scheduler-{}", uuid::Uuid::new_v4().simple()),
        })
    }

    /// Every node's schedule.
    pub fn plan(&self) -> &SchedulePlan {
        &self.plan
    }

    /// Events from now on (runs started and finished, idle moments, shutdown).
    pub fn subscribe(&self) -> broadcast::Receiver<SchedulerEvent> {
        self.events.subscribe()
    }

    /// Every node the scheduler starts by itself, with its next tick as of now.
    pub fn upcoming(&self) -> Result<Vec<ScheduleInfo>, ScheduleError> {
        upcoming(
            &self.plan,
            &self.state,
            self.clock.now(),
            self.opts.max_catchup,
        )
    }

    pub(super) fn emit(&self, e: SchedulerEvent) {
        // No subscriber is fine.
        let _ = self.events.send(e);
    }

    /// Marks runs whose process died abandoned, so their unfinished state holds no trigger back,
    /// and returns those this scheduler marked (the database lets exactly one process mark each).
    /// Cheap: one indexed query when nothing runs.
    fn reap_abandoned(&self) -> Vec<AbandonedRun> {
        self.state.reap_abandoned_runs().unwrap_or_else(|e| {
            self.problem(format!("looking for abandoned runs: {e}"));
            Vec::new()
        })
    }

    pub(super) fn problem(&self, message: String) {
        tracing::error!("{message}");
        self.emit(SchedulerEvent::Problem { message });
    }

    /// Runs until `shutdown` resolves, then lets in-flight runs finish for up to the grace period,
    /// cancels what is left, and returns.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> Result<(), ScheduleError> {
        let mut live = self.start()?;
        tokio::pin!(shutdown);
        let mut check_upstream = true;
        loop {
            let now = self.clock.now();
            self.enqueue_ticks(&mut live, now);
            let mut in_flight = live.in_flight();
            let mut due: BTreeMap<String, DueReason> = BTreeMap::new();
            if now >= live.next_poll {
                let reaped = self.reap_abandoned();
                live.orphans.extend(reaped);
                self.poll_sensors(&mut live, &in_flight, &mut due).await;
                live.next_poll = add(now, self.opts.sensor_interval);
                check_upstream = true;
            }
            if let (Some(every), Some(at)) = (self.opts.queue_interval, live.next_queue_poll)
                && now >= at
            {
                self.start_queued(&mut live);
                live.next_queue_poll = Some(add(now, every));
            }
            // Before upstream changes: a node taken over is in flight, not due a second time.
            if !live.orphans.is_empty() {
                self.take_over(&mut live);
                in_flight = live.in_flight();
            }
            if check_upstream {
                check_upstream = false;
                match self.upstream_due(&live, &in_flight, now) {
                    Ok(d) => due.extend(d),
                    Err(e) => self.problem(format!("checking upstream changes: {e}")),
                }
            }
            for (node, c) in &live.cursors {
                if let Some(t) = c.pending.front().filter(|_| !in_flight.contains(node)) {
                    due.insert(node.clone(), DueReason::Tick(*t));
                }
            }
            if !due.is_empty() {
                self.start_run(&mut live, due, &in_flight);
            }
            self.start_maintenance(&mut live, now);
            let next_wake = self.next_wake(&live);
            if live.tasks.is_empty() && live.maintaining.is_empty() {
                self.emit(SchedulerEvent::Idle { now, next_wake });
            }
            let sleep = match next_wake {
                Some(t) => self.clock.sleep_until(t),
                None => Box::pin(std::future::pending()),
            };
            tokio::select! {
                () = &mut shutdown => break,
                Some(joined) = live.tasks.join_next_with_id(), if !live.tasks.is_empty() => {
                    self.finish(&mut live, joined);
                    check_upstream = true;
                }
                Some(done) = live.maintaining.join_next_with_id(), if !live.maintaining.is_empty() => {
                    self.maintenance_done(&mut live, done);
                }
                () = sleep => {}
            }
        }
        self.drain(&mut live).await;
        self.emit(SchedulerEvent::Stopped);
        Ok(())
    }

    /// Loads the last handled tick of every scheduled node; a node seen for the first time starts
    /// counting from now (nothing to catch up).
    fn start(&self) -> Result<Live, ScheduleError> {
        let now = self.clock.now();
        let orphans = self.reap_abandoned();
        let ticks = self.state.schedule_ticks()?;
        let mut cursors = BTreeMap::new();
        for spec in self.plan.scheduled() {
            let Some(cadence) = spec.cadence.clone() else {
                continue;
            };
            let after = match ticks.get(&spec.node) {
                Some(t) if *t > now => {
                    tracing::warn!(node = %spec.node, last_tick = %t, "last tick is in the future (clock moved back?); counting from now");
                    now
                }
                Some(t) => *t,
                None => {
                    self.state.set_schedule_tick(&spec.node, now)?;
                    now
                }
            };
            cursors.insert(
                spec.node.clone(),
                TickCursor {
                    cadence,
                    catchup: spec.catchup,
                    after,
                    pending: VecDeque::new(),
                },
            );
        }
        let mut maintenance = Vec::new();
        for schedule in self.plan.maintenance() {
            let after = match ticks.get(&schedule.key) {
                Some(t) if *t <= now => *t,
                Some(_) => now,
                None => {
                    self.state.set_schedule_tick(&schedule.key, now)?;
                    now
                }
            };
            maintenance.push(MaintenanceCursor {
                schedule: schedule.clone(),
                after,
                pending: None,
                running: false,
            });
        }
        let sensors = self
            .plan
            .nodes()
            .filter_map(|n| {
                let spec = n.sensor.clone()?;
                Some(FileSensor::new(&n.node, spec, &self.project.project.root))
            })
            .collect();
        Ok(Live {
            cursors,
            sensors,
            next_poll: now,
            tasks: JoinSet::new(),
            flights: HashMap::new(),
            cooldown: BTreeMap::new(),
            orphans,
            next_queue_poll: self.opts.queue_interval.map(|_| now),
            maintenance,
            maintaining: JoinSet::new(),
            maintenance_tasks: HashMap::new(),
        })
    }

    /// Moves ticks that have come into each node's queue, per its catchup policy.
    fn enqueue_ticks(&self, live: &mut Live, now: DateTime<Utc>) {
        for (node, c) in &mut live.cursors {
            if c.cadence.next_after(c.after).is_none_or(|n| n > now) {
                continue;
            }
            match c.catchup {
                Catchup::Latest => {
                    match c.cadence.last_at_or_before(now) {
                        Some(t) => {
                            c.pending.clear();
                            c.pending.push_back(t);
                            c.after = t;
                        }
                        // Cannot happen for a tick that came; never spin on it.
                        None => c.after = now,
                    }
                }
                Catchup::All => {
                    let max = self.opts.max_catchup.max(1);
                    let (ticks, mut dropped) = c.cadence.latest_ticks(c.after, now, max);
                    c.after = ticks.last().copied().unwrap_or(now);
                    c.pending.extend(ticks);
                    while c.pending.len() > max {
                        c.pending.pop_front();
                        dropped += 1;
                    }
                    if dropped > 0 {
                        tracing::warn!(node = %node, dropped, max, "more missed ticks than max_catchup; running the newest");
                    }
                }
            }
        }
    }

    async fn poll_sensors(
        &self,
        live: &mut Live,
        in_flight: &BTreeSet<String>,
        due: &mut BTreeMap<String, DueReason>,
    ) {
        for sensor in &mut live.sensors {
            if in_flight.contains(sensor.node()) {
                continue;
            }
            match sensor.poll(self.engine.lake()).await {
                Ok(files) if !files.is_empty() => {
                    tracing::info!(
                        node = sensor.node(),
                        files = files.len(),
                        "new files arrived"
                    );
                    due.insert(sensor.node().to_string(), DueReason::FilesArrived(files));
                }
                Ok(_) => {}
                Err(e) => {
                    let message = e.to_string();
                    tracing::error!("{message}");
                    let _ = self.events.send(SchedulerEvent::Problem { message });
                }
            }
        }
    }

    /// On-upstream-change models with an input that wrote rows after the model's last attempt, and
    /// no input still running.
    fn upstream_due(
        &self,
        live: &Live,
        in_flight: &BTreeSet<String>,
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<String, DueReason>, ScheduleError> {
        let mut due = BTreeMap::new();
        if !self.plan.nodes().any(|n| n.on_upstream_change) {
            return Ok(due);
        }
        let pending = UpstreamChanges::read(&self.state)?;
        for spec in self.plan.nodes().filter(|n| n.on_upstream_change) {
            let node = spec.node.as_str();
            if in_flight.contains(node) || live.cooldown.get(node).is_some_and(|t| *t > now) {
                continue;
            }
            let parents: Vec<&str> = self.project.graph.parents(node).collect();
            if parents.iter().any(|p| in_flight.contains(*p)) {
                continue;
            }
            let Some((changed, key)) = pending.of(node, &parents) else {
                continue;
            };
            if !self.state.claim_tick(node, &key, &self.holder)? {
                tracing::debug!(node, "upstream change handled by another scheduler");
                continue;
            }
            due.insert(node.to_string(), DueReason::UpstreamChanged(changed));
        }
        Ok(due)
    }

    /// On-upstream-change models downstream of `due` (through other such models), not running.
    pub(super) fn conditional_downstream(
        &self,
        due: &BTreeMap<String, DueReason>,
        in_flight: &BTreeSet<String>,
    ) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut stack: Vec<String> = due.keys().cloned().collect();
        while let Some(n) = stack.pop() {
            for child in self.project.graph.children(&n) {
                let follows = self.plan.get(child).is_some_and(|s| s.on_upstream_change);
                if follows
                    && !due.contains_key(child)
                    && !in_flight.contains(child)
                    && out.insert(child.to_string())
                {
                    stack.push(child.to_string());
                }
            }
        }
        out
    }

    fn start_run(
        &self,
        live: &mut Live,
        mut due: BTreeMap<String, DueReason>,
        in_flight: &BTreeSet<String>,
    ) {
        let mut ticks = Vec::new();
        let mut taken = Vec::new();
        for (node, reason) in &due {
            if let DueReason::Tick(t) = reason {
                if let Some(c) = live.cursors.get_mut(node) {
                    c.pending.pop_front();
                }
                let key = t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                match self.state.claim_tick(node, &key, &self.holder) {
                    Ok(true) => ticks.push((node.clone(), *t)),
                    Ok(false) => {
                        tracing::info!(node = %node, tick = %key, "tick claimed by another scheduler");
                        taken.push(node.clone());
                    }
                    // Without the state database nobody else can run it either: run it here.
                    Err(e) => {
                        self.problem(format!("claiming tick {key} of `{node}`: {e}"));
                        ticks.push((node.clone(), *t));
                    }
                }
            }
        }
        for node in taken {
            due.remove(&node);
        }
        if due.is_empty() {
            return;
        }
        let conditional = self.conditional_downstream(&due, in_flight);
        let mut opts = self.opts.run.clone();
        opts.only_if_upstream_changed = conditional.clone();
        self.spawn_run(live, opts, due, conditional, ticks);
    }

    /// Starts one run of the `due` nodes and their `conditional` downstream on its own task.
    pub(super) fn spawn_run(
        &self,
        live: &mut Live,
        mut opts: RunOptions,
        due: BTreeMap<String, DueReason>,
        conditional: BTreeSet<String>,
        ticks: Vec<(String, DateTime<Utc>)>,
    ) {
        let nodes: BTreeSet<String> = due.keys().chain(conditional.iter()).cloned().collect();
        let run_id = new_run_id();
        opts.selection = nodes.iter().cloned().collect::<Vec<_>>().join(" ");
        opts.command = "schedule".into();
        opts.run_id = Some(run_id.clone());
        let opts_selection = opts.selection.clone();
        tracing::info!(run_id = %run_id, due = ?due.keys().collect::<Vec<_>>(), downstream = conditional.len(), "starting a scheduled run");
        let (p, e, s) = (
            self.project.clone(),
            self.engine.clone(),
            self.state.clone(),
        );
        let handle = live
            .tasks
            .spawn(async move { runner::run(p, e, s, opts).await });
        live.flights.insert(
            handle.id(),
            Flight {
                run_id: run_id.clone(),
                selection: opts_selection,
                nodes,
                ticks,
            },
        );
        self.emit(SchedulerEvent::RunStarted {
            run_id,
            due,
            conditional,
        });
    }

    fn next_wake(&self, live: &Live) -> Option<DateTime<Utc>> {
        live.cursors
            .values()
            .filter_map(|c| c.cadence.next_after(c.after))
            .chain(
                live.maintenance
                    .iter()
                    .filter_map(MaintenanceCursor::next_wake),
            )
            .chain(std::iter::once(live.next_poll))
            .chain(live.next_queue_poll)
            .min()
    }

    /// Records a finished run: its ticks are handled (whatever the nodes' outcome; retries are the
    /// runner's business), and its result is announced.
    pub(super) fn finish(&self, live: &mut Live, joined: Joined) {
        let (id, outcome) = match joined {
            Ok((id, r)) => (id, Ok(r)),
            Err(e) => (e.id(), Err(e)),
        };
        let Some(flight) = live.flights.remove(&id) else {
            return;
        };
        let failure = match outcome {
            Ok(Ok(summary)) => {
                for (node, t) in &flight.ticks {
                    if let Err(e) = self.state.set_schedule_tick(node, *t) {
                        self.problem(format!("recording the tick of `{node}`: {e}"));
                    }
                }
                tracing::info!(run_id = %flight.run_id, status = summary.status(), nodes = summary.nodes.len(), "scheduled run finished");
                self.emit(SchedulerEvent::RunFinished {
                    run_id: flight.run_id,
                    outcome: Ok(Arc::new(summary)),
                });
                return;
            }
            Ok(Err(e)) => e.to_string(),
            Err(e) => format!("the run task failed: {e}"),
        };
        self.problem(format!("scheduled run {} failed: {failure}", flight.run_id));
        let until = add(self.clock.now(), self.opts.sensor_interval);
        for n in &flight.nodes {
            live.cooldown.insert(n.clone(), until);
        }
        self.emit(SchedulerEvent::RunFinished {
            run_id: flight.run_id,
            outcome: Err(failure),
        });
    }
}

/// Every node of `plan` that starts by itself, with its next tick as of `now` (now itself when
/// ticks were missed, with how many). Also for callers without a running scheduler (the API).
pub fn upcoming(
    plan: &SchedulePlan,
    state: &StateStore,
    now: DateTime<Utc>,
    max_catchup: usize,
) -> Result<Vec<ScheduleInfo>, ScheduleError> {
    let ticks = state.schedule_ticks()?;
    let mut out = Vec::new();
    for spec in plan.nodes().filter(|n| n.is_automatic()) {
        let (next_tick, missed) = match (&spec.cadence, ticks.get(&spec.node)) {
            (Some(c), Some(last)) => {
                let (t, dropped) = c.latest_ticks(*last, now, max_catchup);
                let missed = t.len() as u64 + dropped;
                if missed > 0 {
                    (Some(now), missed)
                } else {
                    (c.next_after(now), 0)
                }
            }
            (Some(c), None) => (c.next_after(now), 0),
            (None, _) => (None, 0),
        };
        out.push(ScheduleInfo {
            node: spec.node.clone(),
            trigger: spec.describe(),
            next_tick,
            missed,
        });
    }
    Ok(out)
}
