//! The clickstream: JSON lines in `landing/events/events-0001.jsonl` … `events-0006.jsonl`.
//!
//! Each file holds the events collected during one 15-day window, as a tracking pipeline would drop
//! them, with the dirt such pipelines have:
//! - lines are in session order, not time order;
//! - ~3% of the events of files 2–6 are late: their `event_timestamp` lies in an earlier window (an
//!   app that was offline, a retried upload);
//! - ~5% of the events are bot traffic: a user agent containing `bot`, `crawler` or `spider`, no user;
//! - files 4–6 carry a `campaign` property (a string or null) that files 1–3 never have: schema drift.
//!
//! Counts of bot and late events per file are exact (quotas drawn down session by session), so even
//! tiny scales have at least one of each. Events are written one by one through a `BufWriter`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use rand::Rng;
use rand::seq::IndexedRandom;
use serde::Serialize;

use super::clock::{DAY, HOUR, START, iso};
use super::orders::share_of;
use super::world::{CATEGORIES, World, weighted};
use super::{GeneratorError, STREAM_EVENTS, publish, rng_for, tmp_path};

/// Number of clickstream files.
pub(crate) const FILES: u64 = 6;
/// Fewest events generated: every file needs a bot event, a late event (but file 1) and a normal one.
pub(crate) const MIN_EVENTS: u64 = FILES * 3;
/// Time covered by one file.
pub(crate) const WINDOW: i64 = 15 * DAY;
/// The first file (1-based) with the `campaign` property.
pub(crate) const DRIFT_FROM_FILE: u64 = 4;
/// Markers of bot user agents (lower case).
#[cfg(test)]
pub(crate) const BOT_MARKERS: [&str; 3] = ["bot", "crawler", "spider"];

const BOT_SHARE: f64 = 0.05;
const LATE_SHARE: f64 = 0.03;
/// Share of human sessions that are not logged in.
const ANONYMOUS_SHARE: f64 = 0.25;

const BOT_AGENTS: [&str; 5] = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
    "shop-price-crawler/1.3 (+https://pricewatch.example/crawler)",
];
const MOBILE_AGENTS: [&str; 2] = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 Mobile Safari/537.36",
];
const DESKTOP_AGENTS: [&str; 3] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:122.0) Gecko/20100101 Firefox/122.0",
];
const TABLET_AGENTS: [&str; 2] = [
    "Mozilla/5.0 (iPad; CPU OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 Safari/537.36",
];
const DEVICES: [(&str, u32); 3] = [("mobile", 55), ("desktop", 35), ("tablet", 10)];
const REFERRERS: [(&str, u32); 8] = [
    ("google.com", 30),
    ("direct", 25),
    ("facebook.com", 10),
    ("instagram.com", 8),
    ("newsletter", 8),
    ("bing.com", 6),
    ("t.co", 5),
    ("partner-blog.example", 8),
];
const CAMPAIGNS: [&str; 5] = [
    "spring_sale",
    "newsletter_w07",
    "retargeting_q1",
    "brand_search",
    "influencer_march",
];

/// One line of a clickstream file; field order is the line's key order.
#[derive(Debug, Serialize)]
struct Event<'a> {
    event_id: String,
    user_id: Option<i64>,
    event_type: &'a str,
    event_timestamp: String,
    user_agent: &'a str,
    properties: Properties<'a>,
}

#[derive(Debug, Serialize)]
struct Properties<'a> {
    page: &'a str,
    referrer: &'a str,
    device: &'a str,
    /// Absent in files 1–3 (`None`); a campaign or null in files 4–6.
    #[serde(skip_serializing_if = "Option::is_none")]
    campaign: Option<Option<&'a str>>,
}

/// A visit: who, with what, and the pages in order.
struct Session {
    user_id: Option<i64>,
    user_agent: &'static str,
    device: &'static str,
    referrer: &'static str,
    campaign: Option<Option<&'static str>>,
    /// `(event_type, page)` in order.
    steps: Vec<(&'static str, String)>,
    start: i64,
    /// Seconds between two events: a random value in this range.
    gap: (i64, i64),
}

/// What [`write`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EventCounts {
    pub events: u64,
    pub files: u64,
}

