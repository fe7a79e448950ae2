//! A project governed by `access.yml`, served by a real `sluice serve`: shared by the access and
//! audit tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

use super::common::{sluice_ok, state_db, write};

/// The PII key of the project (its `.env`).
pub const KEY: &str = "governed-test-key";

/// The analyst's rows: `region = north`.
pub const NORTH_ROWS: i64 = 2;

/// The project's access rules.
pub const ACCESS_YML: &str = "\
masks:
  bronze.files__sales:
    email: hash
users:
  ana: {region: north}
roles:
  analyst:
    read: [bronze]
    row_filters:
      bronze.files__sales: \"region = {{ user.region }}\"
";

/// A project with one source table (with emails), one gold model and a dashboard, built, with
/// `access.yml`; and tokens for `ana` (analyst) and `root` (admin).
pub fn project(dir: &Path) -> (String, String) {
    write(dir, "sluice.yml", "name: governed\n");
    write(dir, ".env", &format!("SLUICE_PII_KEY={KEY}\n"));
    write(
        dir,
        "sources/files.yml",
        "kind: files\ntables:\n  - name: sales\n    path: landing/*.csv\n",
    );
    write(
        dir,
        "landing/s.csv",
        "sale_id,region,email,amount\n1,north,a@x.io,10\n2,south,b@x.io,20\n3,north,c@x.io,5\n4,east,d@x.io,7\n",
    );
    write(
        dir,
        "models/gold/by_region.sql",
        "select region, sum(amount) as revenue from {{ source('files', 'sales') }} group by region",
    );
    write(
        dir,
        "dashboards/sales.yml",
        "title: Sales\ncharts:\n  - {title: Amount, type: table, asset: files.sales, x: region, y: amount, agg: sum}\n",
    );
    sluice_ok(dir, &["run"]);
    write(dir, "access.yml", ACCESS_YML);
    sluice_ok(dir, &["validate"]);
    let ana = token(dir, "ana", "analyst");
    let root = token(dir, "root", "admin");
    (ana, root)
}

/// `sluice auth token create`: the token.
pub fn token(dir: &Path, user: &str, role: &str) -> String {
    sluice_ok(
        dir,
        &["auth", "token", "create", "--user", user, "--role", role],
    )
    .trim()
    .to_string()
}

/// `sluice serve` on free loopback ports; killed on drop.
pub struct Server {
    pub child: Child,
    _stdout: BufReader<ChildStdout>,
    pub http: String,
    pub pg: String,
    pub flight: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    pub fn start(dir: &Path) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
        cmd.arg("--project")
            .arg(dir)
            .args([
                "serve",
                "--no-scheduler",
                "--http",
                "127.0.0.1:0",
                "--pg",
                "127.0.0.1:0",
            ])
            .args(["--flight", "127.0.0.1:0"])
            .env("SLUICE_LOG", "error")
            .stdout(Stdio::piped());
        if let Some(state) = state_db(dir) {
            cmd.env("SLUICE_STATE_DB", state);
        }
        let mut child = cmd.spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let (mut http, mut pg, mut banner) = (String::new(), String::new(), String::new());
        let flight = loop {
            let mut line = String::new();
            if stdout.read_line(&mut line).unwrap() == 0 {
                let _ = child.kill();
                panic!("sluice serve ended before announcing its listeners:\n{banner}");
            }
            banner.push_str(&line);
            if let Some(rest) = line.strip_prefix("Serving the Sluice API at ") {
                http = rest
                    .split("://")
                    .nth(1)
                    .and_then(|s| s.split('/').next())
                    .unwrap()
                    .to_string();
            }
            if let Some(rest) = line.strip_prefix("PostgreSQL wire protocol at ") {
                pg = rest.split_whitespace().next().unwrap().to_string();
            }
            if let Some(rest) = line.strip_prefix("Arrow Flight SQL at ") {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        Server {
            child,
            _stdout: stdout,
            http,
            pg,
            flight,
        }
    }
}

/// One HTTP/1.1 request with an optional bearer token: (status, body) (chunked bodies joined).
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    let body = body.unwrap_or("");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut s = rest;
        while let Some((size, more)) = s.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&more[..n.min(more.len())]);
            s = more.get(n + 2..).unwrap_or("");
        }
        out
    } else {
        rest.to_string()
    };
    (status, body)
}

/// `POST /api/sql` as `token`: (status, JSON body).
pub fn sql(addr: &str, token: Option<&str>, sql: &str) -> (u16, serde_json::Value) {
    let body = serde_json::json!({ "sql": sql }).to_string();
    let (status, text) = request(addr, "POST", "/api/sql", token, Some(&body));
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (status, json)
}

/// A wire client logged in as `user` with `password`.
pub async fn connect(
    pg: &str,
    user: &str,
    password: Option<&str>,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (host, port) = pg.rsplit_once(':').unwrap();
    let mut config = tokio_postgres::Config::new();
    config
        .host(host)
        .port(port.parse().unwrap())
        .user(user)
        .dbname("sluice");
    if let Some(p) = password {
        config.password(p);
    }
    let (client, conn) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

/// Whether `s` looks like a `hash` mask: 64 hex digits.
pub fn is_hash(s: &str) -> bool {
    s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit())
}
