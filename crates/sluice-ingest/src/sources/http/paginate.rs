//! Reading a response: where its records are, and which URL the next page has.
//!
//! The next page is always expressed as a complete URL, whatever the pagination style, so that the
//! position inside a paged incremental window can be committed with the data and resumed from
//! exactly (see `source.rs`).

use std::cmp::Ordering;

use reqwest::header::HeaderMap;
use serde_json::Value;
use url::Url;

use super::config::Pagination;

/// The value at a dotted path (`data.items`, `meta.next_cursor`); an empty path is the value itself.
pub(crate) fn at_path<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .filter(|p| !p.is_empty())
        .try_fold(value, |v, key| match v {
            Value::Object(map) => map.get(key),
            Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
}

/// A short name for a JSON value's kind, for messages.
pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The records of a page body, or what was expected instead.
pub(crate) fn records<'a>(body: &'a Value, path: Option<&str>) -> Result<&'a [Value], String> {
    match path {
        None => match body {
            Value::Array(items) => Ok(items),
            other => Err(format!(
                "expected the body to be an array of records, found {} (set `records:` to the path \
                 of the array, e.g. `data.items`)",
                kind_of(other)
            )),
        },
        Some(path) => match at_path(body, path) {
            Some(Value::Array(items)) => Ok(items),
            // An absent or null list on the last page of some APIs means "no records".
            Some(Value::Null) => Ok(&[]),
            Some(other) => Err(format!(
                "expected an array of records at `{path}`, found {}",
                kind_of(other)
            )),
            None => Err(format!(
                "expected an array of records at `{path}`, but the body has no `{path}`"
            )),
        },
    }
}

/// `url` with query parameter `name` set to `value` (replacing any earlier value).
pub(crate) fn with_param(url: &Url, name: &str, value: &str) -> Url {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut out = url.clone();
    {
        let mut q = out.query_pairs_mut();
        q.clear();
        for (k, v) in &kept {
            q.append_pair(k, v);
        }
        q.append_pair(name, value);
    }
    out
}

/// The value of query parameter `name` in `url`.
fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The first page's URL: `base` plus the pagination's starting parameters.
pub(crate) fn first_page(base: &Url, pagination: &Pagination) -> Url {
    match pagination {
        Pagination::Page {
            param,
            size_param,
            size,
            start,
        } => {
            let mut url = with_param(base, param, &start.to_string());
            if let (Some(p), Some(n)) = (size_param, size) {
                url = with_param(&url, p, &n.to_string());
            }
            url
        }
        Pagination::Offset {
            param,
            limit_param,
            size,
        } => with_param(
            &with_param(base, param, "0"),
            limit_param,
            &size.to_string(),
        ),
        Pagination::None | Pagination::Cursor { .. } | Pagination::Link => base.clone(),
    }
}

/// The next page's URL after the page at `url` that returned `count` records, or `None` at the end.
pub(crate) fn next_page(
    pagination: &Pagination,
    url: &Url,
    count: usize,
    body: &Value,
    headers: &HeaderMap,
) -> Result<Option<Url>, String> {
    Ok(match pagination {
        Pagination::None => None,
        Pagination::Page {
            param: name,
            size,
            start,
            ..
        } => {
            let short = size.is_some_and(|n| (count as u64) < n);
            if count == 0 || short {
                return Ok(None);
            }
            let current = match param(url, name) {
                Some(v) => v
                    .parse::<u64>()
                    .map_err(|_| format!("page parameter `{name}` is `{v}`, not a number"))?,
                None => *start,
            };
            Some(with_param(url, name, &(current + 1).to_string()))
        }
        Pagination::Offset {
            param: name, size, ..
        } => {
            if count == 0 || (count as u64) < *size {
                return Ok(None);
            }
            let current = match param(url, name) {
                Some(v) => v
                    .parse::<u64>()
                    .map_err(|_| format!("offset parameter `{name}` is `{v}`, not a number"))?,
                None => 0,
            };
            Some(with_param(url, name, &(current + count as u64).to_string()))
        }
        Pagination::Cursor { param: name, next } => match at_path(body, next) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => Some(with_param(url, name, s)),
            Some(Value::Number(n)) => Some(with_param(url, name, &n.to_string())),
            Some(other) => {
                return Err(format!(
                    "expected the next-page token at `{next}` to be a string, found {}",
                    kind_of(other)
                ));
            }
        },
        Pagination::Link => {
            match next_link(headers) {
                None => None,
                Some(target) => Some(url.join(&target).map_err(|e| {
                    format!("the `Link` header's next URL `{target}` is invalid: {e}")
                })?),
            }
        }
    })
}

