//! Finding, in the model files, what a dialect means and Sluice does not compute the same way.
//!
//! Rewrites ([`crate::dialect::rewrite`]) match what can be matched. What remains is reported by
//! `sluice validate` with the model file and the line of the expression, so that no figure differs
//! from the warehouse's without a word. The model text is read as written (Jinja blocks blanked out,
//! newlines kept), tokenized, and each [`CHECKS`] entry looks for its pattern.

use std::fmt;
use std::path::{Path, PathBuf};

use sluice_engine::sql::sqlparser::dialect::GenericDialect;
use sluice_engine::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use crate::compiled::CompiledProject;
use crate::dialect::Dialect;

/// One expression whose meaning in the project's dialect Sluice does not reproduce.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DialectNote {
    /// The model file.
    pub path: PathBuf,
    /// The line of the expression (1-based).
    pub line: usize,
    /// The dialect the project is written in.
    pub dialect: Dialect,
    /// What differs, and what to write instead.
    pub message: String,
}

impl fmt::Display for DialectNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {} semantics not matched: {}",
            self.path.display(),
            self.line,
            self.dialect,
            self.message
        )
    }
}

/// A pattern to report: the dialects it concerns, a matcher over the tokens (the index of the function
/// name and its top-level arguments), and the message.
struct Check {
    dialects: &'static [Dialect],
    function: &'static [&'static str],
    matches: fn(args: &[Vec<&Token>]) -> bool,
    message: &'static str,
}

fn single_string(arg: &[&Token]) -> Option<String> {
    match arg {
        [Token::SingleQuotedString(s)] => Some(s.clone()),
        _ => None,
    }
}

/// The checks, one per difference that is not rewritten.
const CHECKS: &[Check] = &[
    Check {
        dialects: &[
            Dialect::Postgres,
            Dialect::Snowflake,
            Dialect::DuckDb,
            Dialect::BigQuery,
            Dialect::Databricks,
        ],
        function: &["to_char", "to_varchar", "date_format"],
        matches: |args| {
            args.get(1)
                .and_then(|a| single_string(a))
                .is_some_and(|f| !f.contains('%'))
        },
        message: "a format template such as 'YYYY-MM-DD' is printed literally by DataFusion's \
                  to_char, which takes strftime patterns ('%Y-%m-%d'); write the strftime pattern",
    },
    Check {
        dialects: &[Dialect::Snowflake, Dialect::BigQuery, Dialect::Databricks],
        function: &["substr", "substring"],
        matches: |args| matches!(args.get(1).map(Vec::as_slice), Some([Token::Number(n, _)]) if n == "0"),
        message: "a start position of 0 counts as 1 in this dialect, but as the position before the \
                  first character in DataFusion (one character fewer); start at 1",
    },
    Check {
        dialects: &[
            Dialect::Postgres,
            Dialect::Snowflake,
            Dialect::DuckDb,
            Dialect::BigQuery,
            Dialect::Databricks,
        ],
        function: &["sum"],
        matches: |args| matches!(args.first().and_then(|a| a.first()), Some(Token::Word(w)) if w.value.eq_ignore_ascii_case("distinct")),
        message: "sum(DISTINCT …) of integers wraps around past ±9.2·10¹⁸ in DataFusion, where this \
                  dialect fails or returns a wider type (plain sum(…) is checked); cast the argument \
                  to DECIMAL(38, 0) if it can get there",
    },
];

/// Every note for the models of a compiled project, by file and line.
pub fn review(project: &CompiledProject) -> Vec<DialectNote> {
    let mut notes: Vec<DialectNote> = project
        .models
        .values()
        .flat_map(|m| review_text(project.dialect, &m.path, &m.raw_sql))
        .collect();
    notes.sort();
    notes.dedup();
    notes
}

/// The notes for one Jinja-SQL text.
pub fn review_text(dialect: Dialect, path: &Path, text: &str) -> Vec<DialectNote> {
    let checks: Vec<&Check> = CHECKS
        .iter()
        .filter(|c| c.dialects.contains(&dialect))
        .collect();
    if checks.is_empty() {
        return Vec::new();
    }
    let sql = blank_jinja(text);
    let generic = GenericDialect {};
    let Ok(tokens) = Tokenizer::new(&generic, &sql).tokenize_with_location() else {
        // Text the tokenizer cannot read fails at planning with DataFusion's own message.
        return Vec::new();
    };
    let tokens: Vec<&TokenWithSpan> = tokens
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .collect();
    let mut notes = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let Token::Word(w) = &t.token else {
            continue;
        };
        if !matches!(tokens.get(i + 1).map(|t| &t.token), Some(Token::LParen)) {
            continue;
        }
        let name = w.value.to_ascii_lowercase();
        for c in checks
            .iter()
            .filter(|c| c.function.contains(&name.as_str()))
        {
            let args = arguments(&tokens[i + 2..]);
            if (c.matches)(&args) {
                notes.push(DialectNote {
                    path: path.to_path_buf(),
                    line: usize::try_from(t.span.start.line).unwrap_or(0),
                    dialect,
                    message: format!("`{name}(…)`: {}", c.message),
                });
            }
        }
    }
    notes
}

/// The top-level arguments of a call whose `(` was just passed.
fn arguments<'a>(tokens: &[&'a TokenWithSpan]) -> Vec<Vec<&'a Token>> {
    let mut args = vec![Vec::new()];
    let mut depth = 0usize;
    for t in tokens {
        match &t.token {
            Token::LParen => depth += 1,
            Token::RParen if depth == 0 => break,
            Token::RParen => depth -= 1,
            Token::Comma if depth == 0 => {
                args.push(Vec::new());
                continue;
            }
            _ => {}
        }
        if let Some(last) = args.last_mut() {
            last.push(&t.token);
        }
    }
    args
}

/// `text` with every Jinja block (`{{ }}`, `{% %}`, `{# #}`) replaced by spaces, newlines kept, so
/// lines still match the file.
fn blank_jinja(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        let close = match rest[start + 1..].chars().next() {
            Some('{') => "}}",
            Some('%') => "%}",
            Some('#') => "#}",
            _ => {
                out.push_str(&rest[..=start]);
                rest = &rest[start + 1..];
                continue;
            }
        };
        out.push_str(&rest[..start]);
        let body = &rest[start..];
        let end = body[2..].find(close).map(|e| e + 4).unwrap_or(body.len());
        out.extend(
            body[..end]
                .chars()
                .map(|c| if c == '\n' { '\n' } else { ' ' }),
        );
        rest = &body[end..];
    }
    out.push_str(rest);
    out
}
