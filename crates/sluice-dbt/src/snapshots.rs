//! `{% snapshot name %}…{% endsnapshot %}` blocks of the snapshot paths.
//!
//! Each block becomes a model with `materialized: snapshot` whose SQL is the block's body, preceded by
//! blank lines so that template errors keep the file's line numbers.

use std::path::Path;

use sluice_core::macros::find_tag;

/// One snapshot block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotBlock {
    /// The snapshot's name.
    pub name: String,
    /// The body, line-aligned with the file.
    pub sql: String,
    /// The line of the `{% snapshot %}` tag.
    pub line: usize,
}

/// Every snapshot block of a file; an unterminated block is an error naming its line.
pub fn parse_snapshots(path: &Path, text: &str) -> Result<Vec<SnapshotBlock>, String> {
    let mut out = Vec::new();
    let mut offset = 0;
    while let Some(start) = find_tag(&text[offset..], "snapshot") {
        let at = offset + start;
        let line = text[..at].matches('\n').count() + 1;
        let Some(open_end) = text[at..].find("%}").map(|i| at + i + 2) else {
            return Err(format!(
                "{}:{line}: unterminated {{% snapshot %}} tag",
                path.display()
            ));
        };
        let header = &text[at + 2..open_end - 2];
        let name: String = header
            .trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace())
            .trim_start_matches("snapshot")
            .trim()
            .trim_end_matches(['-', '+'])
            .trim()
            .to_string();
        let Some(end) = find_tag(&text[open_end..], "endsnapshot") else {
            return Err(format!(
                "{}:{line}: {{% snapshot {name} %}} has no {{% endsnapshot %}}",
                path.display()
            ));
        };
        let body = &text[open_end..open_end + end];
        let lead = "\n".repeat(text[..open_end].matches('\n').count());
        out.push(SnapshotBlock {
            name,
            sql: format!("{lead}{body}"),
            line,
        });
        offset = text[open_end + end..]
            .find("%}")
            .map(|i| open_end + end + i + 2)
            .unwrap_or(text.len());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_blocks_keeping_lines() {
        let text = "-- c\n{% snapshot orders_snapshot %}\n{{ config(unique_key='id', strategy='timestamp', updated_at='u') }}\nselect * from {{ ref('x') }}\n{% endsnapshot %}\n";
        let b = parse_snapshots(Path::new("s.sql"), text).unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].name, "orders_snapshot");
        assert_eq!(b[0].line, 2);
        assert_eq!(
            b[0].sql.lines().nth(3),
            Some("select * from {{ ref('x') }}")
        );
        assert!(parse_snapshots(Path::new("s.sql"), "{% snapshot a %}select 1").is_err());
    }
}
