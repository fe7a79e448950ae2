//! When a node's ticks fall: a `schedule:` value parsed into a [`Cadence`], and the `catchup:` policy.
//!
//! Every form becomes a pure function of time (`next_after`, `last_at_or_before`), so the scheduler can
//! compute missed ticks after downtime, and tests can check exact instants without a clock. Cron
//! expressions are evaluated in UTC; `every <duration>` ticks are aligned to the Unix epoch, so
//! `every 15m` fires at :00, :15, :30 and :45 whatever time the process started.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use sluice_core::duration::parse_duration;

use super::ScheduleError;

/// What `continuous` means until streams arrive: a micro-batch every second.
pub const CONTINUOUS_INTERVAL: Duration = Duration::from_secs(1);

/// A parsed `schedule:` value.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use sluice_orchestrate::schedule::Cadence;
///
/// let c: Cadence = "every 15m".parse().unwrap();
/// let t = Utc.with_ymd_and_hms(2026, 1, 1, 10, 7, 0).unwrap();
/// assert_eq!(c.next_after(t), Some(Utc.with_ymd_and_hms(2026, 1, 1, 10, 15, 0).unwrap()));
/// ```
#[derive(Debug, Clone)]
pub struct Cadence {
    text: String,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Cron(Box<Cron>),
    /// Milliseconds between ticks (> 0), aligned to the Unix epoch.
    Every(i64),
    Continuous,
}

impl Cadence {
    /// Parses a `schedule:` value: a cron expression of 5 fields (or 6 with seconds first), `@hourly`,
    /// `@daily`, `@weekly`, `@monthly` (also `@yearly`), `every <duration>` or `continuous`.
    pub fn parse(text: &str) -> Result<Cadence, ScheduleError> {
        let trimmed = text.trim();
        let bad = |reason: String| ScheduleError::Cadence {
            value: text.to_string(),
            reason,
        };
        let lower = trimmed.to_ascii_lowercase();
        let kind = if lower == "continuous" {
            Kind::Continuous
        } else if let Some(rest) = lower.strip_prefix("every") {
            let rest = rest.trim();
            if rest.is_empty() {
                return Err(bad("`every` needs a duration".into()));
            }
            let d = parse_duration(rest).map_err(bad)?;
            let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
            if ms < 1 {
                return Err(bad("the interval must be at least 1ms".into()));
            }
            Kind::Every(ms)
        } else if let Some(name) = lower.strip_prefix('@') {
            let pattern = match name {
                "hourly" => "0 * * * *",
                "daily" | "midnight" => "0 0 * * *",
                "weekly" => "0 0 * * 0",
                "monthly" => "0 0 1 * *",
                "yearly" | "annually" => "0 0 1 1 *",
                other => return Err(bad(format!("unknown shorthand `@{other}`"))),
            };
            Kind::Cron(Box::new(parse_cron(pattern).map_err(bad)?))
        } else if trimmed.is_empty() {
            return Err(bad("the value is empty".into()));
        } else {
            let fields = trimmed.split_whitespace().count();
            if !(5..=6).contains(&fields) {
                return Err(bad(format!(
                    "a cron expression has 5 or 6 fields, this one has {fields}"
                )));
            }
            let cron = parse_cron(trimmed).map_err(bad)?;
            // A pattern that never matches (`0 0 30 2 *`) would silently never run.
            let probe = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).single();
            if probe
                .and_then(|p| cron.find_next_occurrence(&p, false).ok())
                .is_none()
            {
                return Err(bad("the expression never matches a real date".into()));
            }
            Kind::Cron(Box::new(cron))
        };
        Ok(Cadence {
            text: trimmed.to_string(),
            kind,
        })
    }

    /// The value as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether this is `continuous` (run as a 1-second micro-batch for now).
    pub fn is_continuous(&self) -> bool {
        matches!(self.kind, Kind::Continuous)
    }

    /// The fixed interval of `every …` and `continuous`; `None` for cron expressions.
    pub fn interval(&self) -> Option<Duration> {
        match self.kind {
            Kind::Every(ms) => Some(Duration::from_millis(ms.unsigned_abs())),
            Kind::Continuous => Some(CONTINUOUS_INTERVAL),
            Kind::Cron(_) => None,
        }
    }

    /// The first tick strictly after `t` (`None` when there is none, e.g. past year 9999).
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.kind {
            Kind::Cron(c) => c.find_next_occurrence(&t, false).ok(),
            Kind::Every(ms) => every_next(t, *ms),
            Kind::Continuous => every_next(t, CONTINUOUS_INTERVAL.as_millis() as i64),
        }
    }

    /// The last tick at or before `t`.
    pub fn last_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.kind {
            Kind::Cron(c) => c.find_previous_occurrence(&t, true).ok(),
            Kind::Every(ms) => every_floor(t, *ms),
            Kind::Continuous => every_floor(t, CONTINUOUS_INTERVAL.as_millis() as i64),
        }
    }

    /// The ticks in `(from, to]`, oldest first. The iterator ends at `to`; callers that may face a
    /// long outage bound it further with `take` or use [`Cadence::latest_ticks`].
    pub fn ticks_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Ticks<'_> {
        Ticks {
            cadence: self,
            cursor: Some(from),
            to,
        }
    }

    /// At most `limit` of the newest ticks in `(from, to]`, oldest first, and how many older ones were
    /// left out. Costs `limit` steps however long the gap is.
    pub fn latest_ticks(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> (Vec<DateTime<Utc>>, u64) {
        let mut out = Vec::new();
        let mut cursor = self.last_at_or_before(to);
        while let Some(t) = cursor {
            if t <= from || out.len() >= limit {
                break;
            }
            out.push(t);
            cursor = t
                .checked_sub_signed(chrono::Duration::milliseconds(1))
                .and_then(|t| self.last_at_or_before(t));
        }
        out.reverse();
        let dropped = match cursor {
            Some(t) if t > from => self.count_between(from, t),
            _ => 0,
        };
        (out, dropped)
    }

    /// How many ticks fall in `(from, to]` (exact for intervals; counted up to a bound for cron).
    fn count_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
        match self.interval() {
            Some(d) => {
                let ms = d.as_millis().max(1) as i64;
                let hi = to.timestamp_millis().div_euclid(ms);
                let lo = from.timestamp_millis().div_euclid(ms);
                (hi - lo).max(0) as u64
            }
            None => self.ticks_between(from, to).take(1_000_000).count() as u64,
        }
    }
}

