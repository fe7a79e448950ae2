//! The scheduler inside `sluice serve`: built from the project, announced at startup, and stopped by
//! the same signal as the HTTP server (see docs/scheduling.md).

use std::future::Future;
use std::sync::Arc;

use anyhow::{Result, anyhow};
use sluice_core::duration::parse_duration;
use sluice_orchestrate::schedule::{Scheduler, SchedulerOptions, SystemClock};
use tokio::sync::watch;

use super::Workspace;

/// `sluice serve`'s scheduler flags.
#[derive(Debug, Clone)]
pub struct SchedulerFlags {
    /// Run the scheduler (`--no-scheduler` turns it off).
    pub enabled: bool,
    /// How often file sensors look for new files (`--sensor-interval`).
    pub sensor_interval: String,
    /// Runs requested over this process's API are queued for a scheduler process (`--role api`)
    /// instead of running here (`--no-scheduler` keeps running them here).
    pub queue_runs: bool,
}

impl Default for SchedulerFlags {
    fn default() -> Self {
        Self {
            enabled: true,
            sensor_interval: "30s".into(),
            queue_runs: false,
        }
    }
}

/// How often a scheduler looks for runs queued by API processes: a requested run starts within
/// about this long (one indexed query when nothing waits).
pub const QUEUE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// One shutdown switch for everything `sluice serve` runs.
#[derive(Clone)]
pub struct Stop {
    tx: Arc<watch::Sender<bool>>,
}

impl Stop {
    /// A switch that flips when `signal` resolves (or when [`Stop::trigger`] is called).
    pub fn on(signal: impl Future<Output = ()> + Send + 'static) -> Stop {
        let (tx, _) = watch::channel(false);
        let stop = Stop { tx: Arc::new(tx) };
        let s = stop.clone();
        tokio::spawn(async move {
            signal.await;
            s.trigger();
        });
        stop
    }

    /// Flips the switch.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Resolves once the switch is flipped.
    pub fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.tx.subscribe();
        async move {
            let _ = rx.wait_for(|stopped| *stopped).await;
        }
    }
}

/// Builds the scheduler, failing on any bad `schedule:`/`catchup:`/`trigger:`; `None` when disabled.
pub fn prepare(ws: &Workspace, flags: &SchedulerFlags) -> Result<Option<Scheduler>> {
    if !flags.enabled {
        return Ok(None);
    }
    let sensor_interval =
        parse_duration(&flags.sensor_interval).map_err(|e| anyhow!("--sensor-interval: {e}"))?;
    let run = super::run::options(ws, "", "schedule")?;
    let scheduler = Scheduler::new(
        ws.compiled.clone(),
        ws.engine.clone(),
        ws.state.clone(),
        Arc::new(SystemClock),
        SchedulerOptions {
            sensor_interval,
            queue_interval: Some(QUEUE_INTERVAL),
            run,
            ..SchedulerOptions::default()
        },
    )
    .map_err(|e| anyhow!("{e}"))?;
    Ok(Some(scheduler))
}

/// Prints what the scheduler will start and when (after the server banner, whose first line tools
/// read for the address).
pub fn announce(scheduler: Option<&Scheduler>, flags: &SchedulerFlags) -> Result<()> {
    let Some(scheduler) = scheduler else {
        if flags.queue_runs {
            say!(
                "Scheduler: off (--role api); runs requested here are queued for a scheduler process"
            );
        } else {
            say!("Scheduler: off (--no-scheduler); runs requested here run in this process");
        }
        return Ok(());
    };
    let upcoming = scheduler.upcoming().map_err(|e| anyhow!("{e}"))?;
    if upcoming.is_empty() {
        say!(
            "Scheduler: nothing starts by itself (add `schedule:` to a source or model; see docs/scheduling.md)"
        );
        return Ok(());
    }
    say!("Scheduler: {} asset(s) start by themselves", upcoming.len());
    let width = upcoming.iter().map(|u| u.node.len()).max().unwrap_or(0);
    for u in &upcoming {
        let next = match (u.next_tick, u.missed) {
            (Some(_), n) if n > 0 => format!("  next: now ({n} missed tick(s))"),
            (Some(t), _) => format!("  next: {}", t.format("%Y-%m-%d %H:%M:%S UTC")),
            (None, _) => String::new(),
        };
        say!("  {:width$}  {}{next}", u.node, u.trigger);
    }
    Ok(())
}

/// Runs the scheduler until `stop` flips (returns at once when there is none).
pub async fn run(scheduler: Option<Scheduler>, stop: &Stop) -> Result<()> {
    match scheduler {
        Some(s) => s.run_until(stop.wait()).await.map_err(|e| anyhow!("{e}")),
        None => Ok(()),
    }
}
