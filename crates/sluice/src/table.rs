//! Text tables for terminal output.

use comfy_table::Table;

/// A table with a header row.
pub fn render(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut t = Table::new();
    t.set_header(header.to_vec());
    for r in rows {
        t.add_row(r);
    }
    t.to_string()
}