fn parse_cron(pattern: &str) -> Result<Cron, String> {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
        .parse(pattern)
        .map_err(|e| e.to_string())
}

fn every_floor(t: DateTime<Utc>, ms: i64) -> Option<DateTime<Utc>> {
    let n = t.timestamp_millis().div_euclid(ms);
    DateTime::from_timestamp_millis(n.checked_mul(ms)?)
}

fn every_next(t: DateTime<Utc>, ms: i64) -> Option<DateTime<Utc>> {
    let n = t.timestamp_millis().div_euclid(ms).checked_add(1)?;
    DateTime::from_timestamp_millis(n.checked_mul(ms)?)
}

impl FromStr for Cadence {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Cadence::parse(s)
    }
}

impl fmt::Display for Cadence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)?;
        if self.is_continuous() {
            f.write_str(" (every 1s)")?;
        }
        Ok(())
    }
}

/// The ticks of a cadence in a range; see [`Cadence::ticks_between`].
#[derive(Debug, Clone)]
pub struct Ticks<'a> {
    cadence: &'a Cadence,
    cursor: Option<DateTime<Utc>>,
    to: DateTime<Utc>,
}

impl Iterator for Ticks<'_> {
    type Item = DateTime<Utc>;

    fn next(&mut self) -> Option<DateTime<Utc>> {
        let next = self.cadence.next_after(self.cursor?)?;
        if next > self.to {
            self.cursor = None;
            return None;
        }
        self.cursor = Some(next);
        Some(next)
    }
}

/// What happens to ticks missed while the scheduler was down (or busy with the same node).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Catchup {
    /// Run once for the newest missed tick (the default).
    #[default]
    Latest,
    /// Run once per missed tick, oldest first.
    All,
}

impl Catchup {
    /// `latest` or `all`.
    pub fn as_str(self) -> &'static str {
        match self {
            Catchup::Latest => "latest",
            Catchup::All => "all",
        }
    }
}

impl FromStr for Catchup {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "latest" => Ok(Catchup::Latest),
            "all" => Ok(Catchup::All),
            _ => Err(ScheduleError::Catchup {
                value: s.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 10, h, m, s).unwrap()
    }

