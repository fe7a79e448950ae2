//! A hostile client against `sluice serve`: every request that used to abort, freeze or exhaust the
//! server gets its error, abandoned and timed-out queries stop, connection floods are shed, SIGTERM
//! stops the server within its grace period — and after each, the same process answers a normal
//! query. See docs/operations.md.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use common::{http, sluice_ok, write};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

/// A query that runs until it is stopped: 4·10^10 pairs.
const ENDLESS: &str = "select sum(a.v * b.v) from generate_series(1, 200000) as a(v) \
                       cross join generate_series(1, 200000) as b(v)";

/// A served project with a seed table and tight limits.
fn project(dir: &Path) {
    write(
        dir,
        "sluice.yml",
        "name: hostile\n\
         serve:\n  \
           limits:\n    \
             statement_timeout: 60s\n    \
             max_connections: 6\n    \
             pg_max_connections: 3\n    \
             max_request_bytes: 64KiB\n    \
             header_read_timeout: 30s\n    \
             shutdown_grace: 2s\n",
    );
    let mut csv = String::from("item_id,name,price\n");
    for i in 0..100 {
        csv.push_str(&format!("{i},item {i},{}.5\n", i % 7));
    }
    write(dir, "seeds/items.csv", &csv);
    sluice_ok(dir, &["run"]);
}

/// `sluice serve` on free ports; killed on drop.
struct Server {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    http: String,
    pg: String,
}

impl Server {
    fn start(dir: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("--project")
            .arg(dir)
            .args([
                "serve",
                "--http",
                "127.0.0.1:0",
                "--pg",
                "127.0.0.1:0",
                "--no-flight",
                "--no-scheduler",
            ])
            .env("SLUICE_LOG", "error")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let (mut http, mut pg) = (None, None);
        while http.is_none() || pg.is_none() {
            let mut line = String::new();
            if stdout.read_line(&mut line).unwrap() == 0 {
                let _ = child.kill();
                panic!("sluice serve ended before announcing its addresses");
            }
            if let Some(rest) = line.strip_prefix("Serving the Sluice API at http://") {
                http = rest.split('/').next().map(str::to_string);
            }
            if let Some(rest) = line.strip_prefix("PostgreSQL wire protocol at ") {
                pg = rest.split_whitespace().next().map(str::to_string);
            }
        }
        Server {
            child,
            _stdout: stdout,
            http: http.unwrap(),
            pg: pg.unwrap(),
        }
    }

    /// CPU time (user + system) the server has used, in clock ticks.
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the command name (which may hold spaces) start after the last ')'.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    }

    fn rss_kb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    }

    async fn pg_client(&self) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (host, port) = self.pg.rsplit_once(':').unwrap();
        let (client, connection) = tokio_postgres::connect(
            &format!("host={host} port={port} user=analyst dbname=sluice connect_timeout=10"),
            NoTls,
        )
        .await?;
        tokio::spawn(connection);
        Ok(client)
    }

    /// Asserts the server still answers an ordinary query.
    fn answers(&self) {
        let (status, body) = post_sql(&self.http, "select count(*) as n from silver.items");
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"n\":100"), "{body}");
    }

    /// The running queries the server lists.
    fn running(&self) -> Vec<serde_json::Value> {
        let (status, body) = http(&self.http, "GET", "/api/queries", None, "application/json");
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["queries"].as_array().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn post_sql(addr: &str, sql: &str) -> (u16, String) {
    let body = serde_json::json!({ "sql": sql }).to_string();
    http(addr, "POST", "/api/sql", Some(&body), "application/json")
}

/// Sends raw bytes, returns the status line's code and the whole answer.
fn raw(addr: &str, request: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // The server may answer (431, 413) and close before it has read everything.
    let _ = s.write_all(request);
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp).into_owned();
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, text)
}

