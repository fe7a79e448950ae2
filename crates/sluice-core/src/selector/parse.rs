//! Parsing a selection string into terms and atoms, dbt's grammar (see the module docs of
//! [`crate::selector`]). Every error carries the column it was found at and what was expected there.

use super::SelectorError;

/// A whole selection: the union of its terms (space-separated in the text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// The terms, in order.
    pub terms: Vec<Term>,
}

/// One space-separated part: the intersection of its atoms (comma-separated in the text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// The atoms, in order.
    pub atoms: Vec<Atom>,
}

/// How far a graph operator reaches: `+` alone is unlimited, `2+` two generations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// Not asked for.
    None,
    /// Every generation.
    All,
    /// At most this many generations.
    Up(usize),
}

/// One selector with its graph operators: `[@|N+|+]method:value[+|+N]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Atom {
    /// The text of this atom, as written.
    pub text: String,
    /// 1-based column of the atom in the selection.
    pub column: usize,
    /// `@`: the node, its descendants, and every ancestor of those.
    pub at: bool,
    /// Leading `+` / `N+`: ancestors.
    pub parents: Depth,
    /// Trailing `+` / `+N`: descendants.
    pub children: Depth,
    /// The method (`tag`, `path`, `config.materialized`, …; [`Method::Default`] when none is written).
    pub method: Method,
    /// The value after the method.
    pub value: String,
}

/// The selector methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// No method: a node name, a source table name, a fully qualified name (`staging.stg_orders`,
    /// `staging`), or a path when the value looks like one (`models/staging`, `x.sql`).
    Default,
    /// `fqn:` the fully qualified name only.
    Fqn,
    /// `tag:`.
    Tag,
    /// `path:` a file or folder relative to the project (globs allowed).
    Path,
    /// `file:` a file name (with or without extension).
    File,
    /// `config.<key>:` a resolved config value (`config.materialized:incremental`).
    Config(String),
    /// `source:` a source (`shop`) or one of its tables (`shop.orders`).
    Source,
    /// `resource_type:` model, seed, snapshot, source or export.
    ResourceType,
    /// `export:` an export node (reverse ETL).
    Export,
    /// `package:` the project (every node of this project; dbt packages are not loaded).
    Package,
    /// `state:` compared with a previous run's manifest (`new`, `modified`, `modified.body`, …).
    State,
}

/// The method names a selector may use, for error messages.
pub const METHODS: &[&str] = &[
    "fqn",
    "tag",
    "path",
    "file",
    "config.<key>",
    "source",
    "resource_type",
    "export",
    "state",
    "package",
];

/// The values `state:` accepts.
pub const STATE_VALUES: &[&str] = &[
    "new",
    "old",
    "modified",
    "modified.body",
    "modified.configs",
    "modified.relation",
    "modified.persisted_descriptions",
    "modified.macros",
    "modified.contract",
    "unmodified",
];

/// Parses a selection. Empty (or blank) text parses to no terms.
pub fn parse(input: &str) -> Result<Selection, SelectorError> {
    let mut terms = Vec::new();
    for (start, word) in words(input, |c| c.is_whitespace()) {
        let mut atoms = Vec::new();
        for (offset, part) in split_keep(word, ',') {
            let column = column_of(input, start + offset);
            if part.is_empty() {
                return Err(err(
                    input,
                    column,
                    "a selector on each side of `,` (a comma intersects two selectors)",
                    if word.len() == offset {
                        "the end of the selector"
                    } else {
                        "`,`"
                    },
                ));
            }
            atoms.push(parse_atom(input, part, column)?);
        }
        terms.push(Term { atoms });
    }
    Ok(Selection { terms })
}

