//! Finding what a dbt project uses that Sluice does not run: package macros, warehouse introspection
//! (`run_query`, `adapter.get_relation`, …), hooks, custom materializations and generic tests, Python
//! models. Every use is reported with its file, line and column, all at once, before anything runs.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use sluice_core::error::Position;
use sluice_core::yaml::{Node, Value, parse_doc};
use sluice_transform::cross_db::{DBT_MACROS, DBT_UTILS_MACROS};

/// One use of an unsupported feature.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Unsupported {
    /// The file.
    pub path: PathBuf,
    /// Where in the file, when known.
    pub pos: Option<Position>,
    /// What it is.
    pub feature: String,
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pos {
            Some(p) => write!(
                f,
                "{}:{p}: unsupported: {}",
                self.path.display(),
                self.feature
            ),
            None => write!(f, "{}: unsupported: {}", self.path.display(), self.feature),
        }
    }
}

/// Namespaces of well-known dbt packages (besides the ones `packages.yml` names).
pub const KNOWN_PACKAGES: &[&str] = &[
    "dbt_utils",
    "dbt_expectations",
    "dbt_date",
    "codegen",
    "audit_helper",
    "elementary",
    "fivetran_utils",
    "dbt_external_tables",
    "metrics",
    "dbt_artifacts",
    "re_data",
];

/// Functions that need a warehouse connection or dbt internals.
const UNSUPPORTED_CALLS: &[(&str, &str)] = &[
    ("run_query", "run_query() (runs SQL at compile time)"),
    ("statement", "statement blocks (run SQL at compile time)"),
    ("load_result", "load_result() (results of statement blocks)"),
    ("set_sql_header", "set_sql_header()"),
    ("load_relation", "load_relation() (warehouse introspection)"),
    (
        "get_columns_in_relation",
        "get_columns_in_relation() (warehouse introspection)",
    ),
    ("get_relation", "get_relation() (warehouse introspection)"),
    ("dbt_unit_testing", "dbt_unit_testing"),
];

/// Block tags that Sluice does not run.
const UNSUPPORTED_TAGS: &[(&str, &str)] = &[
    ("call", "{% call %} blocks (statement / run_query)"),
    (
        "materialization",
        "custom materializations ({% materialization %})",
    ),
    ("test", "custom generic tests ({% test %} blocks)"),
];

/// `adapter` methods that work without a warehouse.
const ADAPTER_OK: &[&str] = &["quote", "dispatch"];