    #[test]
    fn shorthands_fire_on_the_hour_day_week_month() {
        let t = at(10, 30, 0); // a Tuesday
        let next = |s: &str| Cadence::parse(s).unwrap().next_after(t).unwrap();
        assert_eq!(next("@hourly"), at(11, 0, 0));
        assert_eq!(
            next("@daily"),
            Utc.with_ymd_and_hms(2026, 3, 11, 0, 0, 0).unwrap()
        );
        assert_eq!(
            next("@weekly"),
            Utc.with_ymd_and_hms(2026, 3, 15, 0, 0, 0).unwrap(),
            "Sunday midnight"
        );
        assert_eq!(
            next("@monthly"),
            Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap()
        );
    }

    #[test]
    fn cron_with_five_and_six_fields() {
        let five = Cadence::parse("*/20 9-17 * * MON-FRI").unwrap();
        assert_eq!(five.next_after(at(10, 30, 0)), Some(at(10, 40, 0)));
        assert_eq!(
            five.next_after(at(17, 40, 0)),
            Some(at(9, 0, 0) + chrono::Duration::days(1))
        );
        let six = Cadence::parse("15 * * * * *").unwrap();
        assert_eq!(six.next_after(at(10, 30, 15)), Some(at(10, 31, 15)));
        assert_eq!(six.last_at_or_before(at(10, 30, 15)), Some(at(10, 30, 15)));
    }

    #[test]
    fn intervals_are_aligned_to_the_epoch() {
        let c = Cadence::parse("every 15m").unwrap();
        assert_eq!(c.next_after(at(10, 7, 0)), Some(at(10, 15, 0)));
        assert_eq!(
            c.next_after(at(10, 15, 0)),
            Some(at(10, 30, 0)),
            "strictly after"
        );
        assert_eq!(c.last_at_or_before(at(10, 15, 0)), Some(at(10, 15, 0)));
        assert_eq!(c.interval(), Some(Duration::from_secs(900)));
        let c = Cadence::parse("EVERY 1h30m").unwrap();
        assert_eq!(c.interval(), Some(Duration::from_secs(5400)));
        let cont = Cadence::parse("continuous").unwrap();
        assert!(cont.is_continuous());
        assert_eq!(cont.next_after(at(10, 0, 0)), Some(at(10, 0, 1)));
        assert_eq!(cont.to_string(), "continuous (every 1s)");
    }

    #[test]
    fn ticks_between_is_half_open_and_ends() {
        let c = Cadence::parse("@hourly").unwrap();
        let ticks: Vec<_> = c.ticks_between(at(10, 0, 0), at(13, 0, 0)).collect();
        assert_eq!(ticks, vec![at(11, 0, 0), at(12, 0, 0), at(13, 0, 0)]);
        assert_eq!(c.ticks_between(at(10, 0, 0), at(10, 59, 59)).count(), 0);
    }

    #[test]
    fn latest_ticks_caps_a_long_gap() {
        let c = Cadence::parse("every 1m").unwrap();
        let (ticks, dropped) = c.latest_ticks(at(10, 0, 0), at(12, 0, 0), 3);
        assert_eq!(ticks, vec![at(11, 58, 0), at(11, 59, 0), at(12, 0, 0)]);
        assert_eq!(dropped, 117);
        let (ticks, dropped) = c.latest_ticks(at(10, 0, 0), at(10, 2, 30), 10);
        assert_eq!(ticks, vec![at(10, 1, 0), at(10, 2, 0)]);
        assert_eq!(dropped, 0);
        let cron = Cadence::parse("*/1 * * * *").unwrap();
        let (ticks, dropped) = cron.latest_ticks(at(10, 0, 0), at(10, 10, 0), 4);
        assert_eq!(ticks.len(), 4);
        assert_eq!(dropped, 6);
    }