/// Byte-offset/word pairs of the non-empty pieces of `s` between separators.
fn words(s: &str, sep: impl Fn(char) -> bool) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices() {
        match (sep(c), start) {
            (true, Some(st)) => {
                out.push((st, &s[st..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(st) = start {
        out.push((st, &s[st..]));
    }
    out
}

/// Every piece between `sep`s, empty ones included, with its byte offset.
fn split_keep(s: &str, sep: char) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if c == sep {
            out.push((start, &s[start..i]));
            start = i + c.len_utf8();
        }
    }
    out.push((start, &s[start..]));
    out
}

/// 1-based character column of byte offset `at` in `s`.
fn column_of(s: &str, at: usize) -> usize {
    s[..at.min(s.len())].chars().count() + 1
}

fn err(input: &str, column: usize, expected: &str, found: &str) -> SelectorError {
    SelectorError::Syntax {
        selection: input.to_string(),
        column,
        expected: expected.to_string(),
        found: found.to_string(),
    }
}

fn parse_atom(input: &str, text: &str, column: usize) -> Result<Atom, SelectorError> {
    let mut rest = text;
    let mut col = column;
    let at = rest.starts_with('@');
    if at {
        rest = &rest[1..];
        col += 1;
    }
    // Leading `N+` or `+`: digits count only when a `+` follows (a model may be named `2020_sales`).
    let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let parents = if rest[digits..].starts_with('+') {
        let depth = parse_depth(&rest[..digits], input, col)?;
        rest = &rest[digits + 1..];
        col += digits + 1;
        depth
    } else {
        Depth::None
    };
    if at && parents != Depth::None {
        return Err(err(
            input,
            column,
            "either `@` or a leading `+` (`@` already includes every ancestor of the descendants)",
            text,
        ));
    }
    // Trailing `+` or `+N`.
    let tail_digits = rest.len() - rest.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let children = if rest.len() > tail_digits && rest[..rest.len() - tail_digits].ends_with('+') {
        let plus = rest.len() - tail_digits - 1;
        let depth = parse_depth(&rest[plus + 1..], input, col + rest[..plus].chars().count())?;
        rest = &rest[..plus];
        depth
    } else {
        Depth::None
    };
    let (method, method_text, value, value_col) = match rest.find(':') {
        Some(i) if is_method_name(&rest[..i]) => {
            let name = &rest[..i];
            let method = method_from(name).ok_or_else(|| {
                let suggestion = crate::graph::suggest(name, METHODS.iter().copied())
                    .map(|s| format!(" (did you mean `{s}:`?)"))
                    .unwrap_or_default();
                err(
                    input,
                    col,
                    &format!("a selector method: {}{suggestion}", METHODS.join(", ")),
                    &format!("`{name}:`"),
                )
            })?;
            (method, name, &rest[i + 1..], col + name.chars().count() + 1)
        }
        _ => (Method::Default, "", rest, col),
    };
    if value.is_empty() {
        let expected = match method {
            Method::Default => "a node name, a method such as `tag:x`, or a path".to_string(),
            _ => format!("a value after `{method_text}:`"),
        };
        return Err(err(input, value_col, &expected, "nothing"));
    }
    if let Some(i) = value.find(['+', '@']) {
        // `i` is a byte offset (`+` and `@` are one byte); the column counts characters.
        return Err(err(
            input,
            value_col + value[..i].chars().count(),
            "`+` or `@` only at the start or end of a selector",
            &format!("`{}`", &value[i..i + 1]),
        ));
    }
    if method == Method::State && !STATE_VALUES.contains(&value) {
        return Err(err(
            input,
            value_col,
            &format!("a state: value: {}", STATE_VALUES.join(", ")),
            &format!("`{value}`"),
        ));
    }
    Ok(Atom {
        text: text.to_string(),
        column,
        at,
        parents,
        children,
        method,
        value: value.to_string(),
    })
}

fn parse_depth(digits: &str, input: &str, column: usize) -> Result<Depth, SelectorError> {
    if digits.is_empty() {
        return Ok(Depth::All);
    }
    digits
        .parse::<usize>()
        .map(Depth::Up)
        .map_err(|_| err(input, column, "a small number of generations", digits))
}

/// dbt's method syntax: word characters and dots before the colon.
fn is_method_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

fn method_from(name: &str) -> Option<Method> {
    Some(match name {
        "fqn" => Method::Fqn,
        "tag" => Method::Tag,
        "path" => Method::Path,
        "file" => Method::File,
        "source" => Method::Source,
        "resource_type" => Method::ResourceType,
        "export" => Method::Export,
        "state" => Method::State,
        "package" => Method::Package,
        _ => {
            let key = name.strip_prefix("config.")?;
            if key.is_empty() {
                return None;
            }
            Method::Config(key.to_string())
        }
    })
}
