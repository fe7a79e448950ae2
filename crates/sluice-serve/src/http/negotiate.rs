//! Choosing the response format: `?format=` first, then the `Accept` header, JSON by default.
//!
//! `Accept` is read as RFC 9110 says: each media range may carry a `q` weight (default 1, `q=0` means
//! "not this one"); a format takes the weight of the most specific range that matches it (`text/csv`
//! beats `text/*` beats `*/*`). The format with the highest weight wins; ties go to the range named
//! explicitly, then to the one listed first, then to the order of [`Format::ALL`] (JSON first), so
//! that browsers (`*/*;q=0.8`) and curl (`*/*`) get JSON.

use axum::http::{HeaderMap, header};

use crate::error::ApiError;
use crate::format::Format;

/// The format for a request.
pub fn negotiate(query: Option<&str>, headers: &HeaderMap) -> Result<Format, ApiError> {
    if let Some(name) = query {
        return Format::from_name(name).ok_or_else(|| ApiError::UnsupportedFormat {
            requested: name.to_string(),
        });
    }
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    if accept.trim().is_empty() {
        return Ok(Format::Json);
    }
    from_accept(&accept).ok_or(ApiError::NotAcceptable { accept })
}

/// One media range of an `Accept` header.
#[derive(Debug)]
struct Range {
    /// `type/subtype`, lower-case (`*/*`, `text/*`).
    media: String,
    /// Weight in 0..=1.
    q: f32,
}

fn parse(accept: &str) -> Vec<Range> {
    accept
        .split(',')
        .filter_map(|item| {
            let mut parts = item.split(';');
            let media = parts.next()?.trim().to_ascii_lowercase();
            if !media.contains('/') {
                return None;
            }
            let mut q = 1.0;
            for p in parts {
                if let Some((k, v)) = p.split_once('=')
                    && k.trim().eq_ignore_ascii_case("q")
                {
                    // An unreadable weight makes the range unusable rather than preferred.
                    q = v
                        .trim()
                        .parse::<f32>()
                        .ok()
                        .filter(|q| (0.0..=1.0).contains(q))?;
                }
            }
            Some(Range { media, q })
        })
        .collect()
}

/// How specifically `range` names `format`: 2 exact, 1 `type/*`, 0 `*/*`; `None` if it does not match.
fn specificity(range: &str, format: Format) -> Option<u8> {
    if format.media_types().contains(&range) {
        return Some(2);
    }
    if range == "*/*" {
        return Some(0);
    }
    let (kind, sub) = range.split_once('/')?;
    let own_kind = format.media_type().split('/').next()?;
    (sub == "*" && kind == own_kind).then_some(1)
}

/// The preferred format, or `None` when the header accepts none of them.
fn from_accept(accept: &str) -> Option<Format> {
    let ranges = parse(accept);
    let mut best: Option<(f32, u8, usize, usize, Format)> = None;
    for (order, format) in Format::ALL.into_iter().enumerate() {
        // The most specific matching range decides this format's weight; among equally specific
        // ranges, the higher weight.
        let mut decided: Option<(u8, f32, usize)> = None;
        for (pos, r) in ranges.iter().enumerate() {
            let Some(spec) = specificity(&r.media, format) else {
                continue;
            };
            let better = match decided {
                None => true,
                Some((s, q, _)) => spec > s || (spec == s && r.q > q),
            };
            if better {
                decided = Some((spec, r.q, pos));
            }
        }
        let Some((spec, q, pos)) = decided else {
            continue;
        };
        if q <= 0.0 {
            continue;
        }
        let wins = match best {
            None => true,
            Some((bq, bspec, bpos, border, _)) => {
                (q, spec, std::cmp::Reverse(pos), std::cmp::Reverse(order))
                    > (
                        bq,
                        bspec,
                        std::cmp::Reverse(bpos),
                        std::cmp::Reverse(border),
                    )
            }
        };
        if wins {
            best = Some((q, spec, pos, order, format));
        }
    }
    best.map(|b| b.4)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn with_accept(accept: &str) -> Result<Format, ApiError> {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(accept).unwrap());
        negotiate(None, &h)
    }

    #[test]
    fn query_parameter_wins_over_accept() {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_static("text/csv"));
        assert_eq!(negotiate(Some("parquet"), &h).unwrap(), Format::Parquet);
    }

    #[test]
    fn unknown_query_format_is_406_naming_the_supported_ones() {
        let err = negotiate(Some("xml"), &HeaderMap::new()).unwrap_err();
        assert_eq!(err.status(), axum::http::StatusCode::NOT_ACCEPTABLE);
        assert!(
            err.to_string()
                .contains("json, ndjson, csv, arrow, parquet"),
            "{err}"
        );
    }

    #[test]
    fn no_accept_and_wildcards_give_json() {
        assert_eq!(negotiate(None, &HeaderMap::new()).unwrap(), Format::Json);
        assert_eq!(with_accept("*/*").unwrap(), Format::Json);
        assert_eq!(with_accept("application/*").unwrap(), Format::Json);
        let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert_eq!(with_accept(browser).unwrap(), Format::Json);
    }

    #[test]
    fn exact_media_types_select_their_format() {
        assert_eq!(with_accept("text/csv").unwrap(), Format::Csv);
        assert_eq!(with_accept("text/*").unwrap(), Format::Csv);
        assert_eq!(with_accept("application/x-ndjson").unwrap(), Format::Ndjson);
        assert_eq!(
            with_accept("application/vnd.apache.arrow.stream").unwrap(),
            Format::Arrow
        );
        assert_eq!(
            with_accept("application/vnd.apache.parquet").unwrap(),
            Format::Parquet
        );
        assert_eq!(with_accept("Text/CSV; charset=utf-8").unwrap(), Format::Csv);
    }

    #[test]
    fn q_values_order_preferences() {
        assert_eq!(
            with_accept("application/json;q=0.5, text/csv;q=0.9").unwrap(),
            Format::Csv
        );
        assert_eq!(
            with_accept("application/vnd.apache.parquet;q=0.2, */*;q=0.1").unwrap(),
            Format::Parquet
        );
        // Equal weights: the first listed wins; an explicit range beats a wildcard.
        assert_eq!(
            with_accept("application/vnd.apache.arrow.stream, application/json").unwrap(),
            Format::Arrow
        );
        assert_eq!(with_accept("*/*, text/csv").unwrap(), Format::Csv);
    }

    #[test]
    fn q_zero_excludes_and_nothing_acceptable_is_406() {
        assert_eq!(
            with_accept("*/*, application/json;q=0").unwrap(),
            Format::Ndjson
        );
        let err = with_accept("application/xml, text/html").unwrap_err();
        assert_eq!(err.status(), axum::http::StatusCode::NOT_ACCEPTABLE);
        assert!(
            err.to_string().contains("application/vnd.apache.parquet"),
            "{err}"
        );
        assert!(with_accept("text/csv;q=0").is_err());
        // A broken weight disqualifies its range only.
        assert_eq!(
            with_accept("text/csv;q=abc, application/json").unwrap(),
            Format::Json
        );
    }
}
