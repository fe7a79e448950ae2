//! Jinja macro files (`macros/**/*.sql`): `{% macro name(args) %}…{% endmacro %}` blocks that every model
//! can call, as in dbt.
//!
//! Only the macro blocks of a file are kept; any other text is replaced by blank lines so that line
//! numbers stay those of the file (errors inside a macro name the macro file and its line).

use std::path::{Path, PathBuf};

use crate::error::ConfigError;

pub mod calls;

pub use calls::{MacroBlock, direct_calls, transitive_calls};

/// One macro file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacroFile {
    /// The file.
    pub path: PathBuf,
    /// Its macro blocks, with every other line blanked.
    pub text: String,
    /// Names of the macros it defines, in file order.
    pub names: Vec<String>,
}

impl MacroFile {
    /// Keeps the `{% macro %}` blocks of `text` (blanking the rest, line for line).
    pub fn parse(path: &Path, text: &str) -> MacroFile {
        let mut out = String::with_capacity(text.len());
        let mut names = Vec::new();
        let mut rest = text;
        while let Some(start) = find_tag(rest, "macro") {
            blank_into(&mut out, &rest[..start]);
            let after = &rest[start..];
            let Some(end_tag) = find_tag(after, "endmacro") else {
                // An unterminated macro: keep it, so that the template parser reports it with its line.
                out.push_str(after);
                rest = "";
                break;
            };
            let close = after[end_tag..]
                .find("%}")
                .map(|i| end_tag + i + 2)
                .unwrap_or(after.len());
            let block = &after[..close];
            if let Some(name) = macro_name(block) {
                names.push(name);
            }
            out.push_str(block);
            rest = &after[close..];
        }
        blank_into(&mut out, rest);
        MacroFile {
            path: path.to_path_buf(),
            text: out,
            names,
        }
    }
}

/// The byte offset of the `{%` (or `{%-`) opening a tag named `tag`.
pub fn find_tag(text: &str, tag: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = text[from..].find("{%") {
        let at = from + i;
        let inner = text[at + 2..].trim_start_matches(['-', '+']).trim_start();
        if let Some(after) = inner.strip_prefix(tag)
            && after
                .chars()
                .next()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
        {
            return Some(at);
        }
        from = at + 2;
    }
    None
}

fn macro_name(block: &str) -> Option<String> {
    let inner = block[2..].trim_start_matches(['-', '+']).trim_start();
    let rest = inner.strip_prefix("macro")?.trim_start();
    let name: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

fn blank_into(out: &mut String, text: &str) {
    for _ in 0..text.matches('\n').count() {
        out.push('\n');
    }
}

/// Loads every `*.sql` file under `dirs` (in path order).
pub fn load_macros(dirs: &[PathBuf], errors: &mut Vec<ConfigError>) -> Vec<MacroFile> {
    let mut files = Vec::new();
    for dir in dirs {
        if !dir.is_dir() {
            continue;
        }
        let mut stack = vec![dir.clone()];
        while let Some(d) = stack.pop() {
            let entries = match std::fs::read_dir(&d) {
                Ok(e) => e,
                Err(source) => {
                    errors.push(ConfigError::Io { path: d, source });
                    continue;
                }
            };
            for entry in entries.flatten() {
                let p = entry.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|e| e == "sql") {
                    files.push(p);
                }
            }
        }
    }
    files.sort();
    let mut out = Vec::new();
    for path in files {
        match crate::yaml::read_text(&path) {
            Ok(text) => out.push(MacroFile::parse(&path, &text)),
            Err(e) => errors.push(e),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_macro_blocks_and_line_numbers() {
        let text = "-- helpers\n{% macro cents(c) %}({{ c }} / 100){% endmacro %}\nstray text\n{%- macro two() -%}\n2\n{%- endmacro -%}\n";
        let m = MacroFile::parse(Path::new("m.sql"), text);
        assert_eq!(m.names, ["cents", "two"]);
        assert_eq!(m.text.lines().count(), text.lines().count());
        assert!(!m.text.contains("stray"));
        assert!(!m.text.contains("helpers"));
        assert_eq!(
            m.text.lines().nth(1),
            Some("{% macro cents(c) %}({{ c }} / 100){% endmacro %}")
        );
        assert_eq!(m.text.lines().nth(3), Some("{%- macro two() -%}"));
    }

    #[test]
    fn finds_tags_with_whitespace_control() {
        assert_eq!(find_tag("ab {%- macro x() %}", "macro"), Some(3));
        assert_eq!(find_tag("{% macros %}", "macro"), None);
        assert_eq!(find_tag("{% endmacro %}", "macro"), None);
    }
}
