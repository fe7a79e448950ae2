//! The scheduler's notion of time, behind a trait so tests can move time by hand.
//!
//! The scheduler never calls `Utc::now()` or `tokio::time::sleep` itself: it asks its [`Clock`]. In
//! production that is [`SystemClock`]; tests use [`ManualClock`], which only moves when the test says so
//! and wakes every sleeper whose deadline has come, so "a day later" costs no real time.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tokio::sync::watch;

/// A source of the current time that can also wait for a moment to come.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;

    /// Resolves once [`Clock::now`] has reached `t` (at once if it already has).
    fn sleep_until(&self, t: DateTime<Utc>) -> BoxFuture<'static, ()>;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

/// Longest single sleep: waking now and then keeps a sleeper honest if the wall clock is stepped.
const MAX_NAP: Duration = Duration::from_secs(60);

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, t: DateTime<Utc>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            loop {
                let Ok(left) = (t - Utc::now()).to_std() else {
                    return;
                };
                if left.is_zero() {
                    return;
                }
                tokio::time::sleep(left.min(MAX_NAP)).await;
            }
        })
    }
}

/// A clock for tests: it stands still until [`ManualClock::advance`] or [`ManualClock::set`] moves it,
/// and then wakes every sleeper whose time has come. Clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<watch::Sender<DateTime<Utc>>>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: DateTime<Utc>) -> ManualClock {
        let (tx, _) = watch::channel(start);
        ManualClock { now: Arc::new(tx) }
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        let step = chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        self.now.send_modify(|now| {
            *now = now.checked_add_signed(step).unwrap_or(*now);
        });
    }

    /// Sets the clock to `t` (a test may also move it back, e.g. to simulate a stepped clock).
    pub fn set(&self, t: DateTime<Utc>) {
        self.now.send_replace(t);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.borrow()
    }

    fn sleep_until(&self, t: DateTime<Utc>) -> BoxFuture<'static, ()> {
        let mut rx = self.now.subscribe();
        Box::pin(async move {
            // An error means every clock handle is gone: nothing can move time any more, so stop waiting.
            let _ = rx.wait_for(|now| *now >= t).await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[tokio::test]
    async fn manual_clock_wakes_sleepers_only_when_their_time_comes() {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let clock = ManualClock::new(t0);
        let early = tokio::spawn(clock.sleep_until(t0 + chrono::Duration::minutes(5)));
        let late = tokio::spawn(clock.sleep_until(t0 + chrono::Duration::hours(1)));
        tokio::task::yield_now().await;
        assert!(!early.is_finished());
        clock.advance(Duration::from_secs(300));
        early.await.unwrap();
        assert_eq!(clock.now(), t0 + chrono::Duration::minutes(5));
        tokio::task::yield_now().await;
        assert!(!late.is_finished(), "an hour has not passed");
        clock.set(t0 + chrono::Duration::hours(2));
        late.await.unwrap();
        // A deadline already past resolves at once.
        clock.sleep_until(t0).await;
    }

    #[tokio::test]
    async fn system_clock_does_not_sleep_for_the_past() {
        let started = std::time::Instant::now();
        SystemClock
            .sleep_until(Utc::now() - chrono::Duration::hours(1))
            .await;
        assert!(started.elapsed() < Duration::from_secs(5));
        let before = SystemClock.now();
        assert!(SystemClock.now() >= before);
    }
}
