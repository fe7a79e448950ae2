//! Finding a dbt project's files and reading the bits needed before rendering.

use std::path::{Path, PathBuf};

use sluice_core::macros::{MacroFile, find_tag};

/// `(resource folder, file)` for every file with extension `ext` under `root/dirs`, sorted by path.
pub(crate) fn files_under(root: &Path, dirs: &[String], ext: &str) -> Vec<(PathBuf, PathBuf)> {
    let mut out = Vec::new();
    for d in dirs {
        let base = root.join(d);
        let mut stack = vec![base.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x.eq_ignore_ascii_case(ext)) {
                    out.push((base.clone(), p));
                }
            }
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    out
}

pub(crate) fn stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `[project, folder…]` of a file under `base`.
pub(crate) fn folders(base: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(base).unwrap_or(file);
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.pop();
    parts
}

/// `schema='x'` inside a `config(...)` call of the raw SQL (the layer is needed before rendering).
pub(crate) fn schema_in_sql(sql: &str) -> Option<String> {
    let mut from = 0;
    while let Some(i) = sql[from..].find("config(") {
        let start = from + i + "config(".len();
        let end = sql[start..]
            .find(')')
            .map(|e| start + e)
            .unwrap_or(sql.len());
        let args = &sql[start..end];
        if let Some(pos) = args.find("schema") {
            let before_ok = args[..pos]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
            let rest = args[pos + "schema".len()..].trim_start();
            if before_ok && let Some(rest) = rest.strip_prefix('=') {
                let rest = rest.trim_start();
                if let Some(q) = rest.chars().next().filter(|c| *c == '\'' || *c == '"') {
                    let value: String = rest[1..].chars().take_while(|c| *c != q).collect();
                    return Some(value);
                }
            }
        }
        from = end;
    }
    None
}

/// `(offset, name)` of every `{% macro name %}` in a file.
pub(crate) fn macro_spans(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = find_tag(&text[from..], "macro") {
        let at = from + i;
        let m = MacroFile::parse(Path::new(""), &text[at..]);
        if let Some(n) = m.names.first() {
            out.push((at, n.clone()));
        }
        from = at + 2;
    }
    out
}

/// The byte offset where 1-based `line` starts.
pub(crate) fn line_offset(text: &str, line: usize) -> usize {
    text.split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_schema_in_config_calls() {
        assert_eq!(
            schema_in_sql("{{ config(materialized='table', schema='marts') }} select 1"),
            Some("marts".into())
        );
        assert_eq!(schema_in_sql("{{ config(target_schema='x') }}"), None);
        assert_eq!(schema_in_sql("select 1"), None);
    }
}