/// Writes `total` events over [`FILES`] files in `dir`.
///
/// Each file has its own random stream and its own range of event ids, so the files are written in
/// parallel (serializing JSON dominates the cost in debug builds) and still come out byte-identical.
pub(crate) fn write(
    dir: &Path,
    world: &World,
    total: u64,
    seed: u64,
) -> Result<EventCounts, GeneratorError> {
    let id_salt = mix64(seed ^ 0x5eed_c11c_57ea_3000);
    let results: Vec<Result<u64, GeneratorError>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..FILES)
            .map(|file| {
                scope.spawn(move || {
                    let n = total / FILES + u64::from(file < total % FILES);
                    let path = dir.join(format!("events-{:04}.jsonl", file + 1));
                    let mut rng = rng_for(seed, STREAM_EVENTS);
                    // Streams above STREAM_EVENTS * 16 are reserved for the event files.
                    rng.set_stream(STREAM_EVENTS * 16 + file);
                    let mut writer = FileWriter {
                        rng,
                        world,
                        id_salt,
                        file,
                        next_seq: 0,
                        line_buf: Vec::with_capacity(512),
                    };
                    writer.write_file(&path, n)?;
                    tracing::debug!(path = %path.display(), events = n, "wrote clickstream file");
                    Ok(writer.next_seq)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut events = 0;
    for result in results {
        events += result?;
    }
    Ok(EventCounts {
        events,
        files: FILES,
    })
}

struct FileWriter<'w> {
    rng: rand_chacha::ChaCha8Rng,
    world: &'w World,
    id_salt: u64,
    /// 0-based file index.
    file: u64,
    /// Events written so far to this file; with `file`, feeds the event ids.
    next_seq: u64,
    /// The line being serialized.
    line_buf: Vec<u8>,
}

impl FileWriter<'_> {
    /// Writes this writer's file with `n` events.
    fn write_file(&mut self, path: &Path, n: u64) -> Result<(), GeneratorError> {
        let file = self.file;
        let tmp = tmp_path(path);
        let out = File::create(&tmp).map_err(|e| GeneratorError::io(&tmp, e))?;
        let mut out = BufWriter::new(out);
        let window_start = START + file as i64 * WINDOW;
        let drift = file + 1 >= DRIFT_FROM_FILE;

        let n_usize = n as usize;
        let mut bots = share_of(n_usize, BOT_SHARE).min(n_usize.saturating_sub(2)) as u64;
        let mut late = if file == 0 || n < 3 {
            0
        } else {
            share_of(n_usize, LATE_SHARE) as u64
        };
        let mut humans = n - bots;
        let mut line = 0u64;
        while bots + humans > 0 {
            let session = if self.rng.random_range(0..bots + humans) < bots {
                let s = self.bot_session(window_start, drift, bots);
                bots -= s.steps.len() as u64;
                s
            } else {
                // Late sessions are drawn with probability late/humans: the quota always drains.
                let is_late = self.rng.random_range(0..humans) < late;
                let cap = if is_late { late } else { humans - late };
                let s = self.human_session(window_start, drift, is_late, cap);
                humans -= s.steps.len() as u64;
                if is_late {
                    late -= s.steps.len() as u64;
                }
                s
            };
            self.write_session(&mut out, &tmp, &session, &mut line)?;
        }
        out.flush().map_err(|e| GeneratorError::io(&tmp, e))?;
        drop(out);
        publish(path)
    }

    fn write_session(
        &mut self,
        out: &mut impl Write,
        path: &Path,
        s: &Session,
        line: &mut u64,
    ) -> Result<(), GeneratorError> {
        let mut t = s.start;
        for (event_type, page) in &s.steps {
            *line += 1;
            let event = Event {
                // Unique: mix64 is a bijection and (file, seq) pairs are distinct below 2^40 events.
                event_id: format!(
                    "evt_{:016x}",
                    mix64(((self.file << 40) | self.next_seq) ^ self.id_salt)
                ),
                user_id: s.user_id,
                event_type,
                event_timestamp: iso(t)?,
                user_agent: s.user_agent,
                properties: Properties {
                    page,
                    referrer: s.referrer,
                    device: s.device,
                    campaign: s.campaign,
                },
            };
            // One line into a reused buffer, then one write: fewer small writes through the BufWriter.
            self.line_buf.clear();
            serde_json::to_writer(&mut self.line_buf, &event).map_err(|source| {
                GeneratorError::Json {
                    path: path.to_path_buf(),
                    line: *line,
                    source,
                }
            })?;
            self.line_buf.push(b'\n');
            out.write_all(&self.line_buf)
                .map_err(|e| GeneratorError::io(path, e))?;
            self.next_seq += 1;
            t += self.rng.random_range(s.gap.0..=s.gap.1);
        }
        Ok(())
    }

    /// A crawler walking category and product pages, at most `cap` (≥ 1) events, inside the window.
    fn bot_session(&mut self, window_start: i64, drift: bool, cap: u64) -> Session {
        let rng = &mut self.rng;
        let len = rng.random_range(3..=25u64).min(cap).max(1);
        let steps = (0..len)
            .map(|_| {
                if rng.random_bool(0.6) {
                    ("product_view", product_page(rng, self.world))
                } else {
                    ("page_view", category_page(rng))
                }
            })
            .collect();
        Session {
            user_id: None,
            user_agent: BOT_AGENTS.choose(rng).copied().unwrap_or(BOT_AGENTS[0]),
            device: "desktop",
            referrer: "direct",
            campaign: drift.then_some(None),
            steps,
            start: window_start + rng.random_range(0..WINDOW - HOUR),
            gap: (1, 8),
        }
    }

    /// A shopper's visit through the funnel (page views, product views, cart, checkout, purchase),
    /// cut to at most `cap` (≥ 1) events. A late session starts in an earlier window; every event of
    /// a session lies within an hour of its start, so it never crosses a window boundary.
    fn human_session(&mut self, window_start: i64, drift: bool, late: bool, cap: u64) -> Session {
        let rng = &mut self.rng;
        let world = self.world;
        let start = if late {
            window_start - rng.random_range(HOUR..3 * DAY)
        } else {
            window_start + rng.random_range(0..WINDOW - HOUR)
        };
        // Logged in as an active customer who had signed up by then (they are ordered by sign-up).
        let signed_up = world
            .active
            .partition_point(|&i| world.customers[i].created_at <= start);
        let user_id = if signed_up > 0 && !rng.random_bool(ANONYMOUS_SHARE) {
            let pick = world.active[rng.random_range(0..signed_up)];
            Some(world.customers[pick].id)
        } else {
            None
        };

        let mut steps = Vec::with_capacity(10);
        let landing = if rng.random_bool(0.5) {
            "/".to_string()
        } else {
            category_page(rng)
        };
        steps.push(("page_view", landing));
        for _ in 0..rng.random_range(0..=2) {
            steps.push(("page_view", category_page(rng)));
        }
        let views = rng.random_range(0..=4);
        for _ in 0..views {
            steps.push(("product_view", product_page(rng, world)));
        }
        if views > 0 && rng.random_bool(0.35) {
            steps.push(("add_to_cart", "/cart".to_string()));
            if user_id.is_some() && rng.random_bool(0.55) {
                steps.push(("checkout", "/checkout".to_string()));
                if rng.random_bool(0.8) {
                    steps.push(("purchase", "/checkout/complete".to_string()));
                }
            }
        }
        steps.truncate(cap.max(1) as usize);

        let device = weighted(rng, &DEVICES);
        let agents: &[&'static str] = match device {
            "mobile" => &MOBILE_AGENTS,
            "tablet" => &TABLET_AGENTS,
            _ => &DESKTOP_AGENTS,
        };
        let referrer = weighted(rng, &REFERRERS);
        let campaign = if !drift {
            None
        } else if rng.random_bool(0.5) {
            Some(CAMPAIGNS.choose(rng).copied())
        } else {
            Some(None)
        };
        Session {
            user_id,
            user_agent: agents.choose(rng).copied().unwrap_or(DESKTOP_AGENTS[0]),
            device,
            referrer,
            campaign,
            steps,
            start,
            gap: (2, 180),
        }
    }
}

fn category_page(rng: &mut impl Rng) -> String {
    let (category, ..) = CATEGORIES[rng.random_range(0..CATEGORIES.len())];
    format!("/c/{category}")
}

fn product_page(rng: &mut impl Rng, world: &World) -> String {
    match world.products.choose(rng) {
        Some(p) => format!("/p/{}", p.id),
        None => "/".to_string(),
    }
}

/// SplitMix64's finalizer: a bijection on `u64`, so distinct sequence numbers give distinct ids.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix64_is_injective_on_a_sample() {
        let ids: std::collections::HashSet<u64> = (0..100_000).map(mix64).collect();
        assert_eq!(ids.len(), 100_000);
    }

    #[test]
    fn bot_agents_are_recognisable_and_human_agents_are_not() {
        let is_bot = |ua: &str| BOT_MARKERS.iter().any(|m| ua.to_lowercase().contains(m));
        assert!(BOT_AGENTS.iter().all(|ua| is_bot(ua)));
        let humans = MOBILE_AGENTS
            .iter()
            .chain(&DESKTOP_AGENTS)
            .chain(&TABLET_AGENTS);
        assert!(humans.clone().all(|ua| !is_bot(ua)));
    }
}