/// Waits until `cond` holds, up to `limit`.
fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the server uses less than a tenth of a core over a second.
fn wait_idle(server: &Server, limit: Duration) {
    let start = Instant::now();
    loop {
        let before = server.cpu_ticks();
        std::thread::sleep(Duration::from_secs(1));
        let used = server.cpu_ticks() - before;
        if used <= 10 {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "the server still burns CPU ({used} ticks in 1 s) {limit:?} after its queries ended"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn deep_wide_and_cross_site_requests_get_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    project(tmp.path());
    let server = Server::start(tmp.path());
    let addr = server.http.clone();

    // 2,000 chained additions and a 3,000-term OR: refused before planning, not a dead process.
    let deep = format!("select {}1", "1+".repeat(2000));
    let (status, body) = post_sql(&addr, &deep);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("at most 1000"), "{body}");
    let ors: Vec<String> = (0..3000).map(|i| format!("item_id = {i}")).collect();
    let (status, body) = post_sql(
        &addr,
        &format!("select * from silver.items where {}", ors.join(" or ")),
    );
    assert_eq!(status, 400, "{body}");
    // One enormous value would be one enormous allocation: refused before the optimizer folds it.
    let (status, body) = post_sql(&addr, "select length(repeat('x', 2000000000))");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("at most 67108864"), "{body}");
    // As deep as allowed still works.
    let (status, body) = post_sql(&addr, &format!("select {}1 as n", "1+".repeat(900)));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("901"), "{body}");
    server.answers();

    // 600 filters on the rows endpoint, an offset past u64, a huge header, a huge body.
    let filters: String = (0..600).map(|i| format!("&item_id=neq.{i}")).collect();
    let (status, body) = http(
        &addr,
        "GET",
        &format!("/api/assets/items/rows?limit=5{filters}"),
        None,
        "application/json",
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("too many filters"), "{body}");
    let (status, body) = http(
        &addr,
        "GET",
        "/api/assets/items/rows?offset=18446744073709551615",
        None,
        "application/json",
    );
    assert_eq!(status, 400, "{body}");
    let big_header = format!(
        "GET /api/health HTTP/1.1\r\nHost: {addr}\r\nX-Junk: {}\r\n\r\n",
        "x".repeat(200_000)
    );
    let (status, _) = raw(&addr, big_header.as_bytes());
    assert_eq!(status, 431, "an oversized header is refused");
    let big_body = format!("{{\"sql\": \"select '{}'\"}}", "y".repeat(100_000));
    let (status, body) = http(
        &addr,
        "POST",
        "/api/sql",
        Some(&big_body),
        "application/json",
    );
    assert_eq!(status, 413, "{body}");
    server.answers();

    // Cross-site and rebinding requests.
    let plain = format!(
        "POST /api/sql HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/plain\r\nContent-Length: 8\r\nConnection: close\r\n\r\nselect 1"
    );
    assert_eq!(raw(&addr, plain.as_bytes()).0, 415);
    let origin = format!(
        "POST /api/runs HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://evil.example\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    );
    assert_eq!(raw(&addr, origin.as_bytes()).0, 403);
    let rebound =
        "GET /api/assets HTTP/1.1\r\nHost: evil.example:8080\r\nConnection: close\r\n\r\n";
    assert_eq!(raw(&addr, rebound.as_bytes()).0, 421);
    // Probes come with the pod's address as Host, which no allow-list knows; they show nothing.
    for probe in ["/api/health", "/api/ready"] {
        let by_pod_ip =
            format!("GET {probe} HTTP/1.1\r\nHost: 10.1.2.3:8080\r\nConnection: close\r\n\r\n");
        assert_eq!(raw(&addr, by_pod_ip.as_bytes()).0, 200, "{probe}");
    }

    // The wire: the same deep SQL is SQLSTATE 54001 and the session stays usable.
    let client = server.pg_client().await.unwrap();
    let e = client.simple_query(&deep).await.unwrap_err();
    assert_eq!(e.code(), Some(&SqlState::STATEMENT_TOO_COMPLEX), "{e:?}");
    let e = client.query(deep.as_str(), &[]).await.unwrap_err();
    assert_eq!(e.code(), Some(&SqlState::STATEMENT_TOO_COMPLEX), "{e:?}");
    let rows = client
        .query("select count(*) from silver.items", &[])
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, i64>(0), 100);
    server.answers();
}

