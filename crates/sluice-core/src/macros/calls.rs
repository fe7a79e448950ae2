//! Which macros a template calls, for dbt's `depends_on.macros` in the manifest and
//! `state:modified.macros`: a macro changed when a node calls it, directly or through other macros.
//!
//! The scan is textual, as dbt's static parser is: inside `{{ … }}` and `{% … %}`, a project macro's
//! name followed by `(` is a call (a method such as `x.replace(` is not), and
//! `adapter.dispatch('name')` calls every candidate it may resolve to (`name` and each
//! `<adapter>__name`).

use std::collections::{BTreeMap, BTreeSet};

use super::MacroFile;

/// One `{% macro %}` block of a macro file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacroBlock {
    /// The macro's name.
    pub name: String,
    /// The block, from `{% macro` to the end of `{% endmacro %}`.
    pub text: String,
    /// The file it is in.
    pub path: std::path::PathBuf,
}

impl MacroFile {
    /// The file's macro blocks, in file order.
    pub fn blocks(&self) -> Vec<MacroBlock> {
        let mut out = Vec::new();
        let mut rest = self.text.as_str();
        while let Some(start) = super::find_tag(rest, "macro") {
            let after = &rest[start..];
            let Some(end_tag) = super::find_tag(after, "endmacro") else {
                break;
            };
            let close = after[end_tag..]
                .find("%}")
                .map_or(after.len(), |i| end_tag + i + 2);
            let block = &after[..close];
            if let Some(name) = super::macro_name(block) {
                out.push(MacroBlock {
                    name,
                    text: block.to_string(),
                    path: self.path.clone(),
                });
            }
            rest = &after[close..];
        }
        out
    }
}

/// The names among `known` that `text` calls directly (see the module docs).
pub fn direct_calls(text: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for region in jinja_regions(text) {
        let chars: Vec<(usize, char)> = region.char_indices().collect();
        let mut i = 0;
        while i < chars.len() {
            let (start, c) = chars[i];
            if !(c.is_alphabetic() || c == '_') {
                i += 1;
                continue;
            }
            let mut j = i;
            while j < chars.len() && (chars[j].1.is_alphanumeric() || chars[j].1 == '_') {
                j += 1;
            }
            let end = chars.get(j).map_or(region.len(), |(b, _)| *b);
            let word = &region[start..end];
            let after_dot = region[..start].trim_end().ends_with('.');
            let called = region[end..].trim_start().starts_with('(');
            if called && !after_dot && known.contains(word) {
                out.insert(word.to_string());
            }
            if word == "dispatch"
                && called
                && let Some(name) = first_string_arg(&region[end..])
            {
                out.extend(
                    known
                        .iter()
                        .filter(|k| *k == name || k.ends_with(&format!("__{name}")))
                        .cloned(),
                );
            }
            i = j;
        }
    }
    out
}

/// Every macro `text` calls, directly or through the macros it calls. `bodies` maps each macro name to
/// the text of its block.
pub fn transitive_calls(text: &str, bodies: &BTreeMap<String, String>) -> BTreeSet<String> {
    let known: BTreeSet<String> = bodies.keys().cloned().collect();
    let mut seen = BTreeSet::new();
    let mut queue: Vec<String> = direct_calls(text, &known).into_iter().collect();
    while let Some(m) = queue.pop() {
        if !seen.insert(m.clone()) {
            continue;
        }
        if let Some(body) = bodies.get(&m) {
            queue.extend(direct_calls(body, &known));
        }
    }
    seen
}

/// The insides of every `{{ … }}` and `{% … %}` of `text`.
fn jinja_regions(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(['{']) {
        let open = &rest[i..];
        let close = if open.starts_with("{{") {
            "}}"
        } else if open.starts_with("{%") {
            "%}"
        } else {
            rest = &rest[i + 1..];
            continue;
        };
        let inner = &open[2..];
        let end = inner.find(close).unwrap_or(inner.len());
        out.push(&inner[..end]);
        rest = &inner[(end + close.len()).min(inner.len())..];
    }
    out
}

/// The first argument of a call when it is a string literal: `('name', …)` → `name`.
fn first_string_arg(after: &str) -> Option<&str> {
    let inner = after.trim_start().strip_prefix('(')?.trim_start();
    let inner = inner.strip_prefix("macro_name").map_or(inner, |r| {
        r.trim_start().strip_prefix('=').unwrap_or(r).trim_start()
    });
    let quote = inner.chars().next().filter(|q| *q == '\'' || *q == '"')?;
    let body = &inner[1..];
    body.find(quote).map(|end| &body[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn bodies(text: &str) -> BTreeMap<String, String> {
        MacroFile::parse(Path::new("m.sql"), text)
            .blocks()
            .into_iter()
            .map(|b| (b.name, b.text))
            .collect()
    }

    #[test]
    fn finds_direct_indirect_and_dispatched_calls() {
        let b = bodies(
            "{% macro cents(c) %}{{ round_to(c, 2) }}{% endmacro %}\n\
             {% macro round_to(x, n) %}round({{ x }}, {{ n }}){% endmacro %}\n\
             {% macro unused() %}1{% endmacro %}\n\
             {% macro money(x) %}{{ return(adapter.dispatch('money')(x)) }}{% endmacro %}\n\
             {% macro default__money(x) %}{{ x }}::numeric{% endmacro %}\n\
             {% macro duckdb__money(x) %}{{ x }}::decimal{% endmacro %}\n",
        );
        assert_eq!(b.len(), 6);
        assert!(b["cents"].starts_with("{% macro cents") && b["cents"].ends_with("{% endmacro %}"));
        let sql = "select {{ cents('amount') }}, round(x), y.unused() from t -- unused(\n";
        assert_eq!(
            transitive_calls(sql, &b).into_iter().collect::<Vec<_>>(),
            ["cents", "round_to"],
            "SQL outside Jinja and method calls are not macro calls"
        );
        assert_eq!(
            transitive_calls("{{ money('a') }}", &b)
                .into_iter()
                .collect::<Vec<_>>(),
            ["default__money", "duckdb__money", "money"]
        );
        assert!(transitive_calls("{% set x = 1 %}{{ x }}", &b).is_empty());
    }
}
