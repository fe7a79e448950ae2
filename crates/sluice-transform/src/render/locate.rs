//! Where a `ref(…)` / `source(…)` call is in a model's Jinja-SQL, so that an unknown reference is
//! reported at its line and column.
//!
//! Rendering records what a call asked for, not where it was written (minijinja does not hand its
//! place to a function); the call is found again by reading the Jinja blocks of the text: the
//! function's name as a whole identifier, then its string-literal arguments.

use sluice_core::error::Position;

/// The place of the first call `func(…)` whose string arguments match `args` (for `ref`, the last
/// argument is the model, so `ref('pkg', 'm')` matches `["m"]`); `None` when the call is not written
/// in this text (e.g. it comes from a macro).
pub fn call_position(text: &str, func: &str, args: &[&str]) -> Option<Position> {
    let mut from = 0;
    while let Some(rel) = text[from..].find("{") {
        let open = from + rel;
        let close = match text.as_bytes().get(open + 1) {
            Some(b'{') => "}}",
            Some(b'%') => "%}",
            _ => {
                from = open + 1;
                continue;
            }
        };
        let body_start = open + 2;
        let end = text[body_start..]
            .find(close)
            .map_or(text.len(), |e| body_start + e);
        if let Some(at) = find_in_block(&text[body_start..end], func, args) {
            return Some(Position::of_offset(text, body_start + at));
        }
        from = (end + close.len()).min(text.len());
    }
    None
}

/// The offset in `body` of a matching call.
fn find_in_block(body: &str, func: &str, args: &[&str]) -> Option<usize> {
    let bytes = body.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\'' || b == b'"' {
            i = skip_string(bytes, i);
            continue;
        }
        if body[i..].starts_with(func)
            && (i == 0 || !(ident(bytes[i - 1]) || bytes[i - 1] == b'.'))
            && !bytes.get(i + func.len()).copied().is_some_and(ident)
        {
            let rest = body[i + func.len()..].trim_start();
            if let Some(inner) = rest.strip_prefix('(')
                && matches(&string_args(inner), func, args)
            {
                return Some(i);
            }
        }
        i += 1;
    }
    None
}

fn matches(found: &[String], func: &str, args: &[&str]) -> bool {
    match func {
        "ref" => found
            .last()
            .is_some_and(|l| args.last() == Some(&l.as_str())),
        _ => found.len() >= args.len() && found.iter().zip(args).all(|(f, a)| f == a),
    }
}

/// The leading string-literal arguments of a call (up to the first other argument or `)`).
fn string_args(inner: &str) -> Vec<String> {
    let bytes = inner.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        if !bytes.get(i).is_some_and(|q| *q == b'\'' || *q == b'"') {
            return out;
        }
        let end = skip_string(bytes, i);
        // Without its quotes (an unterminated literal has no closing one).
        out.push(inner[i + 1..(end - 1).max(i + 1)].to_string());
        i = end;
        while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        if bytes.get(i) != Some(&b',') {
            return out;
        }
        i += 1;
    }
}

/// The offset just past the string literal that starts at `start`.
fn skip_string(bytes: &[u8], start: usize) -> usize {
    let q = bytes[start];
    let mut i = start + 1;
    while i < bytes.len() && bytes[i] != q {
        i += if bytes[i] == b'\\' { 2 } else { 1 };
    }
    (i + 1).min(bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: usize, column: usize) -> Option<Position> {
        Some(Position { line, column })
    }

    #[test]
    fn finds_the_call_that_names_the_target() {
        let sql = "select *\nfrom {{ ref('orders') }} o\n  join {{ ref( \"pkg\" , 'custmers' ) }} c\n-- ref('custmers') outside Jinja\n";
        assert_eq!(call_position(sql, "ref", &["custmers"]), at(3, 11));
        assert_eq!(call_position(sql, "ref", &["orders"]), at(2, 9));
        assert_eq!(call_position(sql, "ref", &["nope"]), None);
        let sql = "{% set x = 'source(\"a\", \"b\")' %}\n{{ my_source('a', 'b') }} {{ source('a', 'b') }}";
        assert_eq!(call_position(sql, "source", &["a", "b"]), at(2, 30));
        assert_eq!(call_position(sql, "source", &["a", "c"]), None);
        // Columns count characters, not bytes.
        assert_eq!(
            call_position("-- é\n  é {{ ref('x') }}", "ref", &["x"]),
            at(2, 8)
        );
    }
}
