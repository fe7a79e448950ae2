//! A request rate limit: `10/s`, `600/min`, `5000/h`, with requests spaced evenly.
//!
//! Even spacing (one request every period/n) is the strictest reading of an API's limit and needs no
//! burst bookkeeping: a limiter shared by all tables of a source never sends two requests closer
//! than the interval, whatever the tables do concurrently.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// Spaces requests at least `interval` apart.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    interval: Duration,
    /// The earliest time the next request may start.
    next: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// A limiter for `spec` (`N/s`, `N/sec`, `N/m`, `N/min`, `N/h`, `N/hour`).
    pub(crate) fn parse(spec: &str) -> Result<RateLimiter, String> {
        let expected = || {
            format!(
                "`{spec}` is not a rate limit; expected requests per period like `10/s`, `600/min` or `5000/h`"
            )
        };
        let (count, period) = spec.split_once('/').ok_or_else(expected)?;
        let count: u32 = count.trim().parse().map_err(|_| expected())?;
        if count == 0 {
            return Err(format!(
                "`{spec}`: the rate limit must allow at least 1 request"
            ));
        }
        let period = match period.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            _ => return Err(expected()),
        };
        Ok(RateLimiter {
            interval: period / count,
            next: Mutex::new(None),
        })
    }

    /// The spacing between requests.
    #[cfg(test)]
    pub(crate) fn interval(&self) -> Duration {
        self.interval
    }

    /// Waits until a request may start, and reserves that slot.
    pub(crate) async fn acquire(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rates() {
        assert_eq!(
            RateLimiter::parse("10/s").unwrap().interval(),
            Duration::from_millis(100)
        );
        assert_eq!(
            RateLimiter::parse("600 / min").unwrap().interval(),
            Duration::from_millis(100)
        );
        assert_eq!(
            RateLimiter::parse("3600/h").unwrap().interval(),
            Duration::from_secs(1)
        );
        assert!(
            RateLimiter::parse("0/s")
                .unwrap_err()
                .contains("at least 1")
        );
        assert!(RateLimiter::parse("fast").unwrap_err().contains("`10/s`"));
        assert!(RateLimiter::parse("10/fortnight").is_err());
    }

    #[tokio::test]
    async fn spaces_requests_evenly() {
        let limiter = RateLimiter::parse("40/s").unwrap();
        let start = Instant::now();
        for _ in 0..5 {
            limiter.acquire().await;
        }
        // The first goes at once, the next four 25 ms apart.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(100), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(400), "{elapsed:?}");
    }
}