/// Scans Jinja-SQL text (a model, macro, snapshot or test) for unsupported uses.
pub fn scan_sql(path: &Path, text: &str, packages: &BTreeSet<String>) -> Vec<Unsupported> {
    let mut out = Vec::new();
    let mut push = |offset: usize, feature: String| {
        let u = Unsupported {
            path: path.to_path_buf(),
            pos: Some(Position::of_offset(text, offset)),
            feature,
        };
        if !out.contains(&u) {
            out.push(u);
        }
    };
    let mut i = 0;
    while let Some(rel) = text[i..].find('{') {
        let start = i + rel;
        let kind = text[start + 1..].chars().next();
        let close = match kind {
            Some('{') => "}}",
            Some('%') => "%}",
            Some('#') => "#}",
            _ => {
                i = start + 1;
                continue;
            }
        };
        let body_start = start + 2;
        let end = text[body_start..]
            .find(close)
            .map(|e| body_start + e)
            .unwrap_or(text.len());
        if kind != Some('#') {
            let body = &text[body_start..end];
            if kind == Some('%') {
                let tag: String = body
                    .trim_start_matches(['-', '+'])
                    .trim_start()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if let Some((_, what)) = UNSUPPORTED_TAGS.iter().find(|(t, _)| *t == tag) {
                    push(start, (*what).to_string());
                }
            }
            for (offset, prefix, name) in calls(body) {
                let at = body_start + offset;
                match prefix {
                    // The cross-database macros and dbt_utils' pure-SQL ones are built in.
                    Some("dbt") if DBT_MACROS.contains(&name) => {}
                    Some("dbt_utils")
                        if DBT_MACROS.contains(&name) || DBT_UTILS_MACROS.contains(&name) => {}
                    Some(p) if packages.contains(p) || KNOWN_PACKAGES.contains(&p) => push(
                        at,
                        format!("package macro `{p}.{name}` (dbt packages are not installed)"),
                    ),
                    Some("dbt") => push(
                        at,
                        format!(
                            "dbt's adapter macro `dbt.{name}` (write the DataFusion SQL directly)"
                        ),
                    ),
                    Some("adapter") if !ADAPTER_OK.contains(&name) => push(
                        at,
                        format!("`adapter.{name}` (needs a warehouse connection)"),
                    ),
                    Some("api" | "graph" | "modules") => {
                        push(at, format!("`{}.{name}`", prefix.unwrap_or_default()))
                    }
                    None => {
                        if let Some((_, what)) = UNSUPPORTED_CALLS.iter().find(|(c, _)| *c == name)
                        {
                            push(at, (*what).to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        i = (end + close.len()).min(text.len());
        if i <= start {
            i = start + 1;
        }
    }
    out
}

/// Function calls in a Jinja expression: `(offset, Some(prefix) for a.b(), name)`; string literals are
/// skipped.
fn calls(body: &str) -> Vec<(usize, Option<&str>, &str)> {
    let bytes = body.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let ident_start = |b: u8| b.is_ascii_alphabetic() || b == b'_';
    let ident_char = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\'' || b == b'"' {
            let q = b;
            i += 1;
            while i < bytes.len() && bytes[i] != q {
                i += 1;
            }
            i += 1;
            continue;
        }
        if ident_start(b) && (i == 0 || !ident_char(bytes[i - 1])) {
            let s = i;
            while i < bytes.len() && ident_char(bytes[i]) {
                i += 1;
            }
            let first = &body[s..i];
            if i < bytes.len()
                && bytes[i] == b'.'
                && i + 1 < bytes.len()
                && ident_start(bytes[i + 1])
            {
                let s2 = i + 1;
                let mut j = s2;
                while j < bytes.len() && ident_char(bytes[j]) {
                    j += 1;
                }
                let second = &body[s2..j];
                let mut k = j;
                while k < bytes.len() && bytes[k] == b' ' {
                    k += 1;
                }
                // Only a direct call of a namespace (`pkg.macro(`); `x.y.z(` and attributes are skipped.
                let preceded_by_dot = s > 0 && bytes[s - 1] == b'.';
                let called = k < bytes.len() && bytes[k] == b'(';
                if !preceded_by_dot && (called || matches!(first, "api" | "graph" | "modules")) {
                    out.push((s, Some(first), second));
                }
                i = j;
                continue;
            }
            let mut k = i;
            while k < bytes.len() && bytes[k] == b' ' {
                k += 1;
            }
            let preceded_by_dot = s > 0 && bytes[s - 1] == b'.';
            let preceded_by_pipe = body[..s].trim_end().ends_with('|');
            if k < bytes.len() && bytes[k] == b'(' && !preceded_by_dot && !preceded_by_pipe {
                out.push((s, None, first));
            }
            continue;
        }
        i += 1;
    }
    out
}

/// The package namespaces `packages.yml` / `dependencies.yml` name, and one finding per package (at
/// the place of its `package:`, `git:`, `local:` or `tarball:`).
pub fn scan_packages(
    path: &Path,
    text: &str,
) -> Result<(BTreeSet<String>, Vec<Unsupported>), sluice_core::ConfigError> {
    let doc = parse_doc(path, text)?;
    let mut names = BTreeSet::new();
    let mut found = Vec::new();
    let items = match doc.get("packages").map(|n| &n.value) {
        Some(Value::Seq(items)) => items.as_slice(),
        _ => &[],
    };
    for item in items {
        for key in ["package", "git", "local", "tarball"] {
            let Some(entry) = item.entry(key) else {
                continue;
            };
            // A tarball is named by its `name:`.
            let named: &Node = match key {
                "tarball" => item.get("name").unwrap_or(&entry.node),
                _ => &entry.node,
            };
            let Some(v) = named.as_str() else { continue };
            let ns = v
                .rsplit(['/', ':'])
                .next()
                .unwrap_or(v)
                .trim_end_matches(".git")
                .replace('-', "_");
            if ns.is_empty() {
                continue;
            }
            names.insert(ns.clone());
            // dbt_utils' pure-SQL macros are built in; its other macros are reported where used.
            if ns == "dbt_utils" {
                continue;
            }
            found.push(Unsupported {
                path: path.to_path_buf(),
                pos: Some(named.pos),
                feature: format!("package `{v}` (dbt packages are not installed; copy the macros you need into macros/)"),
            });
        }
    }
    Ok((names, found))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_package_and_warehouse_calls_with_lines() {
        let text = "select\n  {{ dbt_utils.star(from=ref('a')) }}, {{ dbt.dateadd('day', 1, 'd') }}, {{ dbt_utils.generate_surrogate_key(['a']) }},\n  {{ adapter.quote('x') }}\n{% set r = run_query('select 1') %}\n{{ cents('a') | upper }} {{ 'dbt_utils.fake(' }}\n{% call statement('x') %}{% endcall %}\n{{ adapter.get_columns_in_relation(this) }}";
        let found = scan_sql(Path::new("m.sql"), text, &BTreeSet::new());
        let lines: Vec<(usize, &str)> = found
            .iter()
            .map(|u| (u.pos.unwrap().line, u.feature.as_str()))
            .collect();
        assert_eq!(lines.len(), 5, "{lines:?}");
        assert_eq!(lines[0].0, 2);
        // The column of `dbt_utils.star` on its line.
        assert_eq!(found[0].pos.unwrap().column, 6);
        assert!(lines[0].1.contains("dbt_utils.star"));
        assert_eq!(lines[1], (4, "run_query() (runs SQL at compile time)"));
        assert_eq!(lines[2].0, 6);
        assert!(lines[2].1.contains("{% call %}"));
        assert!(
            lines
                .iter()
                .any(|(l, f)| *l == 6 && f.contains("statement"))
        );
        assert!(
            lines
                .iter()
                .any(|(l, f)| *l == 7 && f.contains("adapter.get_columns_in_relation"))
        );
    }

    #[test]
    fn reads_packages() {
        let text = "packages:\n  - package: dbt-labs/dbt_utils\n    version: 1.1.1\n  - git: \"https://github.com/org/my-pkg.git\"\n  - package: calogica/dbt_expectations\n";
        let (names, found) = scan_packages(Path::new("packages.yml"), text).unwrap();
        assert!(
            names.contains("dbt_utils") && names.contains("my_pkg"),
            "{names:?}"
        );
        // dbt_utils is built in (its unsupported macros are reported where they are used).
        assert_eq!(
            found.iter().map(|u| u.pos.unwrap()).collect::<Vec<_>>(),
            [
                Position {
                    line: 4,
                    column: 10
                },
                Position {
                    line: 5,
                    column: 14
                }
            ]
        );
        let tarball = "packages:\n  - tarball: https://x/pkg.tgz\n    name: 'pkg_x'\n";
        let (names, found) = scan_packages(Path::new("packages.yml"), tarball).unwrap();
        assert!(names.contains("pkg_x"), "{names:?}");
        assert_eq!(
            found[0].pos,
            Some(Position {
                line: 3,
                column: 11
            })
        );
        let err = scan_packages(Path::new("packages.yml"), "packages: [x\n").unwrap_err();
        assert!(err.to_string().starts_with("packages.yml:"), "{err}");
    }
}