#[tokio::test(flavor = "multi_thread")]
async fn abandoned_cancelled_and_timed_out_queries_stop() {
    let tmp = tempfile::tempdir().unwrap();
    project(tmp.path());
    let server = Server::start(tmp.path());
    let addr = server.http.clone();

    // HTTP: a client that leaves. Two at once used to take both cores and the health check.
    let body = serde_json::json!({ "sql": ENDLESS }).to_string();
    let request = format!(
        "POST /api/sql HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut leaving = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        leaving.push(s);
    }
    wait_until(Duration::from_secs(20), "two running queries", || {
        server.running().len() == 2
    });
    let started = Instant::now();
    let (status, _) = http(&addr, "GET", "/api/health", None, "application/json");
    assert_eq!(status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "health took {:?} under load",
        started.elapsed()
    );
    drop(leaving);
    wait_until(
        Duration::from_secs(5),
        "the abandoned queries to end",
        || server.running().is_empty(),
    );
    wait_idle(&server, Duration::from_secs(10));
    server.answers();

    // An admin cancels a running query through the API.
    let addr2 = addr.clone();
    let runner = std::thread::spawn(move || post_sql(&addr2, ENDLESS));
    wait_until(Duration::from_secs(20), "the query to run", || {
        server.running().len() == 1
    });
    let id = server.running()[0]["id"].as_u64().unwrap();
    let (status, body) = http(
        &addr,
        "POST",
        &format!("/api/queries/{id}/cancel"),
        None,
        "application/json",
    );
    assert_eq!(status, 202, "{body}");
    let (status, body) = runner.join().unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("canceling statement"), "{body}");
    wait_idle(&server, Duration::from_secs(10));

    // The wire: a cancel request, and a client's statement_timeout, stop the query.
    let client = server.pg_client().await.unwrap();
    let cancel = client.cancel_token();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(800)).await;
        cancel.cancel_query(NoTls).await
    });
    let started = Instant::now();
    let e = client.simple_query(ENDLESS).await.unwrap_err();
    assert_eq!(e.code(), Some(&SqlState::QUERY_CANCELED), "{e:?}");
    canceller.await.unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    client
        .simple_query("set statement_timeout = '700ms'")
        .await
        .unwrap();
    let started = Instant::now();
    let e = client.query(ENDLESS, &[]).await.unwrap_err();
    assert_eq!(e.code(), Some(&SqlState::QUERY_CANCELED), "{e:?}");
    assert!(e.to_string().contains("timeout") || format!("{e:?}").contains("timeout"));
    assert!(started.elapsed() < Duration::from_secs(10));
    wait_idle(&server, Duration::from_secs(10));
    assert!(server.running().is_empty());
    server.answers();
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_floods_are_shed_and_health_still_answers() {
    let tmp = tempfile::tempdir().unwrap();
    project(tmp.path());
    let server = Server::start(tmp.path());
    let addr = server.http.clone();

    // Six idle connections fill max_connections; the next ones are shed but health answers.
    let idle: Vec<TcpStream> = (0..6).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    wait_until(Duration::from_secs(10), "the server to shed", || {
        let (status, body) = http(&addr, "GET", "/api/assets", None, "application/json");
        status == 503 && body.contains("connection limit")
    });
    let (status, body) = http(&addr, "GET", "/api/health", None, "application/json");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("shedding"), "{body}");
    drop(idle);
    wait_until(Duration::from_secs(10), "normal service", || {
        http(&addr, "GET", "/api/assets", None, "application/json").0 == 200
    });

    // The wire: past pg_max_connections a client gets 53300, like PostgreSQL's.
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(server.pg_client().await.unwrap());
    }
    let e = server.pg_client().await.unwrap_err();
    assert_eq!(e.code(), Some(&SqlState::TOO_MANY_CONNECTIONS), "{e:?}");
    drop(clients);
    let mut back = None;
    for _ in 0..100 {
        if let Ok(c) = server.pg_client().await {
            back = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let client = back.expect("a session frees up once the others close");
    assert_eq!(
        client
            .query_one("select 1::bigint", &[])
            .await
            .unwrap()
            .get::<_, i64>(0),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_wire_result_streams_in_bounded_memory() {
    let tmp = tempfile::tempdir().unwrap();
    project(tmp.path());
    let server = Server::start(tmp.path());
    let client = server.pg_client().await.unwrap();
    client.query("select 1", &[]).await.unwrap();
    let baseline = server.rss_kb();
    // The extended protocol (what drivers use) with all rows at once: pgwire used to gather them.
    let sql =
        "select v, v * 2 as w, concat('row ', v) as s from generate_series(1, 3000000) as t(v)";
    let rows = client
        .query_raw(sql, std::iter::empty::<i64>())
        .await
        .unwrap();
    tokio::pin!(rows);
    let mut n = 0u64;
    let mut peak = baseline;
    use futures::StreamExt as _;
    while let Some(row) = rows.next().await {
        row.unwrap();
        n += 1;
        if n.is_multiple_of(100_000) {
            peak = peak.max(server.rss_kb());
        }
    }
    assert_eq!(n, 3_000_000);
    // 3M rows are ~100 MB on the wire; held at once they would add several hundred MB.
    assert!(
        peak < baseline + 150_000,
        "server RSS went from {baseline} kB to {peak} kB while streaming"
    );
}

#[test]
fn sigterm_stops_the_server_within_its_grace_period() {
    let tmp = tempfile::tempdir().unwrap();
    project(tmp.path());
    let server = Server::start(tmp.path());
    let addr = server.http.clone();
    let addr2 = addr.clone();
    let runner = std::thread::spawn(move || post_sql(&addr2, ENDLESS));
    wait_until(Duration::from_secs(20), "the query to run", || {
        server.running().len() == 1
    });
    let pid = server.child.id();
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let mut server = server;
    let exit = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "sluice serve did not exit within its 2 s grace period (+ margin)"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
    // The cut-off query's client got an answer or a closed connection, not a hang.
    let _ = runner.join().unwrap();
}

#[test]
fn a_killed_run_is_marked_abandoned_and_can_be_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "sluice.yml", "name: killed\n");
    // Slow enough to be killed mid-build; replaced by a quick version before the retry.
    write(
        dir,
        "models/gold/slow.sql",
        "select count(*) as n from generate_series(1, 5000000000) as t(v)",
    );
    let mut run = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("--project")
        .arg(dir)
        .arg("run")
        .env("SLUICE_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut run_id = String::new();
    wait_until(Duration::from_secs(60), "the run to start", || {
        let out = common::sluice(dir, &["runs"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        match text
            .lines()
            .find(|l| l.contains("running") && l.contains(" run "))
        {
            Some(line) => {
                run_id = line
                    .split(|c: char| c.is_whitespace() || c == '│' || c == '|')
                    .find(|t| t.len() > 15 && t.contains('T') && t.contains('-'))
                    .unwrap_or("")
                    .to_string();
                true
            }
            None => false,
        }
    });
    run.kill().unwrap();
    run.wait().unwrap();
    let listed = sluice_ok(dir, &["runs"]);
    let line = listed
        .lines()
        .find(|l| l.contains(&run_id))
        .unwrap_or_else(|| panic!("run {run_id} not listed:\n{listed}"));
    assert!(line.contains("abandoned"), "{listed}");
    let shown = sluice_ok(dir, &["runs", "show", &run_id]);
    assert!(shown.contains("is gone"), "{shown}");
    write(dir, "models/gold/slow.sql", "select 42 as n");
    let retried = sluice_ok(dir, &["retry", &run_id]);
    assert!(retried.contains("1 succeeded"), "{retried}");
    let n = common::query_f64(dir, "select n from gold.slow");
    assert_eq!(n, 42.0);
}

#[test]
fn deeply_nested_project_files_and_records_are_errors_not_crashes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let nested =
        |open: &str, close: &str, n: usize| format!("{}1{}", open.repeat(n), close.repeat(n));
    // YAML nested 100,000 deep: a located error.
    write(
        dir,
        "sluice.yml",
        &format!("name: deep\nvars:\n  x: {}\n", nested("[", "]", 100_000)),
    );
    write(dir, "models/gold/m.sql", "select 1 as a");
    let out = common::sluice(dir, &["validate"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("sluice.yml:3") && err.contains("recursion limit"),
        "{err}"
    );
    // Jinja nested 50,000 deep, and 5,000 nested blocks: template errors naming the model.
    write(dir, "sluice.yml", "name: deep\n");
    for template in [
        format!("select {{{{ {} }}}} as a", nested("(", ")", 50_000)),
        format!(
            "{}select 1 as a{}",
            "{% if true %}".repeat(5_000),
            "{% endif %}".repeat(5_000)
        ),
    ] {
        write(dir, "models/gold/m.sql", &template);
        let out = common::sluice(dir, &["validate"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            err.contains("m.sql:1:") && err.contains("template error"),
            "{err}"
        );
    }
    // A model with a 50,000-term expression fails its node with the file named.
    write(
        dir,
        "models/gold/m.sql",
        &format!("select {}1 as a", "1+".repeat(50_000)),
    );
    let out = common::sluice(dir, &["run"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success());
    assert!(
        text.contains("m.sql") && text.contains("at most 1000"),
        "{text}"
    );
    // A JSON record nested 100,000 deep goes to quarantine with its reason.
    write(dir, "models/gold/m.sql", "select 1 as a");
    write(
        dir,
        "sources/f.yml",
        "kind: files\ntables:\n  - name: ev\n    path: landing/*.jsonl\n",
    );
    write(
        dir,
        "landing/x.jsonl",
        &format!(
            "{}1{}\n{{\"a\": 2}}\n",
            "{\"a\":".repeat(100_000),
            "}".repeat(100_000)
        ),
    );
    sluice_ok(dir, &["run"]);
    let reasons = common::query_json(dir, "select reason from quarantine.f__ev");
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        reasons[0]["reason"]
            .as_str()
            .unwrap()
            .contains("recursion limit"),
        "{reasons:?}"
    );
    assert_eq!(
        common::query_f64(dir, "select count(*) from bronze.f__ev"),
        1.0
    );
}
