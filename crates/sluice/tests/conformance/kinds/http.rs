//! `kind: http`: a JSON API on a port of its own (a plain HTTP/1.1 server thread), paged by number and
//! read incrementally by `id` (`?since=<mark>`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::{
    ConformanceSource, Drift, SourceOptions, Upstream, Watermark, amount, email, extra, note,
    secret,
};

pub struct Http;

impl ConformanceSource for Http {
    fn kind(&self) -> &'static str {
        "http"
    }

    fn provision(
        &self,
        _project: &Path,
        _name: &str,
        rows: u64,
        payload: usize,
        _unit: u64,
    ) -> Option<Box<dyn Upstream>> {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let records = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (records.clone(), stop.clone());
        std::thread::spawn(move || serve(listener, r, s));
        let mut up = HttpUpstream {
            addr,
            records,
            stop,
            next: 1,
            payload,
            with_extra: false,
        };
        up.append(rows);
        Some(Box::new(up))
    }

    fn watermark(&self) -> Watermark {
        Watermark::Cursor("id")
    }

    fn drift(&self) -> Drift {
        // README: "Records become Arrow through the JSON-lines reader (inferred types, schema
        // evolution, quarantine)".
        Drift::AddsColumn
    }

    fn quarantine_column(&self) -> &'static str {
        // docs/sources/http.md: "`"amount": "lots"` in an integer column" goes to quarantine.
        "amount"
    }

    fn memory_note(&self) -> &'static str {
        "an incremental load commits every page, so memory is bounded by the page size"
    }
}

struct HttpUpstream {
    addr: String,
    records: Arc<Mutex<Vec<Value>>>,
    stop: Arc<AtomicBool>,
    next: u64,
    payload: usize,
    with_extra: bool,
}

impl Drop for HttpUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(&self.addr);
    }
}

impl Upstream for HttpUpstream {
    fn append(&mut self, rows: u64) {
        let mut records = self.records.lock().unwrap();
        for id in self.next..self.next + rows {
            let mut r = json!({
                "id": id,
                "email": email(id),
                "secret": secret(id),
                "amount": amount(id),
                "note": note(id, self.payload),
            });
            if self.with_extra {
                r["extra"] = extra(id).into();
            }
            records.push(r);
        }
        self.next += rows;
    }

    fn add_column(&mut self) {
        self.with_extra = true;
    }

    fn insert_bad_row(&mut self) -> u64 {
        let id = self.next;
        self.records.lock().unwrap().push(json!({
            "id": id, "email": email(id), "secret": secret(id), "amount": "lots", "note": "bad",
        }));
        self.next += 1;
        id
    }

    fn max_id(&self) -> u64 {
        self.next - 1
    }

    fn source_yaml(&self, opts: &SourceOptions) -> String {
        let size = opts.commit_rows.unwrap_or(100);
        let mut yaml = format!(
            "kind: http\nbase_url: http://{}\nretries: 0\ntables:\n  - name: items\n    path: /items\n    \
             records: data\n    pagination: {{type: page, size_param: per_page, size: {size}}}\n    \
             incremental: {{param: since, cursor_field: id}}\n    primary_key: [id]\n",
            self.addr
        );
        if opts.pii {
            yaml.push_str("    pii: {email: hash, secret: drop}\n");
        }
        yaml
    }
}

fn serve(listener: TcpListener, records: Arc<Mutex<Vec<Value>>>, stop: Arc<AtomicBool>) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let records = records.clone();
        std::thread::spawn(move || answer(stream, &records));
    }
}

/// Answers one `GET /items?since=&page=&per_page=` and closes the connection.
fn answer(mut stream: TcpStream, records: &Mutex<Vec<Value>>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let target = head.split_whitespace().nth(1).unwrap_or("/");
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let param = |name: &str| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .and_then(|(_, v)| v.parse::<f64>().ok())
    };
    let since = param("since").unwrap_or(f64::MIN);
    let page = param("page").unwrap_or(1.0).max(1.0) as usize;
    let per_page = param("per_page").unwrap_or(100.0).max(1.0) as usize;
    let body = {
        let records = records.lock().unwrap();
        let page: Vec<&Value> = records
            .iter()
            .filter(|r| r["id"].as_f64().is_some_and(|id| id > since))
            .skip((page - 1) * per_page)
            .take(per_page)
            .collect();
        json!({ "data": page }).to_string()
    };
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}