    #[test]
    fn bad_values_name_the_value_and_the_accepted_forms() {
        for (bad, why) in [
            ("every", "needs a duration"),
            ("every 10", "no unit"),
            ("every 5y", "unit `y`"),
            ("@fortnightly", "unknown shorthand"),
            ("* * *", "5 or 6 fields, this one has 3"),
            ("61 * * * *", ""),
            ("0 0 30 2 *", "never matches"),
            ("", "empty"),
        ] {
            let e = Cadence::parse(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("`{bad}`")), "{e}");
            assert!(e.contains(why), "{bad}: {e}");
            assert!(e.contains("@hourly") && e.contains("every 15m"), "{e}");
        }
    }

    #[test]
    fn huge_intervals_are_errors_and_the_largest_does_not_overflow() {
        for bad in [
            "every 99999999999999999999d",
            "every 18446744073709551615s",
            "every 36501d",
        ] {
            let e = Cadence::parse(bad).unwrap_err().to_string();
            assert!(e.contains("at most 36500d"), "{e}");
        }
        let c = Cadence::parse("every 36500d").unwrap();
        let end = DateTime::<Utc>::MAX_UTC;
        let start = DateTime::<Utc>::MIN_UTC;
        assert_eq!(c.next_after(end), None);
        assert!(c.last_at_or_before(end).is_some());
        let (ticks, _) = c.latest_ticks(start, end, 5);
        assert!(!ticks.is_empty());
        // One millisecond before the first representable instant does not exist.
        let every_ms = Cadence::parse("every 1ms").unwrap();
        let (ticks, dropped) = every_ms.latest_ticks(start, start, 3);
        assert!(ticks.is_empty() && dropped == 0);
        for t in [start, end] {
            let _ = every_ms.latest_ticks(start, t, 2);
            let _ = every_ms.next_after(t);
        }
    }

    #[test]
    fn huge_or_odd_cron_fields_are_errors() {
        for bad in [
            "99999999999999999999 * * * *",
            "*/0 * * * *",
            "*/99999999999999999999 * * * *",
            "0 0 99999999999 * *",
            "1-99999999999999999999 * * * *",
            "59-0 * * * *",
            "0 0 L-99999999999 * *",
            "0 0 * * 5#99999999999",
        ] {
            assert!(Cadence::parse(bad).is_err(), "{bad}");
        }
    }

    use proptest::prelude::*;

    fn cron_field() -> impl Strategy<Value = String> {
        let atom = prop_oneof![
            Just("*".to_string()),
            Just("?".to_string()),
            Just("L".to_string()),
            Just("W".to_string()),
            "[0-9]{1,25}",
            "[A-Za-z]{1,4}",
            ("[0-9]{1,3}", "[0-9]{1,22}").prop_map(|(a, b)| format!("{a}-{b}")),
            ("[0-9*]{1,3}", "[0-9]{1,22}").prop_map(|(a, b)| format!("{a}/{b}")),
            ("[0-9]{1,2}", "[0-9]{1,22}").prop_map(|(a, b)| format!("{a}#{b}")),
            ("[0-9]{1,22}").prop_map(|a| format!("L-{a}")),
            ("[0-9]{1,22}").prop_map(|a| format!("{a}W")),
            "\\PC{1,6}",
        ];
        prop::collection::vec(atom, 1..3).prop_map(|v| v.join(","))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn cron_strings_never_panic(fields in prop::collection::vec(cron_field(), 4..8)) {
            let text = fields.join(" ");
            if let Ok(c) = Cadence::parse(&text) {
                let t = at(10, 30, 0);
                let _ = c.next_after(t);
                let _ = c.last_at_or_before(t);
                let _ = c.latest_ticks(t - chrono::Duration::hours(1), t, 3);
            }
        }

        #[test]
        fn every_durations_never_panic(
            n in "[0-9]{1,40}",
            unit in prop::sample::select(vec!["ms", "s", "m", "h", "d", "w", "y", ""]),
            t in -8_000_000_000_000i64..8_000_000_000_000,
        ) {
            let text = format!("every {n}{unit}");
            match Cadence::parse(&text) {
                Ok(c) => {
                    let t = DateTime::from_timestamp_millis(t).unwrap_or_default();
                    let _ = c.next_after(t);
                    let _ = c.last_at_or_before(t);
                    let _ = c.latest_ticks(DateTime::<Utc>::MIN_UTC, t, 2);
                }
                Err(e) => prop_assert!(e.to_string().contains(&format!("`{text}`")), "{e}"),
            }
        }
    }

    #[test]
    fn catchup_parses() {
        assert_eq!("all".parse::<Catchup>().unwrap(), Catchup::All);
        assert_eq!(" Latest ".parse::<Catchup>().unwrap(), Catchup::Latest);
        let e = "some".parse::<Catchup>().unwrap_err().to_string();
        assert!(
            e.contains("`some`") && e.contains("all") && e.contains("latest"),
            "{e}"
        );
    }
}