/// The `rel="next"` target of a `Link` header (RFC 8288), if any.
pub(crate) fn next_link(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|link| {
            let (target, params) = link.trim().split_once(';')?;
            let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
            let is_next = params.split(';').any(|p| {
                let Some((k, v)) = p.trim().split_once('=') else {
                    return false;
                };
                k.trim().eq_ignore_ascii_case("rel")
                    && v.trim()
                        .trim_matches('"')
                        .split_ascii_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
            });
            is_next.then(|| target.to_string())
        })
}

/// Orders two cursor values: numbers numerically, RFC 3339 timestamps as instants, other text as
/// text.
pub(crate) fn compare_cursor(a: &Value, b: &Value) -> Ordering {
    if let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) {
        if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
            return x.cmp(&y);
        }
        return x.partial_cmp(&y).unwrap_or(Ordering::Equal);
    }
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let (x, y) = (text(a), text(b));
    match (
        chrono::DateTime::parse_from_rfc3339(&x),
        chrono::DateTime::parse_from_rfc3339(&y),
    ) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => x.cmp(&y),
    }
}

/// The text a watermark is sent as.
pub(crate) fn param_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_and_records() {
        let body = json!({"data": {"items": [{"id": 1}], "none": null}, "n": 3});
        assert_eq!(records(&body, Some("data.items")).unwrap().len(), 1);
        assert_eq!(records(&body, Some("data.none")).unwrap().len(), 0);
        assert_eq!(
            records(&body, Some("n")).unwrap_err(),
            "expected an array of records at `n`, found a number"
        );
        assert!(
            records(&body, Some("data.missing"))
                .unwrap_err()
                .contains("has no `data.missing`")
        );
        assert!(
            records(&body, None)
                .unwrap_err()
                .contains("found an object")
        );
        assert_eq!(at_path(&json!({"a": [5, 6]}), "a.1"), Some(&json!(6)));
    }

    #[test]
    fn next_pages() {
        let base = Url::parse("http://h/v1/items?status=all").unwrap();
        let page = Pagination::Page {
            param: "page".into(),
            size_param: Some("per_page".into()),
            size: Some(2),
            start: 1,
        };
        let first = first_page(&base, &page);
        assert_eq!(
            first.as_str(),
            "http://h/v1/items?status=all&page=1&per_page=2"
        );
        let h = HeaderMap::new();
        let second = next_page(&page, &first, 2, &Value::Null, &h)
            .unwrap()
            .unwrap();
        assert_eq!(
            second.as_str(),
            "http://h/v1/items?status=all&per_page=2&page=2"
        );
        assert_eq!(
            next_page(&page, &second, 1, &Value::Null, &h).unwrap(),
            None
        );
        let offset = Pagination::Offset {
            param: "offset".into(),
            limit_param: "limit".into(),
            size: 3,
        };
        let o = first_page(&base, &offset);
        let o2 = next_page(&offset, &o, 3, &Value::Null, &h)
            .unwrap()
            .unwrap();
        assert_eq!(param(&o2, "offset").as_deref(), Some("3"));
        let cursor = Pagination::Cursor {
            param: "after".into(),
            next: "meta.next".into(),
        };
        let c = next_page(&cursor, &base, 5, &json!({"meta": {"next": "tok 2"}}), &h).unwrap();
        assert_eq!(
            c.unwrap().as_str(),
            "http://h/v1/items?status=all&after=tok+2"
        );
        assert_eq!(
            next_page(&cursor, &base, 5, &json!({"meta": {"next": ""}}), &h).unwrap(),
            None
        );
        assert!(next_page(&cursor, &base, 5, &json!({"meta": {"next": [1]}}), &h).is_err());
    }

    #[test]
    fn link_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::LINK,
            "<https://api.x/items?page=1>; rel=\"prev\", </items?page=3>; rel=\"next\""
                .parse()
                .unwrap(),
        );
        assert_eq!(next_link(&h).as_deref(), Some("/items?page=3"));
        let url = Url::parse("https://api.x/items?page=2").unwrap();
        let next = next_page(&Pagination::Link, &url, 10, &Value::Null, &h).unwrap();
        assert_eq!(next.unwrap().as_str(), "https://api.x/items?page=3");
        assert_eq!(next_link(&HeaderMap::new()), None);
    }

    #[test]
    fn cursor_order() {
        assert_eq!(compare_cursor(&json!(10), &json!(9)), Ordering::Greater);
        assert_eq!(compare_cursor(&json!(1.5), &json!(2)), Ordering::Less);
        // The same instant in two offsets is equal; as text they would differ.
        assert_eq!(
            compare_cursor(
                &json!("2024-01-01T10:00:00Z"),
                &json!("2024-01-01T12:00:00+02:00")
            ),
            Ordering::Equal
        );
        assert_eq!(compare_cursor(&json!("b"), &json!("a")), Ordering::Greater);
    }
}
