//! `kind: files`: CSV files in a folder of the project, each landed once.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::{
    ConformanceSource, Drift, SourceOptions, Upstream, Watermark, amount, email, extra, note,
    secret,
};

pub struct Files;

impl ConformanceSource for Files {
    fn kind(&self) -> &'static str {
        "files"
    }

    fn provision(
        &self,
        project: &Path,
        name: &str,
        rows: u64,
        payload: usize,
        unit: u64,
    ) -> Option<Box<dyn Upstream>> {
        let folder = format!("data/{name}");
        std::fs::create_dir_all(project.join(&folder)).unwrap();
        let mut up = FilesUpstream {
            dir: project.join(&folder),
            folder,
            next: 1,
            files: 0,
            payload,
            unit: unit.max(1),
            with_extra: false,
        };
        up.append(rows);
        Some(Box::new(up))
    }

    fn watermark(&self) -> Watermark {
        Watermark::None(
            "the position is the set of files landed, each named in the commit that landed it",
        )
    }

    fn drift(&self) -> Drift {
        // README: "a new column in a later file is added to the table (schema evolution)".
        Drift::AddsColumn
    }

    fn quarantine_column(&self) -> &'static str {
        // Declared `amount: double`; "a value that does not fit its column's type" is quarantined.
        "amount"
    }

    fn memory_note(&self) -> &'static str {
        "a file streams into its one commit (formats::stream_file → Lake::write_stream) in batches \
         of at most 8192 rows or 512 KiB of text"
    }
}

struct FilesUpstream {
    /// Relative to the project (the glob in the source file).
    folder: String,
    dir: PathBuf,
    next: u64,
    files: u64,
    payload: usize,
    unit: u64,
    with_extra: bool,
}

impl FilesUpstream {
    /// Writes one file; names sort in the order written, as files named by time do.
    fn write_file(&mut self, lines: &[String]) {
        self.files += 1;
        let mut text = String::from("id,email,secret,amount,note");
        if self.with_extra {
            text.push_str(",extra");
        }
        text.push('\n');
        for l in lines {
            text.push_str(l);
            text.push('\n');
        }
        let path = self.dir.join(format!("part-{:06}.csv", self.files));
        // Written aside and renamed, so a run never sees half a file.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(tmp, path).unwrap();
    }

    fn line(&self, id: u64) -> String {
        let mut l = format!(
            "{id},{},{},{},{}",
            email(id),
            secret(id),
            amount(id),
            note(id, self.payload)
        );
        if self.with_extra {
            let _ = write!(l, ",{}", extra(id));
        }
        l
    }
}

impl Upstream for FilesUpstream {
    fn append(&mut self, rows: u64) {
        let end = self.next + rows;
        while self.next < end {
            let n = self.unit.min(end - self.next);
            let lines: Vec<String> = (self.next..self.next + n).map(|id| self.line(id)).collect();
            self.write_file(&lines);
            self.next += n;
        }
    }

    fn add_column(&mut self) {
        self.with_extra = true;
    }

    fn insert_bad_row(&mut self) -> u64 {
        let id = self.next;
        let mut l = format!("{id},{},{},lots,bad", email(id), secret(id));
        if self.with_extra {
            l.push_str(",bad");
        }
        self.write_file(&[l]);
        self.next += 1;
        id
    }

    fn max_id(&self) -> u64 {
        self.next - 1
    }

    fn source_yaml(&self, opts: &SourceOptions) -> String {
        // `commit_rows` does not apply: a file is one commit (the upstream's `unit` sizes them).
        let mut yaml = format!(
            "kind: files\ntables:\n  - name: items\n    path: {}/*.csv\n    format: csv\n    \
             columns: {{id: int, amount: double}}\n    primary_key: [id]\n",
            self.folder
        );
        if opts.pii {
            yaml.push_str("    pii: {email: hash, secret: drop}\n");
        }
        yaml
    }
}
